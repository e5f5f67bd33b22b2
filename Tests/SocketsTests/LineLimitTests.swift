#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Sockets
import Testing

@Suite("Line reads have a maximum length")
struct LineLimitTests {
    static let insideChild = ProcessInfo.processInfo.environment["SOCKETS_LINE_MEMORY_CHILD"] == "1"

    @Test("a line over the limit throws lineTooLong naming the limit; the next line read returns the line after it")
    func overLongLine() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write("short\n" + String(repeating: "x", count: 25) + "\nafter\n")
        #expect(try await pair.server.readLine(maxLength: 10) == "short")
        let error = await thrownError { _ = try await pair.server.readLine(maxLength: 10) } as? NetworkError
        #expect(error?.code == .lineTooLong)
        #expect(error?.description.contains("longer than the limit of 10 bytes") == true)
        #expect(try await pair.server.readLine(maxLength: 10) == "after")
        await pair.close()
    }

    @Test("the limit is exact: maxLength bytes pass, with LF or CR-LF split across arrivals; one more does not")
    func exactLimit() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write("0123456789\r")
        // The CR may begin the CR-LF: no error while it could.
        let reader = Task { try await pair.server.readLine(maxLength: 10) }
        try await pair.client.write("\n01234567890\n")
        #expect(try await reader.value == "0123456789")
        #expect(
            (await thrownError { _ = try await pair.server.readLine(maxLength: 10) } as? NetworkError)?.code
                == .lineTooLong)
        try await pair.client.write("ok\n")
        #expect(try await pair.server.readLine(maxLength: 10) == "ok")
        await pair.close()
    }

    @Test("the rest of an over-long line still arriving is skipped through its ending, without buffering it")
    func skipsArrivingRest() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write(String(repeating: "y", count: 100))
        #expect(
            (await thrownError { _ = try await pair.server.readLine(maxLength: 50) } as? NetworkError)?.code
                == .lineTooLong)
        let next = Task { try await pair.server.readLine(maxLength: 50) }
        for _ in 0..<10 { try await pair.client.write(String(repeating: "z", count: 100)) }
        try await pair.client.write("\r\nnext\r\n")
        #expect(try await next.value == "next")
        await pair.close()
    }

    @Test("after lineTooLong, a byte read takes the rest of the line as it comes; maxLength .max lifts the limit")
    func byteReadAfterLimitAndNoLimit() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write("abcdefgh")
        #expect(
            (await thrownError { _ = try await pair.server.readLine(maxLength: 4) } as? NetworkError)?.code
                == .lineTooLong)
        try await pair.client.write("rest\n")
        #expect(try await pair.server.read(exactly: 5) == Array("rest\n".utf8))
        let long = String(repeating: "l", count: 200_000)
        try await pair.client.write(long + "\n")
        #expect(try await pair.server.readLine(maxLength: .max) == long)
        #expect(
            (await thrownError { _ = try await pair.server.readLine(maxLength: -1) } as? NetworkError)?.code
                == .invalidArgument)
        await pair.close()
    }

    @Test("lines and readLineEvent take the limit too; the default is 64 KiB")
    func sequenceAndEvent() async throws {
        #expect(TCPConnection.defaultMaximumLineLength == 65_536)
        let pair = try await LoopbackPair.make()
        try await pair.client.write(String(repeating: "e", count: 20) + "\n")
        let eventError = await thrownError { _ = try await sync(pair.server.readLineEvent(maxLength: 8)) }
        #expect((eventError as? NetworkError)?.code == .lineTooLong)
        try await pair.client.write("fits\n" + String(repeating: "s", count: 70_000) + "\n")
        var iterator = pair.server.lines.makeAsyncIterator()
        #expect(try await iterator.next() == "fits")
        #expect((await thrownError { _ = try await iterator.next() } as? NetworkError)?.code == .lineTooLong)
        await pair.close()
    }

    @Test("256 MiB without a newline grows the reader's peak memory by less than 64 MiB (default limit; child process)")
    func boundedMemory() async throws {
        guard !Self.insideChild else { return }
        let result = try await ExternalProcess.runTests(
            matching: "LineLimitTests/memoryInChild",
            environment: ["SOCKETS_LINE_MEMORY_CHILD": "1"],
            timeout: .seconds(300))
        let report = try #require(
            result.stdout.first { $0.hasPrefix("line-memory: ") },
            "the child reported nothing: \(result.stderr.suffix(2000))")
        #expect(result.status == 0, "\(result.stderr.suffix(2000))")
        let growth = try #require(Int(report.split(separator: "=").last ?? ""))
        print(report)
        #expect(growth < 64 << 10, "peak memory grew by \(growth) KiB")
    }

    @Test("the reader's side of the test above", .enabled(if: insideChild))
    func memoryInChild() async throws {
        let pair = try await LoopbackPair.make()
        let writer = Task {
            let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
            for _ in 0..<256 { try await pair.client.write(chunk) }
            try await pair.client.write("\nnext\n")
        }
        let before = Self.kibibytes("VmRSS")
        // Resets the peak (VmHWM) to the present size.
        if let clear = fopen("/proc/self/clear_refs", "w") {
            fputs("5", clear)
            fclose(clear)
        }
        let error = await thrownError { _ = try await pair.server.readLine() } as? NetworkError
        #expect(error?.code == .lineTooLong)
        #expect(try await pair.server.readLine() == "next")
        try await writer.value
        let growth = Self.kibibytes("VmHWM") - before
        let line = Array("line-memory: peak growth KiB=\(growth)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
        await pair.close()
    }

    /// A field of /proc/self/status, in KiB.
    private static func kibibytes(_ field: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }
}
