#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Racket's `tcp-connect` address order, made a choice: how `connect` tries the addresses of a name, Happy
/// Eyeballs v2 (RFC 8305) by default, or one after another, as `tcp-connect` does (``sequential``).
///
/// Racket's `tcp-connect` (and CHICKEN's, and MIT Scheme's `open-tcp-stream-socket`) try a host's addresses in
/// the resolver's order, each until it fails: ``sequential``. An address that drops packets then costs a whole
/// connect timeout before the next is tried. ``happyEyeballs`` does what Go's dialer, Trio's `open_tcp_stream`
/// and SwiftNIO's `ClientBootstrap` do:
///
/// - it asks for the IPv6 (AAAA) and IPv4 (A) addresses at once, and starts connecting as soon as an answer
///   comes (when the IPv4 answer comes first, it waits ``resolutionDelay`` for the IPv6 one);
/// - it interleaves the families, IPv6 first;
/// - it starts the next address when the last one fails, or ``attemptDelay`` after it started, while the
///   earlier attempts keep going;
/// - the first to connect wins, and every other attempt is closed.
///
/// The defaults apply to a whole task tree, as ``TCPTimeouts`` do: set them with `ConnectStrategy.$current.withValue`.
///
/// **Cancellation**: a cancelled connect closes every attempt under way and throws `CancellationError`,
/// unless an attempt had already connected, which it then returns; never both. A lookup under way is
/// abandoned at once: its `getaddrinfo` finishes on its Dispatch thread and its result is dropped.
///
/// ```swift
/// let connection = try await TCPConnection.connect(host: "example.org", port: 80, timeout: .seconds(10),
///                                                  strategy: .happyEyeballs(attemptDelay: .milliseconds(100)))
/// ```
public struct ConnectStrategy: Sendable, Hashable, CustomStringConvertible {
    /// How long an attempt runs alone before the next address is tried beside it; `nil` for ``sequential``.
    public let attemptDelay: Duration?
    /// How long to wait for the IPv6 answer when the IPv4 one came first.
    public let resolutionDelay: Duration

    /// Happy Eyeballs v2 with RFC 8305's delays: 250 ms between attempts, 50 ms for the IPv6 answer.
    public static let happyEyeballs = ConnectStrategy(
        attemptDelay: .milliseconds(250),
        resolutionDelay: .milliseconds(50))

    /// Happy Eyeballs v2 with other delays. RFC 8305 advises an attempt delay of at least 100 ms (never under
    /// 10 ms); zero starts every attempt at once. A negative delay makes `connect` throw
    /// ``NetworkError/Code/invalidArgument``.
    public static func happyEyeballs(
        attemptDelay: Duration,
        resolutionDelay: Duration = .milliseconds(50)
    ) -> ConnectStrategy {
        ConnectStrategy(attemptDelay: attemptDelay, resolutionDelay: resolutionDelay)
    }

    /// One address after another, in the resolver's order, each until it fails: Racket's `tcp-connect`.
    /// The timeout still covers the whole connect.
    public static let sequential = ConnectStrategy(attemptDelay: nil, resolutionDelay: .zero)

    /// The strategy of the current task tree. Default: ``happyEyeballs``.
    @TaskLocal public static var current = ConnectStrategy.happyEyeballs

    /// `happy eyeballs (attempt delay 0.25 s, resolution delay 0.05 s)` or `sequential`.
    public var description: String {
        guard let attemptDelay else { return "sequential" }
        return "happy eyeballs (attempt delay \(attemptDelay.shortDescription), "
            + "resolution delay \(resolutionDelay.shortDescription))"
    }
}

/// One `connect`: its deadline, its strategy, and the race of its attempts.
///
/// The race is one task group whose children are the lookups (AAAA and A, or one lookup of both for
/// ``ConnectStrategy/sequential``), the connection attempts, the delay timers and the deadline. Each child
/// returns an ``Event``; the group's body alone keeps the state, so it needs no lock. When the race is decided
/// (a winner, every address failed, the deadline, or cancellation), the rest are cancelled and drained, and every
/// attempt that connected meanwhile is closed: no descriptor outlives the call but the winner's.
struct ConnectRace {
    /// The host and service, or the addresses, as errors show them.
    let shown: String
    let timeout: Duration?
    let strategy: ConnectStrategy
    /// The deadline of the whole connect, resolution included; `nil` for none.
    let deadline: ContinuousClock.Instant?
    /// The local addresses to bind to, by family; with `needsLocal`, a family without one is not tried.
    var locals: [SocketAddress] = []
    var needsLocal = false

