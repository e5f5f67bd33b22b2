#if SOCKETS_PLATFORM_SUPPORTED
/// Events on a UDP socket, for ``sync(_:)-(Event<T>...)``: Racket's `udp-…-evt` procedures.
extension UDPSocket {
    /// Ready when a send would not wait; its value is the socket. Racket: `udp-send-ready-evt`.
    public nonisolated func sendReadyEvent() -> Event<UDPSocket> {
        Event(
            attempt: { try await self.isReadyToSend() ? self : nil },
            wait: { _ = await self.handle.wait(for: .write) })
    }

    /// Ready when a receive would not wait; its value is the socket. Racket: `udp-receive-ready-evt`.
    public nonisolated func receiveReadyEvent() -> Event<UDPSocket> {
        Event(
            attempt: { try await self.isReadyToReceive() ? self : nil },
            wait: { _ = await self.handle.wait(for: .read) })
    }

    /// Ready when a datagram waits; when chosen, receives it (up to `maxLength` bytes, the rest discarded and
    /// ``Datagram/truncated`` set). If not chosen, no datagram is consumed. Racket: `udp-receive!-evt` (which
    /// writes into a buffer; here the datagram is the value).
    public nonisolated func receiveEvent(maxLength: Int = UDPSocket.maximumDatagramLength) -> Event<Datagram> {
        Event(
            attempt: { try await self.tryReceive(maxLength: maxLength) },
            wait: { _ = await self.handle.wait(for: .read) })
    }

    /// Ready when the outgoing queue has room; when chosen, sends `bytes[range]` to `host` at `port`. If not
    /// chosen, nothing is sent. Racket: `udp-send-to-evt`.
    public nonisolated func sendEvent(
        _ bytes: some Collection<UInt8>, range: Range<Int>? = nil, to host: String,
        port: Int
    ) -> Event<Void> {
        let bytes = Array(bytes)
        return Event(
            attempt: { try await self.trySend(bytes, range: range, to: host, port: port) ? () : nil },
            wait: { _ = await self.handle.wait(for: .write) })
    }

    /// Ready when the outgoing queue has room; when chosen, sends `bytes[range]` to the connected peer. If not
    /// chosen, nothing is sent. Racket: `udp-send-evt`.
    public nonisolated func sendEvent(_ bytes: some Collection<UInt8>, range: Range<Int>? = nil) -> Event<Void> {
        let bytes = Array(bytes)
        return Event(
            attempt: { try await self.trySend(bytes, range: range) ? () : nil },
            wait: { _ = await self.handle.wait(for: .write) })
    }
}
#endif
