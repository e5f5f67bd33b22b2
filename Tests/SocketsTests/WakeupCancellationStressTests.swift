#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Sockets
import Testing

/// Wake-ups raced against cancellation, for every kind of wait the library has.
///
/// Each round starts a wait in a task, lets it suspend for a random moment, wakes it (bytes arrive, a client
/// connects, the peer drains, a slot is released) and cancels it at a random moment around the wake-up. A
/// library that resumes a continuation while it holds a lock that the cancellation handler also takes
/// deadlocks there: resuming takes the task's status lock, which `Task.cancel()` holds while it runs the
/// handler. The thread sanitizer cannot see that inversion (it goes through the runtime's own lock), so this
/// test looks for the hang itself.
///
/// A deadlocked loop cannot be recovered in-process, so the races run in a child process (this test binary
/// again, filtered to ``child()``): it prints a line as each kind of wait begins and ends, and the parent kills
/// it by its PID when it falls silent, naming the wait that hung. Every kind also counts what it moved, so a
/// lost or duplicated byte, line, connection or datagram fails it too.
@Suite("Wake-ups racing cancellation")
struct WakeupCancellationStressTests {
    static let insideChild = ProcessInfo.processInfo.environment["SOCKETS_WAKEUP_STRESS"] == "1"
    /// How long each kind races (and so, the whole child: about this times the number of kinds).
    /// The kinds to race (all by default; a comma-separated list of names to reproduce one).
    static let kinds =
        ProcessInfo.processInfo.environment["SOCKETS_WAKEUP_STRESS_KINDS"].map { list in
            list.split(separator: ",").compactMap { WakeupKind(rawValue: String($0)) }
        } ?? WakeupKind.allCases
    static let secondsPerKind =
        Double(ProcessInfo.processInfo.environment["SOCKETS_WAKEUP_STRESS_SECONDS"] ?? "")
        ?? 1.0
    /// A child that says nothing for this long has hung.
    static let silence: Duration = .seconds(20)

    @Test(
        "no wait hangs when its wake-up meets its cancellation (read, readLine, read(exactly:), write, flush, accept, connect, UDP receive/send, sync, the semaphore)",
        .enabled(if: !insideChild))
    func parent() async throws {
        let child = ExternalProcess.testsInChild(matching: "WakeupCancellationStressTests/child")
        let process = try ExternalProcess(child.program, child.arguments, environment: ["SOCKETS_WAKEUP_STRESS": "1"])
        var current: String?
        var ended: [String] = []
        while true {
            let line: String?
            do {
                line = try await process.readLine(timeout: Self.silence)
            } catch {
                await process.terminate()
                Issue.record(
                    """
                    the wait '\(current ?? "(before the first kind)")' hung: no progress for \(Self.silence) \
                    (kinds finished: \(ended.joined(separator: ", ")))
                    """)
                return
            }
            guard let line else { break }
            let words = line.split(separator: " ")
            guard words.first == "wakeup-stress:", words.count >= 3 else { continue }
            if words[1] == "begin" { current = String(words[2]) }
            if words[1] == "end" {
                ended.append(String(words[2]))
                print(line)
            }
        }
        let status = try await process.waitForExit(timeout: .seconds(20))
        #expect(status == 0, "the child failed: \(process.stderrSoFar.suffix(4000))")
        #expect(ended.count == Self.kinds.count, "kinds finished: \(ended)")
    }

    @Test("the races themselves (run by the test above, in a child process)", .enabled(if: insideChild))
    func child() async throws {
        for kind in Self.kinds {
            report("begin \(kind)")
            let deadline = ContinuousClock.now + .milliseconds(Int(Self.secondsPerKind * 1000))
            // Two lanes at once, so that wake-ups come from both event loops while cancellations come from
            // the cooperative pool.
            let stats = try await withThrowingTaskGroup(of: RaceStats.self) { group in
                for _ in 0..<2 { group.addTask { try await kind.run(until: deadline) } }
                return try await group.reduce(RaceStats()) { $0 + $1 }
            }
            report("end \(kind) rounds=\(stats.rounds) cancelled=\(stats.cancelled)")
            #expect(stats.rounds > 0)
        }
    }

