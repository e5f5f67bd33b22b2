#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Sockets
import Testing

/// Seconds since `start`, for timing assertions.
private func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

@Suite("connect races addresses (Happy Eyeballs) on loopback")
struct HappyEyeballsTests {
    @Test("a refused address starts the next at once, without waiting for the attempt delay")
    func failureStartsNextAttempt() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let refusing = try RefusedPort()
        defer { withExtendedLifetime(refusing) {} }
        let refused = refusing.port
        let start = ContinuousClock.now
        let connection = try await TCPConnection.connect(
            to: [
                SocketAddress(numericHost: "127.0.0.1", port: refused)!,
                SocketAddress(numericHost: "127.0.0.1", port: listener.port)!,
            ],
            timeout: .seconds(60), strategy: .happyEyeballs(attemptDelay: .seconds(30)))
        // Waiting for the attempt delay would take 30 s (the bound is loose for the thread sanitizer's full run).
        #expect(seconds(since: start) < 15)
        #expect(connection.remoteAddress.port == listener.port)
        try await connection.close()
        try await listener.close()
    }

    @Test("when every address fails, the error lists each address and why")
    func everyFailureListed() async throws {
        let refused = try RefusedPort()
        defer { withExtendedLifetime(refused) {} }
        let (v4, v6) = (refused.port, refused.port)
        for strategy in [ConnectStrategy.happyEyeballs, .sequential] {
            let error =
                await thrownError {
                    _ = try await TCPConnection.connect(
                        to: [
                            SocketAddress(numericHost: "::1", port: v6)!,
                            SocketAddress(numericHost: "127.0.0.1", port: v4)!,
                        ],
                        strategy: strategy)
                } as? NetworkError
            #expect(error?.errno == .connectionRefused, "\(strategy)")
            #expect(
                error?.description == "connect to [::1]:\(v6), 127.0.0.1:\(v4) failed: Connection refused "
                    + "(ECONNREFUSED): tried [::1]:\(v6): Connection refused (ECONNREFUSED); "
                    + "127.0.0.1:\(v4): Connection refused (ECONNREFUSED)", "\(strategy)")
        }
    }

    @Test("the attempts that lose are closed: a loser's peer reads end-of-file, the winner's reads bytes")
    func losersClosed() async throws {
        let listeners = [
            try await TCPListener(port: 0, host: "127.0.0.1"),
            try await TCPListener(port: 0, host: "127.0.0.1"),
            try await TCPListener(port: 0, host: "127.0.0.1"),
        ]
        // A zero attempt delay starts all three at once: on loopback more than one handshake may complete.
        let connection = try await TCPConnection.connect(
            to: listeners.map { SocketAddress(numericHost: "127.0.0.1", port: $0.port)! },
            timeout: .seconds(10), strategy: .happyEyeballs(attemptDelay: .zero))
        try await connection.write("winner\n")
        try await connection.flush()
        var winners = 0
        for listener in listeners {
            // Every handshake that completed is in a backlog by now: connect drained its race before returning.
            guard let accepted = try await listener.tryAccept() else { continue }
            let line = try await withinTimeLimit(10) { try await accepted.readLine() }
            if accepted.remoteAddress == connection.localAddress {
                #expect(line == "winner")
                winners += 1
            } else {
                #expect(line == nil, "a losing attempt was left open")
            }
            try await accepted.close()
        }
        #expect(winners == 1)
        try await connection.close()
        for listener in listeners { try await listener.close() }
    }

    @Test("bad arguments throw a clear invalid-argument error; a huge timeout is no deadline")
    func badArguments() async throws {
        let empty = await thrownError { _ = try await TCPConnection.connect(to: [SocketAddress]()) } as? NetworkError
        #expect(empty?.description == "connect failed: the list of addresses is empty")
        let portZero =
            await thrownError {
                _ = try await TCPConnection.connect(to: [SocketAddress(numericHost: "127.0.0.1", port: 0)!])
            } as? NetworkError
        #expect(portZero?.code == .invalidArgument)
        #expect(portZero?.description.contains("port 0 of 127.0.0.1:0 is outside 1...65535") == true)
        let negativeDelay =
            await thrownError {
                _ = try await TCPConnection.connect(
                    host: "localhost", port: 80,
                    strategy: .happyEyeballs(attemptDelay: .milliseconds(-1)))
            } as? NetworkError
        #expect(negativeDelay?.description == "connect to localhost:80 failed: the attempt delay is negative")
        let negativeResolution =
            await thrownError {
                _ = try await TCPConnection.connect(
                    to: "localhost:80",
                    strategy: .happyEyeballs(
                        attemptDelay: .milliseconds(250), resolutionDelay: .seconds(-1)))
            } as? NetworkError
        #expect(negativeResolution?.code == .invalidArgument)
        let negativeTimeout =
            await thrownError {
                _ = try await TCPConnection.connect(host: "localhost", port: 80, timeout: .seconds(-1))
            } as? NetworkError
        #expect(negativeTimeout?.description == "connect to localhost:80 failed: the timeout is negative")

        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let connection = try await TCPConnection.connect(
            host: "localhost", port: listener.port,
            timeout: .seconds(Int64.max))
        #expect(connection.remoteAddress.port == listener.port)
        try await connection.close()
        try await listener.close()
        #expect(ConnectStrategy.current == .happyEyeballs)
        #expect(
            ConnectStrategy.happyEyeballs.description
                == "happy eyeballs (attempt delay 0.25 s, resolution delay 0.05 s)")
    }

    static let canMakeNamespace =
        getuid() == 0
        && ["unshare", "ip", "nft", "mount"].allSatisfy(ExternalProcess.isInstalled)

    @Test(
        "runs the Happy Eyeballs tests in a network namespace of its own, with dead addresses and a dead resolver",
        .enabled(
            if: !HappyEyeballsNamespaceTests.inside && canMakeNamespace,
            "needs root, unshare, mount, ip and nft to make a network namespace"))
    func namespace() async throws {
        // The namespace's own /etc/hosts, resolver and name service order, bind-mounted in its mount namespace.
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("sockets-he-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = [
            "hosts": """
            127.0.0.1 localhost
            ::1 localhost
            \(HappyEyeballsNamespaceTests.deadIPv6) dual.test dead.test
            127.0.0.1 dual.test
            \(HappyEyeballsNamespaceTests.deadIPv4[0]) dead.test
            127.0.0.1 v4only.test
            \(HappyEyeballsNamespaceTests.deadIPv4[0]) many.test
            \(HappyEyeballsNamespaceTests.deadIPv4[1]) many.test
            \(HappyEyeballsNamespaceTests.deadIPv6) many.test
            \(HappyEyeballsNamespaceTests.otherDeadIPv6) many.test

            """,
            // Queries for names not in hosts go to an address whose packets are dropped: each takes 5 s.
            "resolv.conf": "nameserver 192.0.2.53\noptions timeout:5 attempts:1\n",
            "nsswitch.conf": "hosts: files dns\n",
            // Packets to 192.0.2.0/24 and 2001:db8::/32 (on lo) are dropped: a SYN gets no reply.
            "rules.nft": """
            table inet blackhole {
                chain input {
                    type filter hook input priority 0; policy accept;
                    ip daddr 192.0.2.0/24 drop
                    ip6 daddr 2001:db8::/32 drop
                }
            }

            """,
        ]
        for (name, text) in files {
            try text.write(to: directory.appendingPathComponent(name), atomically: false, encoding: .utf8)
        }
        let d = directory.path
        let setup =
            "mount --bind \(d)/hosts /etc/hosts && mount --bind \(d)/resolv.conf /etc/resolv.conf && "
            + "mount --bind \(d)/nsswitch.conf /etc/nsswitch.conf && ip link set lo up && "
            + "ip addr add 192.0.2.1/32 dev lo && ip addr add 192.0.2.2/32 dev lo && ip addr add 192.0.2.53/32 dev lo && "
            + "ip addr add \(HappyEyeballsNamespaceTests.deadIPv6)/128 dev lo && "
            + "ip addr add \(HappyEyeballsNamespaceTests.otherDeadIPv6)/128 dev lo && nft -f \(d)/rules.nft && "
            + "SOCKETS_HAPPY_EYEBALLS_NAMESPACE=1 exec \"$0\" --testing-library swift-testing "
            + "--filter HappyEyeballsNamespaceTests"
        let result = try await ExternalProcess.run(
            "unshare", ["-n", "-m", "sh", "-c", setup, CommandLine.arguments[0]],
            timeout: .seconds(120))
        let summary = result.stdout.last { $0.contains("Test run with") } ?? result.stderr
        let failures = result.stdout.filter { $0.contains("✘") || $0.contains("recorded an issue") }
        #expect(result.status == 0, "\(summary)\n\(failures.joined(separator: "\n"))")
        #expect(summary.contains("7 tests") && summary.contains("passed"), "\(summary)")
    }
}