    /// Checks the strategy and the timeout (before any system call) and starts the deadline's clock.
    init(shown: String, timeout: Duration?, strategy: ConnectStrategy) throws {
        if let timeout, timeout < .zero {
            throw NetworkError.invalid("connect", shown, "the timeout is negative")
        }
        if let delay = strategy.attemptDelay, delay < .zero {
            throw NetworkError.invalid("connect", shown, "the attempt delay is negative")
        }
        if strategy.resolutionDelay < .zero {
            throw NetworkError.invalid("connect", shown, "the resolution delay is negative")
        }
        self.shown = shown
        self.timeout = timeout
        self.strategy = strategy
        // A timeout of a century or more is no deadline at all (and cannot overflow a clock).
        self.deadline = timeout.flatMap { $0 < .seconds(3_155_760_000) ? ContinuousClock.now + $0 : nil }
    }

    private func timedOut(_ more: String = "") -> NetworkError {
        NetworkError(
            .timedOut, operation: "connect", address: shown,
            detail: "no connection within \(timeout?.shortDescription ?? "its timeout")" + more)
    }

    /// The local address to connect `remote` from: `.some(nil)` for none, `nil` when one is needed and there is
    /// none of `remote`'s family.
    private func local(for remote: SocketAddress) -> SocketAddress?? {
        let local = locals.first { $0.family == remote.family }
        return needsLocal && local == nil ? nil : .some(local)
    }

    private static let noLocalAddress = AttemptFailure(
        errno: .addressFamilyNotSupported,
        detail: "no local address of its family")

