// ExternalProcess: runs a program outside the test process (python3, racket, nc, socat, the package's own
// executables) as a peer for interop tests.
//
// - The child is started with posix_spawn, its stdin fed from a string (then closed) or /dev/null, its stdout
//   and stderr captured by two threads of their own and readable line by line, each read bounded in time.
// - Waiting never blocks a thread of the cooperative pool (two threads on a 2-core machine): readers and the
//   reaper are plain threads; async callers are resumed by continuations.
// - Signals go to the child's own PID only, and only while it has not been reaped: the reaper waits with
//   `WNOWAIT` and reaps under the same lock `sendSignal(_:)` takes, so a PID is never signalled after it could
//   have been reused.
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Synchronization

final class ExternalProcess: Sendable {
    /// Which output stream to read.
    enum Stream: Sendable, CustomStringConvertible {
        case stdout, stderr
        var description: String { self == .stdout ? "stdout" : "stderr" }
    }

    /// A failure to start, a time bound passed, or an unexpected end of output. The text carries what the
    /// child printed so far, so a failing test shows why.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The program as given and its arguments, for messages.
    let commandLine: String
    /// The child's process ID.
    let pid: pid_t
    private let shared: Shared

    /// Starts `program` (a path, or a name looked up in PATH) with `arguments`. `stdin` is written to the
    /// child's standard input, which is then closed; `nil` gives it /dev/null.
    init(
        _ program: String, _ arguments: [String] = [], stdin: String? = nil,
        environment: [String: String] = [:]
    ) throws {
        commandLine = ([program] + arguments).joined(separator: " ")
        guard let path = program.contains("/") ? program : Self.path(of: program) else {
            throw Failure(description: "\(program) is not installed (not found in PATH)")
        }
        let outPipe = try Self.makePipe()
        let errPipe = try Self.makePipe()
        let inPipe: (read: Int32, write: Int32)? = stdin == nil ? nil : try Self.makePipe()
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe?.read ?? devNull, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe.write, 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe.write, 2)

        // The child starts with default dispositions and no blocked signals, whatever the test runner set.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGPIPE, SIGTERM, SIGINT, SIGCHLD, SIGHUP] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, path, &actions, &attributes, argv, envp)

        close(devNull)
        close(outPipe.write)
        close(errPipe.write)
        if let inPipe { close(inPipe.read) }
        guard result == 0 else {
            close(outPipe.read)
            close(errPipe.read)
            if let inPipe { close(inPipe.write) }
            throw Failure(description: "cannot start \(commandLine): \(String(cString: strerror(result)))")
        }
        let spawned = child
        pid = spawned
        shared = Shared()

