// The echo-server product as a process: it echoes, and it exits 0 on SIGTERM and SIGINT as its header
// promises (.ci/run checks the release build the same way).
#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Testing

@Suite("echo-server as a process")
struct EchoServerSignalTests {
    @Test("echo-server echoes, then exits 0 on the signal", .timeLimit(.minutes(1)), arguments: [SIGTERM, SIGINT])
    func exitsZeroOnSignal(_ signalNumber: Int32) async throws {
        let server = try ExternalProcess(try ExternalProcess.productPath("echo-server"), ["--port", "0"])
        let line = try #require(try await server.readLine(), "echo-server stderr: \(server.stderrSoFar)")
        try #require(line.hasPrefix("echo-server listening on 127.0.0.1:"), "unexpected first line: \(line)")
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0) })

        try await TCPTimeouts.withValue(TCPTimeouts(read: .seconds(20), write: .seconds(20), connect: .seconds(20))) {
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: port)
            try await connection.writeLine("echo me")
            try await connection.closeOutput()
            #expect(try await connection.readLine() == "echo me")
            #expect(try await connection.readLine() == nil)
            try await connection.close()
        }

        server.sendSignal(signalNumber)
        let status = try await server.waitForExit()
        #expect(status == 0, "echo-server: \(server.stderrSoFar)")
    }
}