    private func report(_ text: String) {
        // Unbuffered, so that the parent sees each line as it is written.
        let line = Array("wakeup-stress: \(text)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
    }
}

/// What one lane did.
struct RaceStats: Sendable {
    var rounds = 0
    var cancelled = 0

    static func + (a: RaceStats, b: RaceStats) -> RaceStats {
        RaceStats(rounds: a.rounds + b.rounds, cancelled: a.cancelled + b.cancelled)
    }
}

/// Busy-waits (a sleep would let the scheduler line the threads up the same way every round).
private func spin(microseconds: Int) {
    let end = ContinuousClock.now + .microseconds(microseconds)
    while ContinuousClock.now < end {}
}

/// One round: `wait` in a task of its own; after a random moment, `wake` (in this task); after another, the
/// waiting task is cancelled. Returns how the wait ended.
private func race<T: Sendable>(
    _ wait: @escaping @Sendable () async throws -> T,
    wake: () async throws -> Void
) async throws -> Result<T, any Error> {
    let waiter = Task { try await wait() }
    spin(microseconds: .random(in: 0...40))
    try await wake()
    spin(microseconds: .random(in: 0...30))
    waiter.cancel()
    return await waiter.result
}

/// Whether an error is a cancellation (of a wait that had moved nothing, or part-way).
private func isCancellation(_ error: any Error) -> Bool {
    error is CancellationError || (error as? NetworkError)?.code == .cancelled
}

private let maximumRounds = 200_000

enum WakeupKind: String, CaseIterable, CustomStringConvertible {
    case read, readLine, readExactly, write, flush, accept, connect, udpReceive, udpSend, sync, semaphore,
        semaphoreIdle

    var description: String { rawValue }

    func run(until deadline: ContinuousClock.Instant) async throws -> RaceStats {
        switch self {
        case .read:
            try await reads(until: deadline) { pair in
                try await pair.server.read(upTo: 64)?.count ?? 0
            } payload: {
                "x"
            }
        case .readLine:
            try await reads(until: deadline) { pair in
                try await pair.server.readLine() == nil ? 0 : 2
            } payload: {
                "x\n"
            }
        case .readExactly:
            try await reads(until: deadline) { pair in
                try await pair.server.read(exactly: 2).count
            } payload: {
                "xy"
            }
        case .sync:
            try await reads(until: deadline) { pair in
                try await Sockets.sync(pair.server.readLineEvent()) == nil ? 0 : 2
            } payload: {
                "x\n"
            }
        case .write: try await writes(until: deadline, flushing: false)
        case .flush: try await writes(until: deadline, flushing: true)
        case .accept: try await accepts(until: deadline)
        case .connect: try await connects(until: deadline)
        case .udpReceive: try await udpReceives(until: deadline)
        case .udpSend: try await udpSends(until: deadline)
        case .semaphore, .semaphoreIdle: try await semaphore(until: deadline)
        }
    }

    /// Reads woken by `payload` arriving: every byte written is read exactly once (in a round, or at the end).
    private func reads(
        until deadline: ContinuousClock.Instant,
        _ read: @escaping @Sendable (LoopbackPair) async throws -> Int,
        payload: () -> String
    ) async throws -> RaceStats {
        let pair = try await LoopbackPair.make()
        var stats = RaceStats()
        var written = 0
        var received = 0
        while ContinuousClock.now < deadline, stats.rounds < maximumRounds {
            let text = payload()
            switch try await race(
                { try await read(pair) },
                wake: {
                    try await pair.client.write(text)
                    written += text.utf8.count
                })
            {
            case .success(let count): received += count
            case .failure(let error):
                guard isCancellation(error) else { throw error }
                stats.cancelled += 1
            }
            stats.rounds += 1
        }
        // What the cancelled rounds left is still there, and nothing more.
        try await pair.client.closeOutput()
        let rest = try await withinTimeLimit(20) { [written, received] in
            try await pair.server.read(exactly: written - received)
        }
        #expect(received + rest.count == written, "\(self): bytes lost or read twice")
        #expect(try await pair.server.read(upTo: 1) == nil, "\(self): more bytes than were written")
        await pair.close()
        return stats
    }

