import Sockets
import Testing

@Suite("Example: udp-bridge (sync over a line, a datagram and a timeout)")
struct UDPBridgeExampleTests {
    /// Starts the bridge to `servicePort` and connects a client to it.
    private func startBridge(to servicePort: Int, idle: String) async throws -> (ExternalProcess, TCPConnection) {
        let bridge = try ExternalProcess(try ExternalProcess.productPath("udp-bridge"),
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
}
