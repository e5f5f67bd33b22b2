import Sockets
import Testing

@MainActor
private final class LineCollector {
    var lines: [String] = []
    func collect(_ connection: TCPConnection, count: Int) async throws {
        for try await line in connection.lines {
            lines.append(line)
            if lines.count == count { break }
        }
    }
}

@Suite("TCPConnection.lines")
struct LinesSequenceTests {
    @Test("20,000 lines arrive exactly, in order, across a break, a readLine between, and a @MainActor loop")
    func exactLines() async throws {
        let pair = try await LoopbackPair.make()
        let count = 20_000
        let writer = Task {
            for start in stride(from: 0, to: count, by: 500) {
                try await pair.client.write((start..<(start + 500)).map { "line \($0)\r\n" }.joined())
            }
            try await pair.client.closeOutput()
        }
        var lines: [String] = []
        for try await line in pair.server.lines {
            lines.append(line)
            if lines.count == 7_000 { break }
        }
        // The loop borrowed the lines after the 7,000th; a plain read gets them all the same.
        lines.append(try #require(try await pair.server.readLine()))
        let collector = LineCollector()
        try await collector.collect(pair.server, count: 5_000)
        lines += await collector.lines
        for try await line in pair.server.lines(ending: .returnLinefeed) { lines.append(line) }
        try await writer.value
        #expect(lines == (0..<count).map { "line \($0)" })
        await pair.close()
    }

    @Test("a line over the limit in the lent bytes still throws lineTooLong; the line after it follows")
    func limitInLoan() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write("a\n" + String(repeating: "x", count: 40) + "\nb\n")
        try await pair.client.closeOutput()
        var iterator = pair.server.lines(maxLength: 10).makeAsyncIterator()
        #expect(try await iterator.next() == "a")
        #expect((await thrownError { _ = try await iterator.next() } as? NetworkError)?.code == .lineTooLong)
        #expect(try await pair.server.readLine() == "b")
        #expect(try await iterator.next() == nil)
        await pair.close()
    }
}