    /// Runs `body` (a lookup of the local address), throwing the timeout error when the deadline passes first.
    func beforeDeadline<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let deadline else { return try await body() }
        let timedOut = self.timedOut()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw timedOut }
            return value
        }
    }

    // MARK: The race

    /// What a child task of the race reports.
    private enum Event: Sendable {
        /// A lookup ended: for one family, or for both (`nil`, the sequential strategy's single lookup).
        case resolved(SocketAddress.Family?, Result<[SocketAddress], any Error>)
        case resolutionDelayPassed
        /// The attempt delay of attempt number `n` passed.
        case attemptDelayPassed(Int)
        case attempted(SocketAddress, AttemptOutcome)
        case deadlinePassed
        /// A timer that was cancelled: nothing to do.
        case stopped
    }

    /// Connects to the first of `addresses` to answer, in the order given.
    func connect(to addresses: [SocketAddress]) async throws -> TCPConnection {
        if addresses.count == 1, let remote = addresses.first {
            // One address needs no race: its wait carries the deadline.
            let outcome =
                if let local = local(for: remote) {
                    await Self.attempt(remote, from: local, deadline: deadline.map(Self.dispatchTime))
                } else {
                    AttemptOutcome.failed(Self.noLocalAddress)
                }
            switch outcome {
            case .connected(let handle): return try adopt(handle, remote)
            case .failed(let why): throw failure(of: remote, why)
            case .timedOut: throw timedOut()
            case .cancelled: throw CancellationError()
            }
        }
        return try await race(addresses: addresses, host: nil, service: "")
    }

    /// Resolves `host` and connects to the first of its addresses to answer.
    func connect(host: String, service: String) async throws -> TCPConnection {
        try await race(addresses: [], host: host, service: service)
    }

    private func race(addresses: [SocketAddress], host: String?, service: String) async throws -> TCPConnection {
        let outcome = await withTaskGroup(of: Event.self) { group -> Result<(SocketHandle, SocketAddress), any Error> in
            var state = RaceState(strategy: strategy, given: addresses)
            if let host {
                let families: [SocketAddress.Family?] = strategy.attemptDelay == nil ? [nil] : [.ipv6, .ipv4]
                state.lookupsPending = families.count
                for family in families {
                    group.addTask {
                        do {
                            let found = try await Resolver.resolve(host: host, service: service, family: family)
                            return .resolved(family, .success(found))
                        } catch {
                            return .resolved(family, .failure(error))
                        }
                    }
                }
            }
            if let deadline {
                group.addTask { await Self.sleep(until: deadline) ? .deadlinePassed : .stopped }
            }
            let result = await run(&state, in: &group)
            // Decided: stop the rest, and close every attempt that connected but did not win.
            group.cancelAll()
            for await event in group {
                if case .attempted(_, .connected(let loser)) = event { loser.close() }
            }
            return result
        }
        let (handle, remote) = try outcome.get()
        return try adopt(handle, remote)
    }

    /// The connection of the winning attempt, registered with the current custodian.
    private func adopt(_ handle: SocketHandle, _ remote: SocketAddress) throws -> TCPConnection {
        try TCPConnection.adopt(handle: handle, peer: remote, operation: "connect", custodian: Custodian.current)
    }

    /// The race's loop: starts what is due, handles each event, until the race is decided.
    private func run(
        _ state: inout RaceState,
        in group: inout TaskGroup<Event>
    ) async -> Result<(SocketHandle, SocketAddress), any Error> {
        startDue(&state, in: &group)
        while let event = await group.next() {
            switch event {
            case .resolved(let family, .success(let found)):
                state.lookupsPending -= 1
                state.add(found)
                if family == .ipv4, state.lookupsPending > 0, state.attempted == 0, strategy.resolutionDelay > .zero {
                    // RFC 8305, 3: the A answer came first; give AAAA a moment before connecting over IPv4.
                    state.waitingForIPv6 = true
                    let delay = strategy.resolutionDelay
                    group.addTask { await Self.sleep(until: .now + delay) ? .resolutionDelayPassed : .stopped }
                }
                if family == .ipv6 { state.waitingForIPv6 = false }
            case .resolved(let family, .failure(let error)):
                state.lookupsPending -= 1
                if family == .ipv6 { state.waitingForIPv6 = false }
                if family != .ipv6 || state.resolutionError == nil { state.resolutionError = error }
            case .resolutionDelayPassed:
                state.waitingForIPv6 = false
            case .attemptDelayPassed(let number):
                if number == state.attempted { state.due = true }
            case .attempted(let remote, .connected(let handle)):
                return .success((handle, remote))
            case .attempted(let remote, .failed(let why)):
                state.finished(remote)
                state.fail(remote, why)
            case .attempted(let remote, .timedOut), .attempted(let remote, .cancelled):
                state.finished(remote)
            case .deadlinePassed:
                return .failure(timedOutError(state))
            case .stopped:
                break
            }
            if Task.isCancelled { return .failure(CancellationError()) }
            startDue(&state, in: &group)
            if state.lookupsPending == 0, state.queue.isEmpty, state.inFlight.isEmpty { break }
        }
        return .failure(everyAddressFailed(state))
    }

    /// Starts the next attempt when one is due and an address waits, and arms its attempt delay.
    private func startDue(_ state: inout RaceState, in group: inout TaskGroup<Event>) {
        while state.due, !state.waitingForIPv6, !state.queue.isEmpty {
            let remote = state.queue.removeFirst()
            guard let local = local(for: remote) else {
                state.fail(remote, Self.noLocalAddress)
                continue
            }
            state.attempted += 1
            state.lastFamily = remote.family
            state.inFlight.append(remote)
            state.due = false
            group.addTask { .attempted(remote, await Self.attempt(remote, from: local, deadline: nil)) }
            if let delay = strategy.attemptDelay {
                let number = state.attempted
                group.addTask { await Self.sleep(until: .now + delay) ? .attemptDelayPassed(number) : .stopped }
            }
        }
    }

    /// The error of a connect that tried one address: it reads as a plain `connect(2)`'s.
    private func failure(of remote: SocketAddress, _ why: AttemptFailure) -> NetworkError {
        NetworkError.system(
            why.errno, "connect", shown == remote.description ? shown : "\(shown) (\(remote))",
            detail: why.detail)
    }

    private func timedOutError(_ state: RaceState) -> NetworkError {
        if state.attempted == 0, state.failures.isEmpty { return timedOut(" (the name was not resolved yet)") }
        let waiting = state.inFlight.map { "\($0): no answer" }
        return timedOut("; tried " + (state.failures + waiting).joined(separator: "; "))
    }

    private func everyAddressFailed(_ state: RaceState) -> any Error {
        guard let (remote, why) = state.lastFailure else {
            // No address to try: every lookup failed (an unknown name fails both; the IPv4 lookup's error is shown).
            return state.resolutionError
                ?? NetworkError(.resolution(.unknownName), operation: "resolve", address: shown)
        }
        if state.failures.count == 1 { return failure(of: remote, why) }
        return NetworkError.system(
            why.errno, "connect", shown,
            detail: "tried " + state.failures.joined(separator: "; "))
    }

    /// Sleeps until `instant`; `false` when cancelled first.
    private static func sleep(until instant: ContinuousClock.Instant) async -> Bool {
        do {
            try await Task.sleep(until: instant, clock: .continuous)
            return true
        } catch {
            return false
        }
    }

    private static func dispatchTime(_ instant: ContinuousClock.Instant) -> DispatchTime {
        max(.zero, instant - .now).deadlineFromNow
    }

    // MARK: One attempt

    /// Why one address failed.
    struct AttemptFailure: Sendable {
        let errno: Errno
        var detail: String? = nil
    }

    enum AttemptOutcome: Sendable {
        /// The handshake completed: the caller owns the handle (and closes it unless it wins).
        case connected(SocketHandle)
        case failed(AttemptFailure)
        case timedOut
        case cancelled
    }

    /// One connection attempt, from `local` when given, waiting until `deadline` (in a race: until cancelled).
    /// Every outcome but `connected` has closed its socket.
    static func attempt(
        _ remote: SocketAddress, from local: SocketAddress?,
        deadline: DispatchTime?
    ) async -> AttemptOutcome {
        let handle: SocketHandle
        let connected: Bool
        do throws(Errno) {
            let descriptor = try SystemSocket.open(family: remote.family, kind: .stream)
            do throws(Errno) {
                if let local {
                    try SystemSocket.setOption(descriptor, SOL_SOCKET, SO_REUSEADDR, 1)
                    try SystemSocket.bind(descriptor, to: local)
                }
                connected = try SystemSocket.connect(descriptor, to: remote)
            } catch {
                SystemSocket.close(descriptor)
                throw error
            }
            // Registered only once connecting: a socket that has not begun reports itself writable (EPOLLOUT
            // with EPOLLHUP), an edge that would end the wait below before any handshake. A registration that
            // fails has closed the descriptor itself (closing it here too could close a number reused meanwhile).
            handle = try SocketHandle(descriptor: descriptor)
        } catch {
            return .failed(AttemptFailure(errno: error))
        }
        if connected { return .connected(handle) }
        while true {
            switch await handle.wait(for: .write, deadline: deadline) {
            case .ready: break
            case .closed: return .failed(AttemptFailure(errno: .badFileDescriptor, detail: "closed"))
            case .timedOut:
                handle.close()
                return .timedOut
            case .cancelled:
                handle.close()
                return .cancelled
            }
            if let errno = SystemSocket.pendingError(handle.descriptor) {
                handle.close()
                return .failed(AttemptFailure(errno: errno))
            }
            // Writable and a peer: connected. Writable without one is an edge from before the handshake: wait on.
            if (try? SystemSocket.peerAddress(handle.descriptor)) != nil { return .connected(handle) }
        }
    }
}

