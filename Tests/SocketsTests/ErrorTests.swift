#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Testing

@Suite("Errors: Errno as a pattern, the common questions, resolution codes")
struct ErrorTests {
    @Test("catch Errno.connectionRefused catches the NetworkError of a refused connect")
    func catchErrnoPattern() async throws {
        let refused = try RefusedPort()
        defer { withExtendedLifetime(refused) {} }
        let port = refused.port
        var caughtByPattern = false
        do {
            _ = try await TCPConnection.connect(host: "127.0.0.1", port: port)
            Issue.record("the connect to a closed port succeeded")
        } catch Errno.connectionReset {
            Issue.record("matched the wrong error number")
        } catch Errno.connectionRefused {
            caughtByPattern = true
        }
        #expect(caughtByPattern)
    }

    @Test("an Errno pattern matches a thrown Errno or NetworkError of that number, and nothing else")
    func errnoPatternMatching() {
        #expect(Errno.connectionRefused ~= Errno.connectionRefused)
        #expect(!(Errno.connectionRefused ~= Errno.connectionReset))
        #expect(Errno.addressInUse ~= NetworkError(.system(.addressInUse), operation: "listen"))
        #expect(!(Errno.addressInUse ~= NetworkError(.system(.permissionDenied), operation: "listen")))
        #expect(!(Errno.timedOut ~= NetworkError(.timedOut, operation: "read")))
        #expect(!(Errno.interrupted ~= CancellationError()))
    }

    @Test("swift-system's names: the same error numbers as the C constants")
    func swiftSystemNames() {
        #expect(Errno.connectionAbort.rawValue == ECONNABORTED)
        #expect(Errno.nowInProgress.rawValue == EINPROGRESS)
        #expect(Errno.noRouteToHost.rawValue == EHOSTUNREACH)
        #expect(Errno.socketIsConnected.rawValue == EISCONN)
        #expect(Errno.socketNotConnected.rawValue == ENOTCONN)
        #expect(Errno.notSocket.rawValue == ENOTSOCK)
        #expect(Errno.noRouteToHost.description == "No route to host (EHOSTUNREACH)")
    }

    @Test("isRefused: a refused connect, and nothing else")
    func refusedQuestion() async throws {
        let refused = try RefusedPort()
        defer { withExtendedLifetime(refused) {} }
        let port = refused.port
        let error = try #require(
            await thrownError { _ = try await TCPConnection.connect(host: "127.0.0.1", port: port) } as? NetworkError)
        #expect(error.isRefused)
        #expect(!error.isTimeout)
        #expect(!error.isPeerGone)
        #expect(!NetworkError(.system(.connectionReset), operation: "read").isRefused)
    }

    @Test("isTimeout: the library's deadline and the kernel's ETIMEDOUT are both a timeout")
    func timeoutQuestion() async throws {
        let pair = try await LoopbackPair.make()
        await pair.server.setTimeouts(read: .milliseconds(50), write: nil)
        let deadline = try #require(await thrownError { _ = try await pair.server.read() } as? NetworkError)
        #expect(deadline.code == .timedOut)
        #expect(deadline.isTimeout)
        #expect(!deadline.isRefused && !deadline.isPeerGone)
        await pair.close()

        let kernel = NetworkError(.system(.timedOut), operation: "connect", address: "192.0.2.1:80")
        #expect(kernel.isTimeout)
        #expect(!NetworkError(.system(.connectionRefused), operation: "connect").isTimeout)
        #expect(!NetworkError(.closed, operation: "read").isTimeout)
    }

    @Test("isPeerGone: writing to a closed peer, and reading exactly past its end-of-file")
    func peerGoneQuestion() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write("abc")
        try await pair.client.closeOutput()
        let short = try #require(await thrownError { _ = try await pair.server.read(exactly: 10) } as? NetworkError)
        #expect(short.code == .endOfFile)
        #expect(short.isPeerGone)

        try await pair.client.close()
        var failure: NetworkError?
        for _ in 0..<100 where failure == nil {
            do {
                try await pair.server.write(patternBytes(65536))
                try await pair.server.flush()
            } catch let error as NetworkError {
                failure = error
            }
        }
        let error = try #require(failure)
        #expect(error.isPeerGone)
        #expect(!error.isTimeout && !error.isRefused)
        await pair.close()
    }

    @Test("NetworkError is Hashable: equal errors collapse in a set, different ones do not")
    func hashable() {
        let refused = NetworkError(.system(.connectionRefused), operation: "connect", address: "127.0.0.1:9")
        let same = NetworkError(.system(.connectionRefused), operation: "connect", address: "127.0.0.1:9")
        let otherAddress = NetworkError(.system(.connectionRefused), operation: "connect", address: "127.0.0.1:10")
        let timeout = NetworkError(.timedOut, operation: "connect", address: "127.0.0.1:9")
        let errors: Set<NetworkError> = [refused, same, otherAddress, timeout]
        #expect(errors.count == 3)
        #expect(errors.contains(same))
    }

    @Test("an unknown host's resolution error has a name and the resolver's text")
    func resolutionNames() async throws {
        let error = try #require(
            await thrownError { _ = try await TCPConnection.connect(host: "no-such-host.invalid", port: 80) }
                as? NetworkError)
        let resolution = try #require(error.resolutionError)
        // With no resolver reachable, glibc answers "temporary failure" rather than "unknown".
        #expect(resolution == .unknownName || resolution == .temporaryFailure)
        #expect(error.description.hasSuffix("(\(resolution.name))"))
        #expect(ResolutionError.unknownName.description == "Name or service not known (EAI_NONAME)")
        #expect(ResolutionError(rawValue: EAI_SERVICE) == .serviceNotSupported)
        #expect(ResolutionError(rawValue: 12345).name == "EAI 12345")
        #expect(NetworkError(.resolution(.unknownName), operation: "resolve").errno == nil)

        let wrongFamily =
            await thrownError {
                _ = try await Resolver.resolve(host: "127.0.0.1", service: "80", family: .ipv6)
            } as? NetworkError
        #expect(wrongFamily?.resolutionError == .familyNotSupported)
    }
}
