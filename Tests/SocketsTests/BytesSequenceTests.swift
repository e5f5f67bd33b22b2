import Sockets
import Testing

/// An actor that iterates a connection's bytes from its own isolation (`next(isolation:)`).
private actor ByteCounter {
    var counted = 0
    func count(_ connection: TCPConnection, upTo limit: Int) async throws -> [UInt8] {
        var seen: [UInt8] = []
        for try await byte in connection.bytes {
            seen.append(byte)
            counted += 1
            if seen.count == limit { break }
        }
        return seen
    }
}

@Suite("TCPConnection.bytes")
struct BytesSequenceTests {
    @Test("1 MB through bytes arrives exactly, in order, from nonisolated code and from another actor")
    func exactStream() async throws {
        let pair = try await LoopbackPair.make()
        let data = patternBytes(1 << 20)
        let writer = Task {
            try await pair.client.write(data)
            try await pair.client.closeOutput()
        }
        let counter = ByteCounter()
        let first = try await counter.count(pair.server, upTo: 300_000)
        var rest: [UInt8] = []
        rest.reserveCapacity(data.count)
        for try await byte in pair.server.bytes { rest.append(byte) }
        try await writer.value
        #expect(first + rest == data)
        #expect(await counter.counted == 300_000)
        await pair.close()
    }

    @Test("leaving the loop early, or reading between two iterations, loses and repeats nothing")
    func interleavedReads() async throws {
        let pair = try await LoopbackPair.make()
        let data = patternBytes(10_000, seed: 7)
        try await pair.client.write(data)
        try await pair.client.closeOutput()
        var got: [UInt8] = []
        var round = 0
        while got.count < data.count, round < 10_000 {
            round += 1
            // A few bytes through the sequence (from a loan of many), then plain reads, then the sequence again.
            var taken = 0
            for try await byte in pair.server.bytes {
                got.append(byte)
                taken += 1
                if taken == 1 + round % 5 { break }
            }
            if let bytes = try await pair.server.read(upTo: 1 + round % 3) { got += bytes }
            if round % 4 == 0, let byte = try await pair.server.readByte() { got.append(byte) }
        }
        #expect(got == data)
        #expect(try await pair.server.read() == nil)
        await pair.close()
    }

    @Test("a cancelled iteration loses nothing: the bytes it did not return are read next")
    func cancelledIteration() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write(Array("abc".utf8))
        let iterating = Task {
            var seen: [UInt8] = []
            for try await byte in pair.server.bytes {
                seen.append(byte)
                if seen.count == 3 { withUnsafeCurrentTask { $0?.cancel() } }
            }
            return seen
        }
        let result = await iterating.result
        #expect(result.failure is CancellationError)
        try await pair.client.write(Array("def".utf8))
        #expect(try await pair.server.read(exactly: 3) == Array("def".utf8))
        await pair.close()
    }
}