/// The state of a race, kept by the group's body alone.
private struct RaceState {
    let interleaving: Bool
    /// The addresses not tried yet, in the order they will be.
    var queue: [SocketAddress]
    var lookupsPending = 0
    /// The A answer came first and the resolution delay has not passed.
    var waitingForIPv6 = false
    /// Whether the next attempt may start: at first, after the attempt delay, or when an attempt failed.
    var due = true
    /// How many attempts have started; the number of the latest.
    var attempted = 0
    var lastFamily: SocketAddress.Family?
    /// The attempts under way.
    var inFlight: [SocketAddress] = []
    /// `address: reason`, for the error when every address fails.
    var failures: [String] = []
    var lastFailure: (SocketAddress, ConnectRace.AttemptFailure)?
    var resolutionError: (any Error)?

    /// The caller's own list is tried in its order; the sequential strategy keeps the resolver's order.
    init(strategy: ConnectStrategy, given: [SocketAddress]) {
        interleaving = strategy.attemptDelay != nil && given.isEmpty
        queue = given
    }

    /// Adds addresses a lookup found. With Happy Eyeballs, the families alternate, IPv6 first, starting with the
    /// family other than the last one tried (RFC 8305, 4).
    mutating func add(_ found: [SocketAddress]) {
        guard interleaving else {
            queue += found
            return
        }
        var sixes = (queue + found).filter { $0.family == .ipv6 }[...]
        var fours = (queue + found).filter { $0.family == .ipv4 }[...]
        var nextFamily: SocketAddress.Family = lastFamily == .ipv6 ? .ipv4 : .ipv6
        queue = []
        while !sixes.isEmpty || !fours.isEmpty {
            if nextFamily == .ipv6, let next = sixes.popFirst() ?? fours.popFirst() {
                queue.append(next)
            } else if let next = fours.popFirst() ?? sixes.popFirst() {
                queue.append(next)
            }
            nextFamily = nextFamily == .ipv6 ? .ipv4 : .ipv6
        }
    }

    /// An attempt ended.
    mutating func finished(_ remote: SocketAddress) {
        if let index = inFlight.firstIndex(of: remote) { inFlight.remove(at: index) }
    }

    /// Records a failed address; the next one is due at once.
    mutating func fail(_ remote: SocketAddress, _ why: ConnectRace.AttemptFailure) {
        failures.append("\(remote): \(why.detail ?? why.errno.description)")
        lastFailure = (remote, why)
        due = true
    }
}
#endif
