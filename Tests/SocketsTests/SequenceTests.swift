import Sockets
import Testing

@Suite("Sequences end cleanly")
struct SequenceTests {
    @Test("the connections sequence ends without error when its task is cancelled")
    func connectionsEndOnCancellation() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let iterating = Task {
            var count = 0
            for try await _ in listener.connections { count += 1 }
            return count
        }
        iterating.cancel()
        #expect(try await withinTimeLimit(10) { try await iterating.value } == 0)
        // Nothing was accepted by the cancelled sequence: a client now is accepted by accept().
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        #expect(try await listener.accept().remoteAddress.port == client.localAddress.port)
        try await client.close()
        try await listener.close()
    }

    @Test("the datagrams sequence ends without error when its task is cancelled, consuming nothing")
    func datagramsEndOnCancellation() async throws {
        let socket = try await UDPSocket()
        try await socket.bind(host: "127.0.0.1", port: 0)
        let iterating = Task {
            var count = 0
            for try await _ in socket.datagrams { count += 1 }
            return count
        }
        iterating.cancel()
        #expect(try await withinTimeLimit(10) { try await iterating.value } == 0)
        let port = try await socket.addresses().localPort
        let sender = try await UDPSocket()
        try await sender.send(Array("kept".utf8), to: "127.0.0.1", port: port)
        #expect(try await socket.receive().bytes == Array("kept".utf8))
    }
}
