#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Testing

@Suite("Events and sync")
struct SyncTests {
    enum Arrival: Sendable {
        case first(TCPConnection)
        case second(TCPConnection)
        case datagram(Datagram)
    }

    @Test("two listeners and a UDP socket raced 1,600 times: every connection and datagram arrives exactly once")
    func notChosenHasNoEffect() async throws {
        let first = try await TCPListener(port: 0, host: "127.0.0.1", backlog: 512)
        let second = try await TCPListener(port: 0, host: "127.0.0.1", backlog: 512)
        let udp = try await UDPSocket()
        try await udp.bind(host: "127.0.0.1", port: 0)
        try await udp.setReceiveBufferSize(4 << 20)
        let udpPort = try await udp.addresses().localPort
        let connections = 300
        let datagrams = 1000
        let producer = Task {
            let sender = try await UDPSocket()
            var held: [TCPConnection] = []
            for index in 0..<max(connections, datagrams) {
                if index < connections {
                    for (listener, tag) in [(first, "a"), (second, "b")] {
                        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
                        try await client.writeLine("\(tag)\(index)")
                        try await client.flush()
                        held.append(client)
                    }
                }
                if index < datagrams { try await sender.send(Array("d\(index)".utf8), to: "127.0.0.1", port: udpPort) }
            }
            return held
        }
        let arrivals = try await withinTimeLimit(60) {
            var arrivals: [Arrival] = []
            while arrivals.count < 2 * connections + datagrams {
                arrivals.append(
                    try await sync(
                        first.acceptEvent().map { Arrival.first($0) },
                        second.acceptEvent().map { Arrival.second($0) },
                        udp.receiveEvent().map { Arrival.datagram($0) }))
            }
            return arrivals
        }
        var tags: [String] = []
        for arrival in arrivals {
            switch arrival {
            case .first(let connection), .second(let connection):
                tags.append(try await connection.readLine() ?? "?")
                try await connection.close()
            case .datagram(let datagram):
                tags.append(String(decoding: datagram.bytes, as: UTF8.self))
            }
        }
        let expected = (0..<connections).flatMap { ["a\($0)", "b\($0)"] } + (0..<datagrams).map { "d\($0)" }
        #expect(tags.sorted() == expected.sorted())
        #expect(try await first.tryAccept() == nil)
        #expect(try await second.tryAccept() == nil)
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try await udp.tryReceive(into: &buffer) == nil)
        for client in try await producer.value { try await client.close() }
    }

    @Test("fair: of two always-ready events, each is chosen about half the time")
    func fairness() async throws {
        var counts = [0, 0]
        for _ in 0..<2000 {
            counts[try await sync(Event.always(0), Event.always(1))] += 1
        }
        #expect(counts[0] > 700 && counts[1] > 700)
    }

    @Test("sync(timeout:) returns nil when nothing is ready, the value when something is")
    func timeout() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let none = try await sync(timeout: .milliseconds(50), listener.acceptEvent())
        #expect(none == nil)
        #expect(try await sync(timeout: .zero, listener.readyEvent()) == nil)
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        let ready = try await sync(timeout: .seconds(10), listener.readyEvent())
        #expect(ready === listener)
        let accepted = try await sync(timeout: .seconds(10), listener.acceptEvent())
        #expect(accepted?.remoteAddress.port == client.localAddress.port)
        let alarm: Void? = try await sync(timeout: .seconds(10), Event.timeout(after: .milliseconds(10)))
        #expect(alarm != nil)
        try await client.close()
    }

    @Test("a cancelled sync commits nothing: the client it waited for is accepted by a later accept")
    func cancelledSync() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let waiting = Task { try await sync(listener.acceptEvent(), Event<TCPConnection>.never) }
        waiting.cancel()
        #expect(await waiting.result.failure is CancellationError)
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        let accepted = try await listener.accept()
        #expect(accepted.remoteAddress.port == client.localAddress.port)
        try await client.close()
    }

    @Test("read-line events: the chosen one takes a line; one not chosen leaves its bytes for the next read")
    func readLineEvents() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write("partial")
        // Not ready (no whole line): the timeout is chosen, and the partial line stays in the connection.
        let early = try await sync(timeout: .milliseconds(30), pair.server.readLineEvent())
        #expect(early == nil)
        try await pair.client.write(" line\nnext")
        let line = try await sync(pair.server.readLineEvent(), Event<String?>.never)
        #expect(line == "partial line")
        #expect(try await pair.server.read(exactly: 4) == Array("next".utf8))
        try await pair.client.closeOutput()
        let end = try await sync(pair.server.readLineEvent())
        #expect(end == .some(nil))
        #expect(try await sync(pair.server.writableEvent()) === pair.server)
        await pair.close()
    }

    @Test("UDP events: send and receive events commit once; readiness events report the socket")
    func udpEvents() async throws {
        let a = try await UDPSocket()
        let b = try await UDPSocket()
        try await b.bind(host: "127.0.0.1", port: 0)
        let portB = try await b.addresses().localPort
        try await sync(a.sendEvent(Array("evt".utf8), to: "127.0.0.1", port: portB))
        #expect(try await sync(b.receiveReadyEvent()) === b)
        let datagram = try await sync(b.receiveEvent())
        #expect(datagram.bytes == Array("evt".utf8))
        #expect(try await sync(a.sendReadyEvent()) === a)
        try await a.connect(host: "127.0.0.1", port: portB)
        try await sync(a.sendEvent(Array("connected".utf8)))
        #expect(try await b.receive().bytes == Array("connected".utf8))
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try await b.tryReceive(into: &buffer) == nil)
    }
}
