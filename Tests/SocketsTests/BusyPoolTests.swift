#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Sockets
import Synchronization
import Testing

/// The loops have Dispatch workers of their own: a cooperative pool kept busy by CPU-bound tasks does not stop
/// the sockets. (Before, each loop's queue targeted `DispatchQueue.global()`, the same two workers as the
/// cooperative pool on two cores: the loop's handler waited behind every task job, and under the thread
/// sanitizer, with the suite's slow tasks on both workers, echoes stalled past a peer's 20 s timeout.)
@Suite("The loops keep serving while the cooperative pool is busy")
struct BusyPoolTests {
    static let insideChild = ProcessInfo.processInfo.environment["SOCKETS_BUSY_POOL"] == "1"

    @Test("a served connection echoes while every thread of the cooperative pool spins", .enabled(if: !insideChild))
    func echoWhilePoolSpins() async throws {
        // In a child process: the spinning would hold up every other test of the suite.
        let result = try await ExternalProcess.runTests(
            matching: "BusyPoolTests/echoWhilePoolSpinsChild", environment: ["SOCKETS_BUSY_POOL": "1"],
            timeout: .seconds(120))
        #expect(result.status == 0, "the child failed: \(result.stdout.suffix(30)) \(result.stderr.suffix(3000))")
        for line in result.stdout where line.hasPrefix("busy-pool:") { print(line) }
        #expect(result.stdout.contains { $0.hasPrefix("busy-pool: one echo took") })
    }

    @Test("the echo itself (run by the test above, in a child process)", .enabled(if: insideChild))
    func echoWhilePoolSpinsChild() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        // The README's server: its handler prefers its connection's loop, so it runs there, off the pool.
        let server = Task {
            try await serve(listener) { connection in
                while let bytes = try await connection.read(upTo: 4096) {
                    try await connection.write(bytes)
                    try await connection.flush()
                }
            }
        }
        defer { server.cancel() }
        let client = try BlockingClient(port: listener.port)
        defer { client.close() }
        // Accepting needs the pool (serve's loop runs in this task): done before the pool is made busy.
        #expect(try client.roundTrip(Array("before".utf8)) == Array("before".utf8))

        let width = ProcessInfo.processInfo.activeProcessorCount
        let spin = SpinState()
        let spinCap = Duration.seconds(20)
        for _ in 0..<(2 * width) {
            Task(priority: .medium) {
                spin.started.add(1, ordering: .relaxed)
                let start = ContinuousClock.now
                while !spin.echoed.load(ordering: .acquiring), ContinuousClock.now - start < spinCap {}
            }
        }
        // A plain thread (not the pool's) waits until the pool's threads spin, then times one echo.
        let elapsed: Duration = try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                let waitStart = ContinuousClock.now
                while spin.started.load(ordering: .relaxed) < width, ContinuousClock.now - waitStart < .seconds(10) {
                    sched_yield()
                }
                let start = ContinuousClock.now
                do {
                    let echoed = try client.roundTrip(Array("during".utf8))
                    let elapsed = ContinuousClock.now - start
                    spin.echoed.store(true, ordering: .releasing)
                    if echoed == Array("during".utf8) {
                        continuation.resume(returning: elapsed)
                    } else {
                        continuation.resume(throwing: BlockingClient.Failure(description: "echoed \(echoed)"))
                    }
                } catch {
                    spin.echoed.store(true, ordering: .releasing)
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
        print("busy-pool: one echo took \(elapsed) while \(spin.started.load(ordering: .relaxed)) tasks spun")
        #expect(spin.started.load(ordering: .relaxed) >= width)
        // Without a worker of its own the loop waits for the spinners to give up (20 s).
        #expect(elapsed < .seconds(5), "one echo took \(elapsed) while the pool was busy")
        try await listener.close()
    }
}

private final class SpinState: Sendable {
    let started = Atomic<Int>(0)
    let echoed = Atomic<Bool>(false)
}

/// A blocking TCP client on 127.0.0.1 for a plain thread: connect, then whole round trips.
private final class BlockingClient: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw Failure(description: "connect: \(reason)")
        }
    }

    /// Sends `bytes` and reads back as many (30 s at most).
    func roundTrip(_ bytes: [UInt8]) throws -> [UInt8] {
        guard bytes.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, 0) }) == bytes.count else {
            throw Failure(description: "send: \(String(cString: strerror(errno)))")
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: bytes.count)
        while received.count < bytes.count {
            let count = buffer.withUnsafeMutableBytes {
                recv(descriptor, $0.baseAddress, bytes.count - received.count, 0)
            }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                throw Failure(description: count == 0 ? "end of file" : "recv: \(String(cString: strerror(errno)))")
            }
            received += buffer[..<count]
        }
        return received
    }

    func close() {
        Glibc.close(descriptor)
    }
}
