#if SOCKETS_PLATFORM_SUPPORTED
/// Events on a listener, for ``sync(_:)-(Event<T>...)``.
extension TCPListener {
    /// Ready when a client waits; when chosen, accepts it. Racket: `tcp-accept-evt` (if it is not chosen, no
    /// connection is accepted). The connection is managed by the custodian current when the event was made.
    public nonisolated func acceptEvent() -> Event<TCPConnection> {
        let custodian = Custodian.current
        return Event(
            attempt: { try await self.tryAccept(custodian: custodian) },
            wait: { _ = await self.handle.wait(for: .read) })
    }

    /// Ready when ``accept()`` would not wait; its value is the listener itself. Racket: a TCP listener used
    /// as an event.
    public nonisolated func readyEvent() -> Event<TCPListener> {
        Event(
            attempt: { try await self.isAcceptReady() ? self : nil },
            wait: { _ = await self.handle.wait(for: .read) })
    }
}

/// Events on a connection, for ``sync(_:)-(Event<T>...)``.
extension TCPConnection {
    /// Ready when a read would not wait (bytes or end-of-file); its value is the connection. Racket: the input
    /// port used as an event.
    public nonisolated func readableEvent() -> Event<TCPConnection> {
        Event(
            attempt: { try await self.isReadable() ? self : nil },
            wait: { _ = await self.handle.wait(for: .read) })
    }

    /// Ready when a write would not wait for the peer; its value is the connection. Racket: the output port
    /// used as an event.
    public nonisolated func writableEvent() -> Event<TCPConnection> {
        Event(
            attempt: { try await self.isWritable() ? self : nil },
            wait: { _ = await self.handle.wait(for: .write) })
    }

    /// Ready when a whole line (or end-of-file) has arrived; when chosen, reads it (`nil` at end-of-file).
    /// When not chosen, no line is taken: bytes that arrived meanwhile wait in the connection for the next
    /// read. Racket: `read-line-evt`. A line longer than `maxLength` makes the attempt throw
    /// ``NetworkError/Code/lineTooLong`` (see ``readLine(ending:maxLength:)``).
    public nonisolated func readLineEvent(
        ending: LineEnding = .any,
        maxLength: Int = TCPConnection.defaultMaximumLineLength
    ) -> Event<String?> {
        Event(
            attempt: {
                try await self.tryReadLineBytes(ending: ending, maxLength: maxLength)
                    .map { $0.map { String(decoding: $0, as: UTF8.self) } }
            }, wait: { _ = await self.handle.wait(for: .read) })
    }

    /// Ready when bytes (or end-of-file) have arrived; when chosen, reads up to `maxLength` of them (`nil` at
    /// end-of-file). Racket: `read-bytes-avail!-evt`.
    public nonisolated func readEvent(upTo maxLength: Int = 65536) -> Event<[UInt8]?> {
        Event(
            attempt: { try await self.tryRead(upTo: max(1, maxLength)) },
            wait: { _ = await self.handle.wait(for: .read) })
    }
}
#endif
