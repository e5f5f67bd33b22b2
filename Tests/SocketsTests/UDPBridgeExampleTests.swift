#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Testing

@Suite("Example: udp-bridge (sync over a line, a datagram and a timeout)")
struct UDPBridgeExampleTests {
    /// Starts the bridge to `servicePort` and connects a client to it.
    private func startBridge(to servicePort: Int, idle: String) async throws -> (ExternalProcess, TCPConnection) {
        let bridge = try ExternalProcess(
            try ExternalProcess.productPath("udp-bridge"),
            ["--port", "0", "--to", "127.0.0.1:\(servicePort)", "--idle", idle])
        let line = try #require(try await bridge.readLine())
        let port = try #require(Int(line.split(separator: ":").last ?? ""))
        return (bridge, try await TCPConnection.connect(host: "127.0.0.1", port: port))
    }

    @Test("lines become datagrams and datagrams become lines")
    func bridgesBothWays() async throws {
        let service = try await UDPSocket()
        try await service.bind(host: "127.0.0.1", port: 0)
        let (bridge, client) = try await startBridge(to: try await service.addresses().localPort, idle: "600")
        try await client.writeLine("ping")
        try await client.flush()
        let datagram = try await withinTimeLimit(20) { try await service.receive() }
        #expect(datagram.bytes == Array("ping".utf8))
        try await service.send(Array("pong".utf8), to: datagram.address)
        #expect(try await withinTimeLimit(20) { try await client.readLine() } == "pong")
        try await client.close()
        await bridge.terminate()
    }

    @Test("an idle client is dropped when the timeout event is chosen")
    func dropsIdleClient() async throws {
        let service = try await UDPSocket()
        try await service.bind(host: "127.0.0.1", port: 0)
        let (bridge, client) = try await startBridge(to: try await service.addresses().localPort, idle: "0.2")
        #expect(try await withinTimeLimit(20) { try await client.readLine() } == nil)
        try await client.close()
        await bridge.terminate()
    }

    @Test("after the client's half-close the replies still owed are delivered, then the bridge closes")
    func repliesAfterHalfClose() async throws {
        let service = try await UDPSocket()
        try await service.bind(host: "127.0.0.1", port: 0)
        let (bridge, client) = try await startBridge(to: try await service.addresses().localPort, idle: "10")
        // As `printf 'hi\n' | nc -N 127.0.0.1 PORT` does: one line, then end-of-file at once.
        try await client.writeLine("hi")
        try await client.closeOutput()
        let datagram = try await withinTimeLimit(20) { try await service.receive() }
        try await service.send(Array("HI".utf8), to: datagram.address)
        #expect(try await withinTimeLimit(20) { try await client.readLine() } == "HI")
        #expect(try await withinTimeLimit(20) { try await client.readLine() } == nil)
        try await client.close()
        await bridge.terminate()
    }

    @Test("a UDP service that is down is reported on standard error, and its client is closed")
    func serviceDown() async throws {
        // A port that was just free: nothing listens there, so the kernel answers with port unreachable.
        let probe = try await UDPSocket()
        try await probe.bind(host: "127.0.0.1", port: 0)
        let deadPort = try await probe.addresses().localPort
        try await probe.close()
        let (bridge, client) = try await startBridge(to: deadPort, idle: "10")
        try await client.writeLine("anyone?")
        try await client.writeLine("hello?")
        #expect(try await withinTimeLimit(20) { try await client.readLine() } == nil)
        let report = try await bridge.readLine(from: .stderr, timeout: .seconds(20)) { $0.contains("is down") }
        #expect(report.contains("127.0.0.1:\(deadPort)"))
        try await client.close()
        await bridge.terminate()
    }

    @Test("--help describes every option and exits 0; SIGINT exits 0", .timeLimit(.minutes(1)))
    func helpAndSignal() async throws {
        let path = try ExternalProcess.productPath("udp-bridge")
        let help = try await ExternalProcess.run(path, ["--help"])
        #expect(help.status == 0)
        let text = help.stdout.joined(separator: "\n")
        for option in ["--to HOST:PORT", "--port N", "--idle SECONDS", "default 7001", "default 60"] {
            #expect(text.contains(option), "--help does not mention \(option)")
        }
        let (bridge, client) = try await startBridge(to: 9, idle: "10")
        bridge.sendSignal(SIGINT)
        #expect(try await bridge.waitForExit() == 0, "udp-bridge: \(bridge.stderrSoFar)")
        try await client.close()
    }
}
