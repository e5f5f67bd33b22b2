#if SOCKETS_PLATFORM_SUPPORTED
/// Serves a UDP socket: calls `handler` with each datagram that arrives, in order, and sends what it returns
/// (unless `nil`) back to the datagram's sender, until the socket is closed or the calling task is cancelled.
/// Racket has no twin: it is the loop of `udp-receive!` and `udp-send-to`, with the system calls batched.
///
/// ```swift
/// let socket = try await UDPSocket()
/// try await socket.bind(host: "127.0.0.1", port: 7002)
/// try await serve(socket) { datagram in datagram.bytes }   // an echo
/// ```
///
/// - Datagrams are received up to 32 at a time, those waiting (``UDPSocket/receiveBatch(maxCount:maxLength:)``),
///   and the replies to them go out together (``UDPSocket/sendBatch(_:)``): where a loop of
///   ``UDPSocket/send(_:range:to:)`` makes one system call per reply. So a reply waits for the handler to
///   finish with the datagrams that arrived with its own; a handler that waits long (on another service, say)
///   should hand that work to a task of its own.
/// - Datagrams up to `maxLength` bytes (default: the IPv4 maximum, 65,507) arrive whole; longer ones are cut and
///   marked ``Datagram/truncated``.
/// - The handler runs one datagram at a time, on the socket's event loop (the loop prefers its executor), or on
///   the caller's actor when the caller is isolated to one. Code of its own that keeps a CPU busy for long
///   holds up every socket of that loop: give such work a task of its own.
/// - **Cancellation**: cancelling the calling task ends `serve` without error. Every datagram a receive took
///   reaches the handler first (none is lost; those not yet received stay for the socket's next receive);
///   replies not yet sent then (at most those of one receive's datagrams) are not sent, as a cancelled
///   ``UDPSocket/send(_:range:to:)`` sends nothing.
/// - Closing the socket (from any task) ends `serve` without error.
///
/// - Throws: what the handler throws, once the replies to the datagrams before it are sent; and
///   ``NetworkError`` when a send fails, the socket is not bound, or `maxLength` is outside 0...65535.
public nonisolated(nonsending) func serve(
    _ socket: UDPSocket,
    maxLength: Int = UDPSocket.maximumDatagramLength,
    handler: nonisolated(nonsending) (Datagram) async throws -> [UInt8]?
) async throws {
    guard (0...65535).contains(maxLength) else {
        throw NetworkError.invalid("serve", nil, "maxLength must be in 0...65535, not \(maxLength)")
    }
    // The loop prefers the socket's event loop: each wait resumes it and each batch of replies is sent there, with
    // no hop to the cooperative pool and back (as echo-server's UDP loop does by hand). Measured with the README's
    // echo (udp, A/B of 4 rounds against echo-server): a send per datagram 0.84 of its rate, batched replies off
    // the loop 0.90, on it 0.95 (Benchmarks/RESULTS.md).
    try await withTaskExecutorPreference(socket.handle.loop.executor, isolation: #isolation) {
        var replies: [Datagram] = []
        // The socket's own ends (closed, or the task cancelled) end serving; what the handler throws is thrown.
        func ends(_ error: any Error) -> Bool {
            if error is CancellationError { return true }
            guard let error = error as? NetworkError else { return false }
            return error.code == .closed || error.code == .cancelled
        }
        func sendReplies() async throws {
            try await socket.sendBatch(replies)
            replies.removeAll(keepingCapacity: true)
        }
        while true {
            let batch: [Datagram]
            do {
                batch = try await socket.receiveBatch(maxCount: 32, maxLength: maxLength)
            } catch  where ends(error) {
                return
            }
            // Every datagram taken reaches the handler, cancelled or not: none is lost between two receives.
            for datagram in batch {
                let reply: [UInt8]?
                do {
                    reply = try await handler(datagram)
                } catch {
                    try? await sendReplies()  // the replies to the datagrams before it still go out
                    throw error
                }
                if let reply { replies.append(Datagram(bytes: reply, address: datagram.address)) }
            }
            guard !replies.isEmpty else { continue }
            do { try await sendReplies() } catch  where ends(error) { return }
        }
    }
}
#endif
