#if SOCKETS_PLATFORM_SUPPORTED
extension TCPConnection {
    /// The lines of the input, until end-of-file (``readLine(ending:maxLength:)`` with ``LineEnding/any`` and
    /// ``defaultMaximumLineLength``).
    ///
    /// ```swift
    /// for try await line in connection.lines { print(line) }
    /// ```
    public nonisolated var lines: Lines {
        Lines(connection: self, ending: .any, maxLength: Self.defaultMaximumLineLength)
    }

    /// The lines of the input, until end-of-file, each read as ``readLine(ending:maxLength:)`` reads it: a line
    /// longer than `maxLength` ends the iteration with ``NetworkError/Code/lineTooLong``.
    public nonisolated func lines(
        ending: LineEnding = .any,
        maxLength: Int = TCPConnection.defaultMaximumLineLength
    ) -> Lines {
        Lines(connection: self, ending: ending, maxLength: maxLength)
    }

    /// The lines of a connection's input, as an `AsyncSequence`. Racket: `in-lines` over the input port.
    ///
    /// Fast wherever it is iterated from: the lines already received are taken from a copy the connection
    /// lends the iterator, with no call to the connection's actor per line; only when the copy has no whole
    /// line left does the iterator call the connection (to read a line, waiting if it must, and borrow what
    /// follows it).
    ///
    /// **Cancellation**: as ``readLine(ending:maxLength:)``. Leaving the loop early (a `break`, a cancelled task,
    /// an error) loses nothing: each line is taken from the connection's buffer only as it is returned, and
    /// the next read starts right after the last line the loop saw.
    public struct Lines: AsyncSequence, Sendable {
        public typealias Element = String
        public typealias Failure = any Error
        let connection: TCPConnection
        let ending: LineEnding
        let maxLength: Int

        /// Makes the iterator.
        public func makeAsyncIterator() -> Iterator {
            Iterator(connection: connection, ending: ending, maxLength: maxLength)
        }

        /// Reads the next line.
        public struct Iterator: AsyncIteratorProtocol {
            let connection: TCPConnection
            let ending: LineEnding
            let maxLength: Int
            private var loan: ReadLease.Loan?
            private var taken = 0

            init(connection: TCPConnection, ending: LineEnding, maxLength: Int) {
                self.connection = connection
                self.ending = ending
                self.maxLength = maxLength
            }

            /// The next line, or `nil` at end-of-file.
            public mutating func next() async throws -> String? {
                try await next(isolation: nil)
            }

            /// The next line, or `nil` at end-of-file; runs in the caller's isolation.
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> String? {
                if let line = takeLentLine() { return line }
                let (line, loan) = try await connection.readLineAndLend(ending: ending, maxLength: maxLength)
                self.loan = loan
                taken = 0
                return line.map { String(decoding: $0, as: UTF8.self) }
            }

            /// A whole line from the loan, counted as taken; `nil` when the loan has none (or was revoked).
            private mutating func takeLentLine() -> String? {
                guard let loan, taken < loan.bytes.count else { return nil }
                let found = loan.bytes.withUnsafeBytes { raw in
                    ending.findEnd(in: UnsafeRawBufferPointer(rebasing: raw[taken...]), from: 0)
                }
                // No whole line, or one over the limit: the connection's own read decides.
                guard let (end, terminator) = found, end <= maxLength,
                    connection.lease.take(end + terminator, from: loan, after: taken)
                else { return nil }
                let line = String(decoding: loan.bytes[taken..<(taken + end)], as: UTF8.self)
                taken += end + terminator
                return line
            }
        }
    }
}
#endif