/// Run only inside the namespace ``HappyEyeballsTests/namespace()`` makes, where `dual.test` has a dead IPv6
/// address and a live 127.0.0.1, `dead.test` only dead ones, `v4only.test` an instant A answer but an AAAA
/// answer that takes 5 s, and `slow.test` nothing but a resolver that takes 5 s. Serialized: they count the
/// process's descriptors.
@Suite("Happy Eyeballs in a network namespace", .serialized)
struct HappyEyeballsNamespaceTests {
    static let inside = ProcessInfo.processInfo.environment["SOCKETS_HAPPY_EYEBALLS_NAMESPACE"] == "1"
    static let deadIPv6 = "2001:db8::dead"
    static let otherDeadIPv6 = "2001:db8::beef"
    static let deadIPv4 = ["192.0.2.1", "192.0.2.2"]

    @Test(
        "a dead IPv6 and a live IPv4 address: connects in about the attempt delay; sequentially, times out",
        .enabled(if: inside))
    func deadAndLive() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        // The premise: the resolver puts the dead address first.
        let order = try await Resolver.resolve(host: "dual.test", service: "\(listener.port)")
        try #require(order.map(\.host) == [Self.deadIPv6, "127.0.0.1"])

        var start = ContinuousClock.now
        let connection = try await TCPConnection.connect(host: "dual.test", port: listener.port, timeout: .seconds(10))
        let elapsed = seconds(since: start)
        #expect(connection.remoteAddress.host == "127.0.0.1")
        // IPv6 went first and got no answer for the 250 ms attempt delay; sequentially it would take the 10 s.
        #expect(elapsed >= 0.2 && elapsed < 2, "connected after \(elapsed) s")
        try await connection.close()

