#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Testing

@Suite("TCPListener")
struct ListenerTests {
    @Test("port 0 gives an ephemeral port that the listener reports and clients reach")
    func ephemeralPort() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        #expect(listener.port > 0)
        let addresses = try await listener.addresses()
        #expect(addresses.localPort == listener.port)
        #expect(addresses.localHost == "127.0.0.1")
        #expect(addresses.remoteHost == "0.0.0.0")
        #expect(addresses.remotePort == 0)
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        let server = try await listener.accept()
        #expect(client.remoteAddress.port == listener.port)
        #expect(server.remoteAddress.port == client.localAddress.port)
        try await client.close()
        try await server.close()
        try await listener.close()
    }

    @Test("a listener with no host listens on IPv4 and IPv6 and reports 0.0.0.0")
    func allAddresses() async throws {
        let listener = try await TCPListener(port: 0)
        let addresses = try await listener.addresses()
        #expect(addresses.localHost == "0.0.0.0")
        #expect(addresses.remoteHost == "0.0.0.0")
        let four = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        _ = try await listener.accept()
        if listener.fileDescriptors.count == 2 {
            let six = try await TCPConnection.connect(host: "::1", port: listener.port)
            let accepted = try await listener.accept()
            #expect(accepted.remoteAddress.family == .ipv6)
            try await six.close()
        }
        try await four.close()
        try await listener.close()
    }

    @Test("IPv6 loopback: listen on ::1, connect to [::1]:port")
    func ipv6Loopback() async throws {
        let listener = try await TCPListener(port: 0, host: "::1")
        let client = try await TCPConnection.connect(to: "[::1]:\(listener.port)")
        let server = try await listener.accept()
        try await client.writeLine("over six")
        try await client.flush()
        #expect(try await server.readLine() == "over six")
        let addresses = try await server.addresses()
        #expect(addresses.localHost == "::1")
        #expect(addresses.remoteHost == "::1")
        #expect(client.remoteAddress.description == "[::1]:\(listener.port)")
        try await client.close()
        try await server.close()
        try await listener.close()
    }

    @Test("closing twice throws, and the text says the listener is already closed")
    func doubleClose() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        try await listener.close()
        let error = await thrownError { try await listener.close() } as? NetworkError
        #expect(error?.code == .closed)
        #expect(error?.description.contains("already closed") == true)
        await #expect(throws: NetworkError.self) { try await listener.addresses() }
        await #expect(throws: NetworkError.self) { try await listener.isAcceptReady() }
        await #expect(throws: NetworkError.self) { try await listener.accept() }
    }

    @Test("an accept waiting when the listener closes throws promptly")
    func acceptPendingAtClose() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let pending = Task { try await listener.accept() }
        try await listener.close()
        let error = try await withinTimeLimit(5) { await pending.result }
        guard case .failure(let failure) = error else {
            Issue.record("accept returned a connection after close")
            return
        }
        let networkError = try #require(failure as? NetworkError)
        #expect(networkError.code == .closed)
        #expect(networkError.description.contains("accept"))
    }

    @Test("tryAccept returns nil at once with no client, and the client once one waits; accept-ready agrees")
    func nonBlockingAccept() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        #expect(try await listener.tryAccept() == nil)
        #expect(try await listener.isAcceptReady() == false)
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        var accepted: TCPConnection?
        for _ in 0..<2000 where accepted == nil {
            if try await listener.isAcceptReady() {
                accepted = try await listener.tryAccept()
            } else {
                await Task.yield()
            }
        }
        let server = try #require(accepted)
        #expect(server.remoteAddress.port == client.localAddress.port)
        #expect(try await listener.isAcceptReady() == false)
        try await client.close()
        try await listener.close()
    }

    @Test("clients not yet accepted see end-of-file or a reset when the listener closes")
    func unacceptedClientsAtClose() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        try await listener.close()
        do {
            let got = try await withinTimeLimit(5) { try await client.read(upTo: 10) }
            #expect(got == nil)
        } catch let error as NetworkError {
            #expect(error.errno == .connectionReset)
        }
        try await client.close()
    }

    @Test("MIT Scheme's open-tcp-server-socket takes a service; an unknown name is refused")
    func serviceListener() async throws {
        let listener = try await TCPListener(service: "0", host: "127.0.0.1")
        #expect(listener.port > 0)
        try await listener.close()
        let error = await thrownError { _ = try await TCPListener(service: "no-such-service") } as? NetworkError
        #expect(error?.description.hasPrefix("resolve of *:no-such-service failed") == true)
    }

    @Test("bad arguments throw before any system call, with a clear text")
    func badArguments() async throws {
        let tooHigh = await thrownError { _ = try await TCPListener(port: 70000) } as? NetworkError
        #expect(tooHigh?.code == .invalidArgument)
        #expect(tooHigh?.description.contains("port 70000 is outside 0...65535") == true)
        let negative = await thrownError { _ = try await TCPListener(port: -1) } as? NetworkError
        #expect(negative?.code == .invalidArgument)
        let backlog = await thrownError { _ = try await TCPListener(port: 0, backlog: -4) } as? NetworkError
        #expect(backlog?.description.contains("backlog") == true)
        let empty = await thrownError { _ = try await TCPListener(port: 0, host: "") } as? NetworkError
        #expect(empty?.description.contains("host name is empty") == true)
        let huge =
            await thrownError {
                _ = try await TCPListener(port: 0, host: String(repeating: "x", count: 10_000))
            } as? NetworkError
        #expect(huge?.code == .invalidArgument)
        #expect(huge?.description.contains("10000 bytes long") == true)
    }

    @Test("a port in use is refused with EADDRINUSE, naming the address")
    func portInUse() async throws {
        let first = try await TCPListener(port: 0, host: "127.0.0.1")
        let error =
            await thrownError { _ = try await TCPListener(port: first.port, host: "127.0.0.1") } as? NetworkError
        #expect(error?.errno == .addressInUse)
        #expect(error?.description == "listen on 127.0.0.1:\(first.port) failed: Address already in use (EADDRINUSE)")
        try await first.close()
    }

    @Test("CHICKEN's tcp-listener-fileno: the descriptor is a listening socket")
    func fileDescriptor() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(listener.fileDescriptor, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0)
        #expect(listening == 1)
        try await listener.close()
    }

    @Test("the accept timeout throws a timeout error and leaves the listener usable")
    func acceptTimeout() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let error =
            await TCPTimeouts.withValue(TCPTimeouts(accept: .milliseconds(50))) {
                await thrownError { _ = try await listener.accept() }
            } as? NetworkError
        #expect(error?.code == .timedOut)
        #expect(error?.description.contains("accept on 127.0.0.1:\(listener.port) failed: timed out") == true)
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        _ = try await listener.accept()
        try await client.close()
        try await listener.close()
    }

    @Test("the connections sequence serves 200 concurrent clients, each echoed exactly, and ends on close")
    func twoHundredClients() async throws {
        // A backlog for every client at once: past it, a loaded machine (the thread sanitizer) overflows the
        // accept queue, and the kernel's recovery from that resets connections now and then.
        let listener = try await TCPListener(port: 0, host: "127.0.0.1", backlog: 256)
        let server = Task {
            await withDiscardingTaskGroup { group in
                do {
                    for try await connection in listener.connections {
                        group.addTask {
                            do {
                                try await connection.setBufferMode(.none)
                                while let bytes = try await connection.read(upTo: 4096) {
                                    try await connection.write(bytes)
                                }
                            } catch {
                                Issue.record("the server's side of \(connection.remoteAddress) failed: \(error)")
                            }
                            try? await connection.close()
                        }
                    }
                } catch {}
            }
        }
        try await withinTimeLimit(60) {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
                        let message = patternBytes(5000, seed: index)
                        try await client.write(message)
                        try await client.closeOutput()
                        var echoed: [UInt8] = []
                        while let bytes = try await client.read() { echoed += bytes }
                        try await client.close()
                        return echoed == message
                    }
                }
                var exact = 0
                for try await ok in group where ok { exact += 1 }
                #expect(exact == 200)
            }
        }
        try await listener.close()
        _ = try await withinTimeLimit(10) { await server.value }
    }
}