    /// Writes (or flushes) that wait for the peer, woken by the peer draining: the peer receives exactly the
    /// bytes the writes say went out (all of a completed write, `bytesTransferred` of a cancelled one).
    private func writes(until deadline: ContinuousClock.Instant, flushing: Bool) async throws -> RaceStats {
        let pair = try await LoopbackPair.make(bufferMode: flushing ? .block(1 << 20) : .none)
        // Small kernel buffers, so that most writes wait for the peer.
        try await pair.server.setOption(.sendBufferSize, 16 * 1024)
        try await pair.client.setOption(.receiveBufferSize, 16 * 1024)
        let chunk = [UInt8](repeating: 0x61, count: 48 * 1024)
        var stats = RaceStats()
        var accepted = 0  // bytes the writes took (sent, or buffered for a later flush)
        var drained = 0
        var buffered = 0  // flushing: bytes written but not yet flushed
        let drain = { () async throws -> Void in
            for _ in 0..<8 {
                guard let bytes = try await pair.client.tryRead(upTo: 16 * 1024), let bytes else { return }
                drained += bytes.count
            }
        }
        while ContinuousClock.now < deadline, stats.rounds < maximumRounds {
            let outcome: Result<Int, any Error>
            if flushing {
                // Buffered whole (the block is never full: a write that filled it would flush in this task,
                // and wait for a drain that only this task does); a cancelled flush leaves what it did not
                // send buffered for the next.
                if buffered < 64 * 1024 {
                    try await pair.server.write(chunk[..<(4 * 1024)])
                    accepted += 4 * 1024
                    buffered += 4 * 1024
                }
                outcome = try await race(
                    {
                        try await pair.server.flush()
                        return 0
                    }, wake: drain)
            } else {
                outcome = try await race(
                    {
                        try await pair.server.write(chunk)
                        return chunk.count
                    }, wake: drain)
            }
            switch outcome {
            case .success(let count):
                accepted += count
                buffered = 0
            case .failure(let error):
                guard isCancellation(error) else { throw error }
                let sent = (error as? NetworkError)?.bytesTransferred ?? 0
                // A flush's bytes were counted when they were buffered.
                if flushing { buffered -= sent } else { accepted += sent }
                stats.cancelled += 1
            }
            stats.rounds += 1
        }
        // The rest: the peer reads to end-of-file while the output is flushed and closed.
        let total = try await withinTimeLimit(30) { [drained] in
            async let rest: Int = {
                var count = 0
                while let bytes = try await pair.client.read(upTo: 65536) { count += bytes.count }
                return count
            }()
            try await pair.server.closeOutput()
            return try await drained + rest
        }
        #expect(total == accepted, "\(self): the peer received \(total) bytes, the writes took \(accepted)")
        await pair.close()
        return stats
    }

    /// Accepts woken by a client connecting: every client is accepted exactly once.
    private func accepts(until deadline: ContinuousClock.Instant) async throws -> RaceStats {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1", backlog: 512)
        let port = listener.port
        var stats = RaceStats()
        var connected = 0
        var accepted = 0
        while ContinuousClock.now < deadline, stats.rounds < maximumRounds {
            switch try await race(
                { try await listener.accept() },
                wake: {
                    // Closed at once: the server's side stays in the backlog until it is accepted.
                    try await TCPConnection.connect(host: "127.0.0.1", port: port).close()
                    connected += 1
                })
            {
            case .success(let connection):
                accepted += 1
                try await connection.close()
            case .failure(let error):
                guard isCancellation(error) else { throw error }
                stats.cancelled += 1
            }
            stats.rounds += 1
        }
        try await withinTimeLimit(20) { [connected, accepted] in
            for _ in 0..<max(0, connected - accepted) { try await listener.accept().close() }
        }
        #expect(try await listener.tryAccept() == nil, "accept: more connections than clients")
        try await listener.close()
        return stats
    }