        // The caller's own list races the same way.
        start = ContinuousClock.now
        let listed = try await TCPConnection.connect(to: order, timeout: .seconds(10))
        #expect(seconds(since: start) < 2)
        try await listed.close()

        // Racket's order, chosen for a task tree: stuck on the dead address until the deadline.
        start = ContinuousClock.now
        let sequential =
            await thrownError {
                _ = try await ConnectStrategy.$current.withValue(.sequential) {
                    try await TCPConnection.connect(host: "dual.test", port: listener.port, timeout: .seconds(1))
                }
            } as? NetworkError
        let sequentialElapsed = seconds(since: start)
        #expect(sequential?.code == .timedOut)
        #expect(
            sequential?.description == "connect to dual.test:\(listener.port) failed: timed out: no connection "
                + "within 1 s; tried [\(Self.deadIPv6)]:\(listener.port): no answer")
        #expect(sequentialElapsed >= 0.9 && sequentialElapsed < 3, "timed out after \(sequentialElapsed) s")
        try await listener.close()
    }

    @Test("only dead addresses: the deadline error, on time, naming every address tried", .enabled(if: inside))
    func onlyDeadAddresses() async throws {
        var start = ContinuousClock.now
        let byName =
            await thrownError {
                _ = try await TCPConnection.connect(host: "dead.test", port: 80, timeout: .milliseconds(700))
            } as? NetworkError
        var elapsed = seconds(since: start)
        #expect(byName?.code == .timedOut)
        #expect(
            byName?.description == "connect to dead.test:80 failed: timed out: no connection within 0.7 s; "
                + "tried [\(Self.deadIPv6)]:80: no answer; \(Self.deadIPv4[0]):80: no answer")
        #expect(elapsed >= 0.6 && elapsed < 2.5, "timed out after \(elapsed) s")

        start = ContinuousClock.now
        let single =
            await thrownError {
                _ = try await TCPConnection.connect(host: Self.deadIPv4[1], port: 80, timeout: .milliseconds(500))
            } as? NetworkError
        elapsed = seconds(since: start)
        #expect(
            single?.description == "connect to \(Self.deadIPv4[1]):80 failed: timed out: no connection within 0.5 s")
        #expect(elapsed >= 0.4 && elapsed < 2.5, "timed out after \(elapsed) s")
    }

    @Test(
        "the families alternate, IPv6 first, one attempt delay apart; sequentially, the resolver's order",
        .enabled(if: inside))
    func familiesInterleaved() async throws {
        // many.test lists two IPv4 addresses, then two IPv6 ones: all dead. Four attempts start within the deadline.
        let error =
            await thrownError {
                _ = try await TCPConnection.connect(
                    host: "many.test", port: 80, timeout: .milliseconds(1200),
                    strategy: .happyEyeballs(attemptDelay: .milliseconds(200)))
            } as? NetworkError
        #expect(error?.code == .timedOut)
        #expect(
            error?.detail == "no connection within 1.2 s; tried [\(Self.deadIPv6)]:80: no answer; "
                + "\(Self.deadIPv4[0]):80: no answer; [\(Self.otherDeadIPv6)]:80: no answer; \(Self.deadIPv4[1]):80: no answer"
        )
        // The sequential order is the resolver's, and stays on its first address.
        let order = try await Resolver.resolve(host: "many.test", service: "80")
        let sequential =
            await thrownError {
                _ = try await TCPConnection.connect(
                    host: "many.test", port: 80, timeout: .milliseconds(500),
                    strategy: .sequential)
            } as? NetworkError
        #expect(sequential?.detail == "no connection within 0.5 s; tried \(order[0]): no answer")
    }

    @Test(
        "a resolver slower than the deadline: the deadline error on time; abandoned lookups leak no descriptor",
        .enabled(if: inside))
    func slowResolution() async throws {
        let before = descriptorCountOfProcess()
        for strategy in [ConnectStrategy.happyEyeballs, .sequential] {
            let start = ContinuousClock.now
            let error =
                await thrownError {
                    _ = try await TCPConnection.connect(
                        to: "slow.test:80", timeout: .milliseconds(500), strategy: strategy)
                } as? NetworkError
            let elapsed = seconds(since: start)
            #expect(
                error?.description == "connect to slow.test:80 failed: timed out: no connection within 0.5 s "
                    + "(the name was not resolved yet)", "\(strategy)")
            // The resolver takes 5 s.
            #expect(elapsed >= 0.4 && elapsed < 2.5, "\(strategy): timed out after \(elapsed) s")
        }
        // The abandoned getaddrinfo calls still hold their sockets to the dead resolver; each ends on its own
        // within its 5 s timeout and closes it. No event tells when: look, at most 200 times over 20 s.
        var after = descriptorCountOfProcess()
        for _ in 0..<200 where after > before {
            try await Task.sleep(for: .milliseconds(100))
            after = descriptorCountOfProcess()
        }
        #expect(after <= before, "\(after - before) descriptors still open")
    }

    @Test(
        "the A answer first: connects after the resolution delay, not when the slow AAAA answer comes",
        .enabled(if: inside))
    func resolutionDelay() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let start = ContinuousClock.now
        let connection = try await TCPConnection.connect(
            host: "v4only.test", port: listener.port,
            timeout: .seconds(10))
        let elapsed = seconds(since: start)
        // The AAAA lookup takes 5 s.
        #expect(elapsed < 2.5, "connected after \(elapsed) s")
        #expect(connection.remoteAddress.host == "127.0.0.1")
        try await connection.close()
        try await listener.close()
    }

    @Test("a connect cancelled mid-race closes every attempt under way", .enabled(if: inside))
    func cancelledMidRace() async throws {
        let before = descriptorCountOfProcess()
        let dead =
            [SocketAddress(numericHost: Self.deadIPv6, port: 80)!]
            + Self.deadIPv4.map { SocketAddress(numericHost: $0, port: 80)! }
        let race = Task {
            try await TCPConnection.connect(
                to: dead, timeout: nil,
                strategy: .happyEyeballs(attemptDelay: .milliseconds(50)))
        }
        // Wait until all three attempts hold a socket: no event tells, so look, at most 500 times over 10 s.
        var during = descriptorCountOfProcess()
        for _ in 0..<500 where during < before + dead.count {
            try await Task.sleep(for: .milliseconds(20))
            during = descriptorCountOfProcess()
        }
        #expect(during == before + dead.count)
        race.cancel()
        let result = await race.result
        #expect(result.failure is CancellationError)
        #expect(descriptorCountOfProcess() == before)
    }

    @Test(
        "100 races cancelled at random moments: a connection or CancellationError, and no descriptor left behind",
        .enabled(if: inside))
    func cancelledAtRandom() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let before = descriptorCountOfProcess()
        // Two dead addresses, then the live one: with a 20 ms attempt delay it wins after about 40 ms, so
        // cancelling within 0...80 ms lands before, during and after the race is decided.
        let addresses = [
            SocketAddress(numericHost: Self.deadIPv6, port: listener.port)!,
            SocketAddress(numericHost: Self.deadIPv4[0], port: listener.port)!,
            SocketAddress(numericHost: "127.0.0.1", port: listener.port)!,
        ]
        var connected = 0
        var cancelled = 0
        for _ in 0..<100 {
            let race = Task {
                try await TCPConnection.connect(
                    to: addresses, timeout: .seconds(10),
                    strategy: .happyEyeballs(attemptDelay: .milliseconds(20)))
            }
            try await Task.sleep(for: .microseconds(Int.random(in: 0...80_000)))
            race.cancel()
            switch await race.result {
            case .success(let connection):
                connected += 1
                try await connection.close()
            case .failure(let error):
                #expect(error is CancellationError, "\(error)")
                cancelled += 1
            }
            // Accept whatever connected (a winner, or a loser closed since): the listener's backlog stays short.
            for _ in 0..<addresses.count {
                guard let accepted = try await listener.tryAccept() else { break }
                try await accepted.close()
            }
        }
        #expect(connected + cancelled == 100)
        #expect(descriptorCountOfProcess() == before)
        try await listener.close()
    }
}
