#if SOCKETS_PLATFORM_SUPPORTED
extension TCPConnection {
    /// The bytes of the input, one at a time, until end-of-file.
    ///
    /// ```swift
    /// for try await byte in connection.bytes where byte == UInt8(ascii: "\n") { lines += 1 }
    /// ```
    public nonisolated var bytes: Bytes { Bytes(connection: self) }

    /// The bytes of a connection's input, as an `AsyncSequence`. Racket: `in-bytes` over the input port (reading
    /// with `read-byte`).
    ///
    /// Fast wherever it is iterated from: the connection lends the iterator a copy of up to 4 KiB of what it
    /// has received, and each byte costs one atomic compare-and-exchange, not a call to the connection's actor.
    ///
    /// **Cancellation**: as ``readByte()``. Leaving the loop early loses nothing: a byte is taken from the
    /// connection's buffer only as it is returned, so the rest is there for the next read.
    public struct Bytes: AsyncSequence, Sendable {
        public typealias Element = UInt8
        public typealias Failure = any Error
        let connection: TCPConnection

        /// Makes the iterator.
        public func makeAsyncIterator() -> Iterator { Iterator(connection: connection) }

        /// Reads the next byte.
        public struct Iterator: AsyncIteratorProtocol {
            @usableFromInline let connection: TCPConnection
            @usableFromInline var loan: ReadLease.Loan?
            @usableFromInline var taken = 0

            init(connection: TCPConnection) {
                self.connection = connection
            }

            /// The next byte, or `nil` at end-of-file.
            @inlinable
            public mutating func next() async throws -> UInt8? {
                try await next(isolation: nil)
            }

            /// The next byte, or `nil` at end-of-file; runs in the caller's isolation. Inlinable: a byte from the
            /// loan costs one compare-and-exchange in the caller's own code.
            @inlinable
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> UInt8? {
                if let loan, taken < loan.bytes.count, connection.lease.take(1, from: loan, after: taken) {
                    taken += 1
                    return loan.bytes[taken - 1]
                }
                return try await borrow(isolation: actor)
            }

            /// The loan is spent, or was revoked by another read: borrows again, and takes the first byte.
            @usableFromInline
            mutating func borrow(isolation actor: isolated (any Actor)?) async throws -> UInt8? {
                while true {
                    loan = try await connection.lendBytes(upTo: 4096)
                    taken = 0
                    guard let loan else { return nil }
                    if connection.lease.take(1, from: loan, after: 0) {
                        taken = 1
                        return loan.bytes[0]
                    }
                }
            }
        }
    }
}
#endif
