#if SOCKETS_PLATFORM_SUPPORTED
/// Serves a listener: accepts connections and runs `handler` on each, in a task of its own, until the
/// listener is closed or the calling task is cancelled. In the spirit of Trio's `serve_tcp`.
///
/// The listener is a ``TCPListener`` or a ``UnixListener`` (any ``ConnectionListener``): the same loop serves
/// both, with the same guarantees.
///
/// - Every handler runs in a custodian scope (``withCustodian(isolation:_:)``): when `serve` returns, no handler task
///   and no connection outlives it.
/// - At most `maxConnections` connections are served at once; past that, clients wait in the listener's
///   backlog until a handler ends.
/// - **Graceful shutdown**: close the listener (``TCPListener/close()``, from any task — a signal handler,
///   say). Accepting stops, handlers get `gracePeriod` to finish, then the rest are cancelled and their
///   connections closed. Cancelling the task that runs `serve` instead stops everything at once.
/// - Out of descriptors (`EMFILE`, `ENFILE`), it backs off (10 ms doubling to 320 ms, without spinning) and
///   serves again once descriptors free up; a client that aborted before it was accepted (`ECONNABORTED`) is
///   skipped.
/// - A handler that throws ends its own connection only. Each connection is closed when its handler returns.
/// - `onError` sees what a handler threw, with its connection, before the connection is closed (to log it, or
///   to tell the client). Not called for a handler that was cancelled (`serve` stopping) nor for
///   `CancellationError`. Without it, handler errors are dropped.
///
/// ```swift
/// let listener = try await TCPListener(port: 8080)
/// try await serve(listener) { connection in
///     try await connection.setBufferMode(.none)
///     for try await line in connection.lines { try await connection.writeLine(line) }
/// }
/// ```
///
/// **The handler runs isolated to its connection** (its parameter is `isolated TCPConnection`): each read and
/// write is a plain call on the connection's actor, on its event loop's queue, with no executor hop before
/// and after it. (A handler that took its connection non-isolated made two hops a call, each a job queued on
/// the loop: measured with the README's echo, 0.65 of the rate of the same loop isolated on rr64 and 0.49 on
/// connect8.) Other actors' methods hop as usual and come back. Code of its own that keeps a CPU busy for long
/// holds up every socket of that loop: give such work a task of its own.
///
/// - Throws: ``NetworkError`` for an invalid argument, or an accept failure that is not transient.
public func serve(
    _ listener: some ConnectionListener,
    maxConnections: Int = 10_000,
    gracePeriod: Duration = .seconds(10),
    onError: (@Sendable (_ error: any Error, _ connection: TCPConnection) async -> Void)? = nil,
    handler: @escaping @Sendable (isolated TCPConnection) async throws -> Void
) async throws {
    guard maxConnections >= 1 else {
        throw NetworkError.invalid("serve", nil, "maxConnections must be at least 1, not \(maxConnections)")
    }
    let slots = AsyncSemaphore(limit: maxConnections)
    // The accept loop prefers the listener's event loop: each accept and the start of each handler stay on the
    // loop's worker, with no hop to the cooperative pool and back for every client (the loops have workers of
    // their own, so each such hop is a thread wake-up). Measured on connect8 (echo-server, 3 short rounds): 8,300
    // connections/s and 116 µs of server CPU each without it, 17,900 and 55 µs with it.
    let loop = (listener as? any StreamListener)?.handle.loop.executor
    try await withTaskExecutorPreference(loop) {
        try await withCustodian { custodian in
            var connections = listener.connections.makeAsyncIterator()
            while true {
                do {
                    try await slots.acquire()
                } catch {
                    return
                }
                guard let connection = try await connections.next() else {
                    slots.release()
                    break
                }
                // The handler's task prefers its connection's loop from the start (no wrapping frame in every idle handler).
                // Still needed with the handler isolated: without it (A/B, echo-server, 3 short rounds) rr1 ran at 0.33
                // to 0.37, stream8 at 0.41 to 0.44 and connect8 at 0.55 to 0.63 of the rate, at 2 to 3 times the CPU.
                let started = custodian.spawn(preferring: connection.eventLoop.executor) {
                    do {
                        try await handler(connection)
                    } catch is CancellationError {
                    } catch {
                        // The handler's failure ends its own connection only.
                        if !Task.isCancelled { await onError?(error, connection) }
                    }
                    try? await connection.close()
                    slots.release()
                }
                if !started {
                    slots.release()
                    try? await connection.close()
                    return
                }
            }
            // The listener closed: let the handlers finish, for the grace period at most.
            guard !Task.isCancelled else { return }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await slots.waitUntilIdle() }
                group.addTask { try? await Task.sleep(for: gracePeriod) }
                _ = await group.next()
                group.cancelAll()
            }
        }
    }
}
#endif