        let shared = self.shared
        Self.startThread { shared.readLines(from: outPipe.read, stream: .stdout) }
        Self.startThread { shared.readLines(from: errPipe.read, stream: .stderr) }
        Self.startThread { shared.reap(spawned) }
        if let inPipe, let stdin {
            let bytes = Array(stdin.utf8)
            Self.startThread {
                // A child that exits without reading makes write fail with EPIPE; SIGPIPE, blocked in this
                // thread alone, stays pending on it and is discarded when it ends.
                var pipeSignal = sigset_t()
                sigemptyset(&pipeSignal)
                sigaddset(&pipeSignal, SIGPIPE)
                pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
                var sent = 0
                while sent < bytes.count {
                    let count = bytes[sent...].withUnsafeBytes { write(inPipe.write, $0.baseAddress, $0.count) }
                    if count < 0, errno == EINTR { continue }
                    if count <= 0 { break }  // the child closed its stdin: nothing more to feed
                    sent += count
                }
                close(inPipe.write)
            }
        }
    }

    /// A process that is still running when its last reference goes is killed: a failed test leaves no peer
    /// behind.
    deinit {
        sendSignal(SIGKILL)
    }

    // MARK: Looking programs up

    /// Whether `name` is an executable file in one of PATH's directories.
    static func isInstalled(_ name: String) -> Bool {
        path(of: name) != nil
    }

    /// The full path of `name` found in PATH, or `nil`.
    static func path(of name: String) -> String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for directory in directories where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            var info = stat()
            if access(candidate, X_OK) == 0, stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                return candidate
            }
        }
        return nil
    }

    /// The path of an executable product of this package, as `swift test` built it before testing: from the
    /// folder the test binary was built in (or, failing that, `.build/debug` of the package holding this file).
    static func productPath(_ name: String) throws -> String {
        var candidates: [String] = []
        if let binary = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(
                URL(fileURLWithPath: binary).deletingLastPathComponent().appendingPathComponent(name).path)
        }
        // Tests/SocketsTests/Support/ExternalProcess.swift → the package's root.
        var packageRoot = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { packageRoot.deleteLastPathComponent() }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/\(name)").path)
        guard let found = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw Failure(
                description: "\(name) is not built; looked at \(candidates) "
                    + "(swift test builds it; so does swift build --product \(name))")
        }
        return found
    }

    // MARK: Reading output

    /// The next line the child wrote to `stream`, without its newline; `nil` once the stream has ended (a last
    /// line without a newline is returned first). Throws ``Failure`` when no line comes within `timeout`.
    func readLine(from stream: Stream = .stdout, timeout: Duration = .seconds(20)) async throws -> String? {
        try await shared.wait(until: .now + timeout, waitingFor: "a line on \(stream) of \(commandLine)") { state in
            if !state.lines[stream, default: []].isEmpty { return .some(state.lines[stream]!.removeFirst()) }
            if state.ended.contains(stream) { return .some(nil) }
            return nil
        }
    }

    /// Reads lines from `stream` until one satisfies `matching` (skipping the others) and returns it; throws
    /// ``Failure`` when the stream ends first or `timeout` passes. At most `limit` lines are read.
    func readLine(
        from stream: Stream = .stdout, timeout: Duration = .seconds(20), limit: Int = 1000,
        where matching: (String) -> Bool
    ) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        for _ in 0..<limit {
            guard let line = try await readLine(from: stream, timeout: deadline - .now) else {
                throw Failure(
                    description: "\(stream) of \(commandLine) ended without the line awaited"
                        + shared.transcript())
            }
            if matching(line) { return line }
        }
        throw Failure(
            description: "\(limit) lines on \(stream) of \(commandLine), none the one awaited"
                + shared.transcript())
    }

    /// Every remaining line of `stream`, until it ends (within `timeout`).
    func remainingLines(of stream: Stream = .stdout, timeout: Duration = .seconds(20)) async throws -> [String] {
        try await shared.wait(until: .now + timeout, waitingFor: "the end of \(stream) of \(commandLine)") { state in
            guard state.ended.contains(stream) else { return nil }
            defer { state.lines[stream] = [] }
            return state.lines[stream, default: []]
        }
    }

    /// All of stderr received so far, for messages.
    var stderrSoFar: String { shared.everything(.stderr) }

    // MARK: Exit and signals

    /// Waits for the child to exit and returns its status: the exit code, or 128 + the signal's number when a
    /// signal ended it (as a shell reports it). Throws ``Failure`` when it has not exited within `timeout`.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(20)) async throws -> Int32 {
        try await shared.wait(until: .now + timeout, waitingFor: "\(commandLine) to exit") { $0.status }
    }

    /// Sends `number` (SIGTERM by default) to the child's own PID, unless it has already exited.
    func sendSignal(_ number: Int32 = SIGTERM) {
        shared.state.withLock { state in
            if state.status == nil { _ = kill(pid, number) }
        }
    }

    /// Sends SIGTERM to the child and waits for it to exit, killing it if it has not exited within `timeout`.
    /// Returns its status.
    @discardableResult
    func terminate(timeout: Duration = .seconds(5)) async -> Int32? {
        sendSignal(SIGTERM)
        if let status = try? await waitForExit(timeout: timeout) { return status }
        sendSignal(SIGKILL)
        return try? await waitForExit(timeout: timeout)
    }

    /// Runs a program to its end: feeds it `stdin`, collects its output, and returns its status and output.
    /// Kills it and throws when it runs longer than `timeout`.
    static func run(
        _ program: String, _ arguments: [String] = [], stdin: String? = nil,
        environment: [String: String] = [:],
        timeout: Duration = .seconds(20)
    ) async throws -> (status: Int32, stdout: [String], stderr: String) {
        let process = try ExternalProcess(program, arguments, stdin: stdin, environment: environment)
        let deadline = ContinuousClock.now + timeout
        do {
            let lines = try await process.remainingLines(of: .stdout, timeout: deadline - .now)
            let status = try await process.waitForExit(timeout: deadline - .now)
            _ = try? await process.remainingLines(of: .stderr, timeout: .seconds(1))
            return (status, lines, process.stderrSoFar)
        } catch {
            await process.terminate()
            throw error
        }
    }

    /// The arguments that run this test binary's Swift Testing tests whose names match `filter`, alone, at the
    /// lowest CPU priority (`nice -n 19`): such a child (a stress test, a memory measurement) keeps both cores
    /// busy for seconds, and must not starve the timed tests running beside it in the parent.
    static func testsInChild(matching filter: String) -> (program: String, arguments: [String]) {
        ("nice", ["-n", "19", CommandLine.arguments[0], "--testing-library", "swift-testing", "--filter", filter])
    }

    /// Runs ``testsInChild(matching:)`` with `environment` added, to its end.
    static func runTests(
        matching filter: String, environment: [String: String],
        timeout: Duration
    ) async throws -> (status: Int32, stdout: [String], stderr: String) {
        let child = testsInChild(matching: filter)
        return try await run(child.program, child.arguments, environment: environment, timeout: timeout)
    }

    // MARK: Plumbing

    /// glibc's `pipe2`, which Swift's Glibc module does not import (it is a `_GNU_SOURCE` function).
    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    private static let pipe2: Pipe2 = {
        guard let symbol = dlsym(nil, "pipe2") else { fatalError("pipe2 is missing from the C library") }
        return unsafeBitCast(symbol, to: Pipe2.self)
    }()

    /// A pipe whose two ends are close-on-exec from the start, so that a child another test spawns at the
    /// same moment cannot inherit them (and hold the pipe open).
    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var descriptors: [Int32] = [-1, -1]
        guard pipe2(&descriptors, O_CLOEXEC) == 0 else {
            throw Failure(description: "pipe2 failed: \(String(cString: strerror(errno)))")
        }
        return (descriptors[0], descriptors[1])
    }

    /// A plain thread (not one of the cooperative pool's), detached.
    private static func startThread(_ body: @escaping @Sendable () -> Void) {
        let thread = Thread { body() }
        thread.stackSize = 256 * 1024
        thread.start()
    }

    /// What the threads fill in and the async readers wait on.
    fileprivate final class Shared: Sendable {
        struct State {
            var lines: [Stream: [String]] = [:]
            var everything: [Stream: [UInt8]] = [:]
            var ended: Set<Stream> = []
            var status: Int32?
            var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
            var nextWaiter: UInt64 = 0
        }

        let state = LockedState(State())

        /// Reads `descriptor` to its end, splitting lines, waking waiters as lines arrive; closes it.
        func readLines(from descriptor: Int32, stream: Stream) {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
                pending.append(contentsOf: buffer[..<count])
                var lines: [String] = []
                while let newline = pending.firstIndex(of: 10) {
                    lines.append(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
                let chunk = buffer[..<count]
                change { state in
                    state.lines[stream, default: []].append(contentsOf: lines)
                    state.everything[stream, default: []].append(contentsOf: chunk)
                }
            }
            close(descriptor)
            change { state in
                if !pending.isEmpty {
                    state.lines[stream, default: []].append(String(decoding: pending, as: UTF8.self))
                }
                state.ended.insert(stream)
            }
        }

        /// Waits for the child to exit without reaping it, then reaps it under the lock `sendSignal` takes.
        func reap(_ pid: pid_t) {
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0, errno == EINTR {}
            change { state in
                var raw: Int32 = 0
                while waitpid(pid, &raw, 0) < 0, errno == EINTR {}
                // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
                let signalNumber = raw & 0x7f
                state.status = signalNumber == 0 ? (raw >> 8) & 0xff : 128 + signalNumber
            }
        }

        /// Changes the state and wakes every waiter to look again.
        private func change(_ body: (inout State) -> Void) {
            let waiters = state.withLock { state in
                body(&state)
                defer { state.waiters = [:] }
                return Array(state.waiters.values)
            }
            for waiter in waiters { waiter.resume() }
        }

        private func wake(_ id: UInt64) {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }

        /// Waits until `check` returns a value, or throws ``Failure`` at `deadline`. `check` runs under the lock
        /// each time the state changes.
        func wait<T: Sendable>(
            until deadline: ContinuousClock.Instant, waitingFor what: String,
            _ check: (inout State) -> T?
        ) async throws -> T {
            while true {
                try Task.checkCancellation()
                let id = state.withLock { state in
                    defer { state.nextWaiter += 1 }
                    return state.nextWaiter
                }
                var value: T?
                var timedOut = false
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let waiting = state.withLock { state in
                            value = check(&state)
                            if value != nil { return false }
                            if ContinuousClock.now >= deadline {
                                timedOut = true
                                return false
                            }
                            state.waiters[id] = continuation
                            return true
                        }
                        guard waiting else {
                            continuation.resume()
                            return
                        }
                        // The time bound: wake this waiter at the deadline (nothing happens if already woken).
                        let left = ContinuousClock.now.duration(to: deadline)
                        let nanoseconds =
                            max(
                                0,
                                Int(left.components.seconds) * 1_000_000_000
                                    + Int(left.components.attoseconds / 1_000_000_000)) + 1_000_000
                        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
                            wake(id)
                        }
                    }
                } onCancel: {
                    wake(id)
                }
                if let value { return value }
                if timedOut { throw Failure(description: "timed out waiting for \(what)" + transcript()) }
            }
        }

        func everything(_ stream: Stream) -> String {
            state.withLock { String(decoding: $0.everything[stream] ?? [], as: UTF8.self) }
        }

        /// What the child printed so far, for a failure's message.
        func transcript() -> String {
            let (output, errors) = state.withLock {
                (
                    String(decoding: $0.everything[.stdout] ?? [], as: UTF8.self),
                    String(decoding: $0.everything[.stderr] ?? [], as: UTF8.self)
                )
            }
            return "\n--- stdout so far ---\n\(output.suffix(2000))\n--- stderr so far ---\n\(errors.suffix(2000))"
        }
    }
}

/// State behind an `NSLock`. Used here instead of `Synchronization.Mutex` because the thread sanitizer cannot
/// see `Mutex`'s ordering (the Synchronization module is not instrumented) and reports the plain reader threads'
/// accesses as races; it does see pthread mutexes.
final class LockedState<State>: @unchecked Sendable {
    // @unchecked Sendable is safe: `state` is only read or written inside `withLock`, under `lock`.
    private let lock = NSLock()
    private var state: State

    init(_ state: State) {
        self.state = state
    }

    func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}
