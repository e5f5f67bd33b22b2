#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Synchronization
import Testing

/// A flag tasks can set and tests can read.
final class Flag: Sendable {
    private let value = LockedState(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

@Suite("Custodians")
struct CustodianTests {
    @Test("a scope closes every socket made in it; using one afterwards says its custodian was shut down")
    func scopeClosesSockets() async throws {
        let (listener, client, server, udp) = try await withCustodian { custodian in
            let listener = try await TCPListener(port: 0, host: "127.0.0.1")
            let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
            let server = try await listener.accept()
            let udp = try await UDPSocket()
            #expect(custodian.managedCount == 4)
            #expect(Custodian.current === custodian)
            return (listener, client, server, udp)
        }
        let accept = await thrownError { _ = try await listener.accept() } as? NetworkError
        #expect(accept?.code == .custodianShutDown)
        #expect(
            accept?.description.hasPrefix(
                "accept on 127.0.0.1:\(listener.port) failed: its custodian has been shut down") == true)
        let read = await thrownError { _ = try await client.read() } as? NetworkError
        #expect(read?.code == .custodianShutDown)
        let write = await thrownError { try await server.write("x") } as? NetworkError
        #expect(write?.code == .custodianShutDown)
        let bind = await thrownError { try await udp.bind(port: 0) } as? NetworkError
        #expect(bind?.code == .custodianShutDown)
        #expect(Custodian.current == nil)
    }

    @Test("no descriptor outlives the scope")
    func descriptorsClosed() async throws {
        let sampled = try await withCustodian { _ in
            let listener = try await TCPListener(port: 0, host: "127.0.0.1")
            let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
            let server = try await listener.accept()
            return [listener.fileDescriptor, client.fileDescriptor, server.fileDescriptor].map {
                ($0, inodeOfDescriptor($0))
            }
        }
        for (descriptor, inode) in sampled {
            #expect(inode != nil)
            #expect(inodeOfDescriptor(descriptor) != inode)
        }
    }

    @Test("spawned tasks are cancelled and awaited when the body returns, throws, or is cancelled")
    func tasksCancelledAndAwaited() async throws {
        // Returns.
        let cancelled = Flag()
        try await withCustodian { custodian in
            let listener = try await TCPListener(port: 0, host: "127.0.0.1")
            custodian.spawn {
                do { _ = try await listener.accept() } catch { cancelled.set() }
            }
        }
        #expect(cancelled.isSet)
        // Throws.
        struct Boom: Error {}
        let alsoCancelled = Flag()
        await #expect(throws: Boom.self) {
            try await withCustodian { custodian in
                custodian.spawn {
                    try? await Task.sleep(for: .seconds(60))
                    alsoCancelled.set()
                }
                throw Boom()
            }
        }
        #expect(alsoCancelled.isSet)
        // The enclosing task is cancelled.
        let stopped = Flag()
        let outer = Task {
            try await withCustodian { custodian in
                let socket = try await UDPSocket()
                try await socket.bind(host: "127.0.0.1", port: 0)
                custodian.spawn {
                    _ = try? await socket.receive()
                    stopped.set()
                }
                try await Task.sleep(for: .seconds(60))
            }
        }
        outer.cancel()
        _ = try await withinTimeLimit(10) { await outer.result }
        #expect(stopped.isSet)
    }

    @Test("shutdownAll from another task; nested custodians; closing by hand leaves the custodian")
    func shutdownAndNesting() async throws {
        let parent = Custodian(parent: nil)
        let (listener, child, inner) = try await Custodian.$current.withValue(parent) {
            let listener = try await TCPListener(port: 0, host: "127.0.0.1")
            let child = Custodian()
            let inner = try await Custodian.$current.withValue(child) { try await UDPSocket() }
            return (listener, child, inner)
        }
        #expect(child.parent === parent)
        #expect(parent.managedCount == 1 && child.managedCount == 1)
        let byHand = try await Custodian.$current.withValue(parent) { try await UDPSocket() }
        #expect(parent.managedCount == 2)
        try await byHand.close()
        #expect(parent.managedCount == 1)
        await Task.detached { await parent.shutdownAll() }.value
        #expect(parent.isShutDown && child.isShutDown)
        #expect(await listener.isClosed)
        #expect(await inner.isClosed)
        let late =
            await thrownError {
                _ = try await Custodian.$current.withValue(child) { try await UDPSocket() }
            } as? NetworkError
        #expect(late?.code == .custodianShutDown)
        #expect(child.spawn {} == false)
    }

    @Test("withCustodian and the other with… scopes take a non-Sendable body that uses a @MainActor type's state")
    @MainActor func fromMainActor() async throws {
        let counter = MainActorCounter()
        #expect(try await counter.run() == 5)
        #expect(counter.portsSeen.count == 1)
    }
}

/// Compiles only when the scopes take the caller's isolation: each body mutates main-actor state.
@MainActor
final class MainActorCounter {
    var count = 0
    var portsSeen: [Int] = []

    func run() async throws -> Int {
        let listener = try await withCustodian { custodian in
            count += 1
            let listener = try await TCPListener(port: 0, host: "127.0.0.1")
            portsSeen.append(listener.port)
            return listener  // not Sendable-constrained: any result type
        }
        #expect(await listener.isClosed)
        await BufferMode.withValue(.none) { count += 1 }
        await TCPTimeouts.withValue(.chicken) { count += 1 }
        await EventLoop.pool[0].withExecutorPreference { count += 1 }
        try await withCustodian { _ in count += 1 }
        return count
    }
}