    /// Connects woken by the handshake completing.
    private func connects(until deadline: ContinuousClock.Instant) async throws -> RaceStats {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1", backlog: 512)
        let port = listener.port
        let acceptor = Task {
            while !Task.isCancelled { try? await listener.accept().close() }
        }
        var stats = RaceStats()
        while ContinuousClock.now < deadline, stats.rounds < maximumRounds {
            switch try await race({ try await TCPConnection.connect(host: "127.0.0.1", port: port) }, wake: {}) {
            case .success(let connection): try await connection.close()
            case .failure(let error):
                guard isCancellation(error) else { throw error }
                stats.cancelled += 1
            }
            stats.rounds += 1
        }
        acceptor.cancel()
        _ = await acceptor.result
        try await listener.close()
        return stats
    }

    private static func udpPair() async throws -> (receiver: UDPSocket, sender: UDPSocket, address: SocketAddress) {
        let receiver = try await UDPSocket()
        try await receiver.bind(host: "127.0.0.1", port: 0)
        let sender = try await UDPSocket()
        return (receiver, sender, try await receiver.addresses().local)
    }

    /// Receives woken by a datagram arriving: every datagram is received exactly once.
    private func udpReceives(until deadline: ContinuousClock.Instant) async throws -> RaceStats {
        let (receiver, sender, address) = try await Self.udpPair()
        var stats = RaceStats()
        var sent = 0
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 16)
        while ContinuousClock.now < deadline, stats.rounds < maximumRounds {
            // Datagrams left by cancelled rounds are taken now and then, so the socket's buffer never overflows.
            if sent - received > 32 {
                while try await receiver.tryReceive(into: &buffer) != nil { received += 1 }
            }
            switch try await race(
                { try await receiver.receive(maxLength: 16) },
                wake: {
                    try await sender.send([1], to: address)
                    sent += 1
                })
            {
            case .success: received += 1
            case .failure(let error):
                guard isCancellation(error) else { throw error }
                stats.cancelled += 1
            }
            stats.rounds += 1
        }
        while try await receiver.tryReceive(into: &buffer) != nil { received += 1 }
        #expect(received == sent, "udpReceive: \(sent) datagrams sent, \(received) received")
        try await receiver.close()
        try await sender.close()
        return stats
    }

    /// Sends raced against cancellation: each datagram is sent whole or not at all.
    private func udpSends(until deadline: ContinuousClock.Instant) async throws -> RaceStats {
        let (receiver, sender, address) = try await Self.udpPair()
        var stats = RaceStats()
        var sent = 0
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 16)
        while ContinuousClock.now < deadline, stats.rounds < maximumRounds {
            switch try await race({ try await sender.send([2], to: address) }, wake: {}) {
            case .success: sent += 1
            case .failure(let error):
                guard isCancellation(error) else { throw error }
                stats.cancelled += 1
            }
            while try await receiver.tryReceive(into: &buffer) != nil { received += 1 }
            stats.rounds += 1
        }
        #expect(received == sent, "udpSend: \(sent) datagrams sent, \(received) received")
        try await receiver.close()
        try await sender.close()
        return stats
    }

    /// Acquires (or waits for idle) woken by a release: no slot is lost or taken twice.
    private func semaphore(until deadline: ContinuousClock.Instant) async throws -> RaceStats {
        let semaphore = AsyncSemaphore(limit: 1)
        var stats = RaceStats()
        while ContinuousClock.now < deadline, stats.rounds < maximumRounds {
            try await semaphore.acquire()
            let outcome: Result<Void, any Error>
            // Released from a task of its own, so that the release's wake-up and the cancellation run on two
            // threads at once.
            var releaser: Task<Void, Never>?
            let release = {
                releaser = Task {
                    spin(microseconds: .random(in: 0...30))
                    semaphore.release()
                }
            }
            if self == .semaphore {
                outcome = try await race(
                    {
                        try await semaphore.acquire()
                        semaphore.release()
                    }, wake: release)
            } else {
                outcome = try await race({ await semaphore.waitUntilIdle() }, wake: release)
            }
            await releaser?.value
            if case .failure(let error) = outcome {
                guard isCancellation(error) else { throw error }
                stats.cancelled += 1
            }
            #expect(semaphore.taken == 0, "semaphore: a slot was lost or taken twice")
            stats.rounds += 1
        }
        return stats
    }
}
