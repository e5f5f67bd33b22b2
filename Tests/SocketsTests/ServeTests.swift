#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Sockets
import Synchronization
import Testing

/// Counts handlers running now, and the most seen at once.
final class Gauge: Sendable {
    private let counts = LockedState((now: 0, most: 0))
    func enter() {
        counts.withLock {
            $0.now += 1
            $0.most = max($0.most, $0.now)
        }
    }
    func leave() { counts.withLock { $0.now -= 1 } }
    var most: Int { counts.withLock { $0.most } }
}

@Suite("serve")
struct ServeTests {
    @Test("onError sees each handler's error with its connection, before it is closed; cancellation is not reported")
    func errorHandler() async throws {
        struct Refused: Error, Equatable { let line: String }
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let reported = LockedState<[String]>([])
        let server = Task {
            try await serve(
                listener,
                onError: { error, connection in
                    reported.withLock { $0.append("\((error as? Refused)?.line ?? "\(error)")") }
                    // The connection is still open: the client can be told.
                    try? await connection.writeLine("error")
                },
                handler: { connection in
                    guard let line = try await connection.readLine() else { return }
                    if line == "cancel" { throw CancellationError() }
                    throw Refused(line: line)
                })
        }
        for line in ["a", "cancel", "b"] {
            let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
            try await client.writeLine(line)
            let reply = try await withinTimeLimit(10) { try await client.readLine() }
            #expect(reply == (line == "cancel" ? nil : "error"))
            try await client.close()
        }
        try await listener.close()
        try await server.value
        #expect(reported.withLock { $0 } == ["a", "b"])
    }

    @Test("serves many clients, at most maxConnections at once; a throwing handler ends its connection only")
    func limitsAndFailures() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1", backlog: 256)
        let gauge = Gauge()
        let server = Task {
            try await serve(listener, maxConnections: 4) { connection in
                gauge.enter()
                defer { gauge.leave() }
                guard let line = try await connection.readLine() else { return }
                if line == "fail" { throw CancellationError() }
                try await connection.writeLine("echo \(line)")
                try await connection.flush()
            }
        }
        try await withinTimeLimit(60) {
            try await withThrowingTaskGroup(of: String?.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
                        try await client.writeLine(index % 10 == 0 ? "fail" : "\(index)")
                        try await client.flush()
                        let reply = try await client.readLine()
                        try await client.close()
                        return reply
                    }
                }
                var replies: [String?] = []
                for try await reply in group { replies.append(reply) }
                #expect(
                    replies.compactMap { $0 }.sorted() == (0..<40).filter { $0 % 10 != 0 }.map { "echo \($0)" }.sorted()
                )
                #expect(replies.filter { $0 == nil }.count == 4)
            }
        }
        #expect(gauge.most <= 4 && gauge.most >= 1)
        try await listener.close()
        try await withinTimeLimit(20) { try await server.value }
    }

    @Test("graceful shutdown: closing the listener lets a handler finish within the grace period")
    func gracefulShutdown() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let started = Flag()
        let server = Task {
            try await serve(listener, gracePeriod: .seconds(20)) { connection in
                started.set()
                let line = try await connection.readLine() ?? ""
                try await connection.writeLine("finished \(line)")
                try await connection.flush()
            }
        }
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        try await withinTimeLimit(10) { while !started.isSet { await Task.yield() } }
        try await listener.close()
        try await client.writeLine("late")
        try await client.flush()
        #expect(try await client.readLine() == "finished late")
        try await withinTimeLimit(20) { try await server.value }
        try await client.close()
    }

    @Test("after the grace period, handlers still running are cancelled and their connections closed")
    func graceExpires() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let started = Flag()
        let server = Task {
            try await serve(listener, gracePeriod: .milliseconds(100)) { connection in
                started.set()
                _ = try await connection.readLine()
            }
        }
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        try await withinTimeLimit(10) { while !started.isSet { await Task.yield() } }
        try await listener.close()
        try await withinTimeLimit(20) { try await server.value }
        #expect(try await client.read() == nil)
        try await client.close()
    }

    @Test(
        "out of descriptors, the echo-server backs off without spinning and serves again once they free up",
        .enabled(if: ExternalProcess.isInstalled("prlimit"), "prlimit is not installed"))
    func recoversFromDescriptorExhaustion() async throws {
        let path = try ExternalProcess.productPath("echo-server")
        let server = try ExternalProcess("prlimit", ["--nofile=40:40", path, "--port", "0", "--no-udp"])
        let line = try #require(try await server.readLine())
        let port = try #require(Int(line.split(separator: ":").last ?? ""))
        // Far more clients than the server has descriptors: the kernel completes their handshakes, the server
        // runs out (EMFILE) accepting them.
        var clients: [TCPConnection] = []
        for _ in 0..<80 { clients.append(try await TCPConnection.connect(host: "127.0.0.1", port: port)) }
        let cpuBefore = processCPUTicks(server.pid)
        try await Task.sleep(for: .milliseconds(500))
        let cpuDuring = processCPUTicks(server.pid) - cpuBefore
        // A spinning accept loop would burn about 50 ticks in 0.5 s; backing off costs almost nothing.
        #expect(cpuDuring < 15, "the server used \(cpuDuring) ticks of CPU in 0.5 s while out of descriptors")
        for client in clients { try await client.close() }
        // Descriptors freed: a new client is served.
        let fresh = try await TCPConnection.connect(host: "127.0.0.1", port: port)
        try await fresh.writeLine("alive")
        try await fresh.flush()
        let echoed = try await withinTimeLimit(20) { try await fresh.readLine() }
        #expect(echoed == "alive")
        try await fresh.close()
        server.sendSignal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }
}

/// utime + stime of a process, in clock ticks.
func processCPUTicks(_ pid: pid_t) -> Int {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
}
