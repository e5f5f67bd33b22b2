import Sockets
import Synchronization
import Testing

/// A bound server socket and a bound client socket on 127.0.0.1, and the server's port.
private func serverAndClient() async throws -> (server: UDPSocket, client: UDPSocket, port: Int) {
    let server = try await UDPSocket()
    try await server.bind(host: "127.0.0.1", port: 0)
    let client = try await UDPSocket()
    try await client.bind(host: "127.0.0.1", port: 0)
    return (server, client, try await server.addresses().localPort)
}

/// Serves `server` with an echo, once one datagram has made the round trip through it.
private func servingEcho(_ server: UDPSocket, _ client: UDPSocket, port: Int) async throws -> Task<Void, any Error> {
    let serving = Task { try await serve(server) { $0.bytes } }
    try await client.send([1], to: "127.0.0.1", port: port)
    let reply = try await withinTimeLimit(10) { try await client.receive() }
    #expect(reply.bytes == [1])
    return serving
}

private struct Boom: Error {}

/// What the handlers saw, across tasks.
private final class Handled: Sendable {
    let numbers = Mutex<[Int]>([])
}

@Suite("serve(UDPSocket): a handler per datagram, its replies sent back in batches")
struct ServeDatagramsTests {
    @Test("every datagram reaches the handler once, in order, and its reply reaches the sender once, in order")
    func repliesInOrder() async throws {
        let (server, client, port) = try await serverAndClient()
        let serving = Task {
            try await serve(server) { datagram in Array("re:".utf8) + datagram.bytes }
        }
        // Windows of 32 arrive together: one receive of the server brings several, and their replies go out
        // together. 50 windows, every reply counted and checked.
        let rounds = 50
        let window = 32
        let replies = try await withinTimeLimit(30) {
            var replies = 0
            for round in 0..<rounds {
                for index in 0..<window {
                    try await client.send(Array("\(round).\(index)".utf8), to: "127.0.0.1", port: port)
                }
                for index in 0..<window {
                    let reply = try await client.receive()
                    #expect(reply.bytes == Array("re:\(round).\(index)".utf8))
                    #expect(reply.address.port == port)
                    replies += 1
                }
            }
            return replies
        }
        #expect(replies == rounds * window)
        var buffer = [UInt8](repeating: 0, count: 64)
        #expect(try await client.tryReceive(into: &buffer) == nil, "no reply more than once")
        serving.cancel()
        try await serving.value
        try await client.close()
        try await server.close()
    }

    @Test("a nil reply sends nothing; empty datagrams and empty replies go both ways")
    func nilAndEmptyReplies() async throws {
        let (server, client, port) = try await serverAndClient()
        let serving = Task {
            try await serve(server) { datagram in datagram.bytes.first == UInt8(ascii: "s") ? nil : datagram.bytes }
        }
        for text in ["skip", "keep", "", "skip again", "end"] {
            try await client.send(Array(text.utf8), to: "127.0.0.1", port: port)
        }
        try await withinTimeLimit(10) {
            // Replies keep the order of their datagrams: a skipped one's reply would come before the next.
            let replies = [try await client.receive(), try await client.receive(), try await client.receive()]
            #expect(replies.map(\.bytes) == [Array("keep".utf8), [], Array("end".utf8)])
        }
        serving.cancel()
        try await serving.value
        try await client.close()
        try await server.close()
    }

    @Test("what the handler throws ends serve and is thrown; the replies before it were sent")
    func handlerErrorEndsServe() async throws {
        let (server, client, port) = try await serverAndClient()
        let serving = Task {
            try await serve(server) { datagram in
                if datagram.bytes == Array("boom".utf8) { throw Boom() }
                return datagram.bytes
            }
        }
        try await client.send(Array("one".utf8), to: "127.0.0.1", port: port)
        try await client.send(Array("boom".utf8), to: "127.0.0.1", port: port)
        try await withinTimeLimit(10) {
            let reply = try await client.receive()
            #expect(reply.bytes == Array("one".utf8))
            await #expect(throws: Boom.self) { try await serving.value }
        }
        try await client.close()
        try await server.close()
    }

    @Test("closing the socket ends serve without error")
    func closeEndsServe() async throws {
        let (server, client, port) = try await serverAndClient()
        let serving = try await servingEcho(server, client, port: port)
        try await withinTimeLimit(10) {
            try await server.close()
            try await serving.value
        }
        try await client.close()
    }

    @Test("cancelling ends serve without error, and the socket keeps its next datagram for the next receive")
    func cancellationEndsServe() async throws {
        let (server, client, port) = try await serverAndClient()
        let serving = try await servingEcho(server, client, port: port)
        try await withinTimeLimit(10) {
            serving.cancel()
            try await serving.value
            try await client.send([2], to: "127.0.0.1", port: port)
            let next = try await server.receive()
            #expect(next.bytes == [2])
        }
        try await client.close()
        try await server.close()
    }

    @Test("cancelled mid-stream, it loses no datagram: each reaches its handler or the socket's next receive, once")
    func cancelledMidStream() async throws {
        let (server, client, port) = try await serverAndClient()
        let handled = Handled()
        let perRound = 100
        var seen: [Int] = []
        for round in 0..<20 {
            let serving = Task {
                try await serve(server) { datagram in
                    handled.numbers.withLock { $0.append(Int(String(decoding: datagram.bytes, as: UTF8.self))!) }
                    return nil
                }
            }
            for index in 0..<perRound {
                try await client.send(Array("\(round * perRound + index)".utf8), to: "127.0.0.1", port: port)
                if index == round * 5 { serving.cancel() }
            }
            try await serving.value
            let took = handled.numbers.withLock { taken in
                defer { taken.removeAll() }
                return taken
            }
            seen += took
            // The rest wait for the socket's next receives: all of them, or this times out.
            let rest = perRound - took.filter { $0 / perRound == round }.count
            seen += try await withinTimeLimit(10) {
                var drained: [Int] = []
                for _ in 0..<rest {
                    let datagram = try await server.receive()
                    drained.append(Int(String(decoding: datagram.bytes, as: UTF8.self))!)
                }
                return drained
            }
        }
        #expect(seen == Array(0..<(20 * perRound)), "every datagram once, in order")
        try await client.close()
        try await server.close()
    }

    @Test("a maxLength outside 0...65535 throws before any receive; so does an unbound socket")
    func invalidArguments() async throws {
        let socket = try await UDPSocket()
        let negative = await thrownError { try await serve(socket, maxLength: -1) { $0.bytes } } as? NetworkError
        #expect(negative?.code == .invalidArgument)
        let unbound = await thrownError { try await serve(socket) { $0.bytes } } as? NetworkError
        #expect(unbound?.description.contains("not bound") == true)
        try await socket.close()
    }
}
