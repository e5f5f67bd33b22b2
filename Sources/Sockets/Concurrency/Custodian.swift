#if SOCKETS_PLATFORM_SUPPORTED
import Synchronization

/// Something a custodian manages: a listener, a connection or a UDP socket.
protocol CustodianManaged: Actor {
    /// Closes the resource because its custodian was shut down; later use throws
    /// ``NetworkError/Code/custodianShutDown``.
    func shutDownByCustodian() async
}

/// A scope that owns sockets and tasks, and closes and cancels them all at once. Racket: a custodian.
///
/// Every listener, connection and UDP socket made while a custodian is current (``current``, a task-local, as
/// Racket's `current-custodian` is a parameter) is managed by it; so is every task started with ``spawn(_:)``.
/// ``shutdownAll()`` closes every socket it manages, cancels its tasks and shuts down the custodians made
/// under it (Racket: `custodian-shutdown-all`). A socket closed by hand leaves its custodian.
///
/// Use it through ``withCustodian(isolation:_:)``, which shuts the custodian down when its body ends:
///
/// ```swift
/// try await withCustodian { custodian in
///     let listener = try await TCPListener(port: 8080)
///     for try await connection in listener.connections {
///         custodian.spawn { await handle(connection) }
///     }
/// }   // every handler cancelled and awaited, every socket closed
/// ```
public final class Custodian: Sendable {
    /// The custodian of the current task; `nil` at the top level, where sockets are managed by nobody (they
    /// close when closed by hand or when dropped).
    @TaskLocal public static var current: Custodian?

    /// The custodian this one was made under, if any.
    public let parent: Custodian?

    private struct Entry {
        weak var resource: (any CustodianManaged)?
    }

    private struct State {
        var shutDown = false
        var sweepAt = 64
        var resources: [ObjectIdentifier: Entry] = [:]
        var children: [ObjectIdentifier: WeakCustodian] = [:]
        var jobs: JobQueue?
    }

    private struct WeakCustodian {
        weak var custodian: Custodian?
    }

    enum Job: Sendable {
        case run(@Sendable () async -> Void, (any TaskExecutor)?)
        case cancelAll
    }

    private let state = Lock(State())

    /// Makes a custodian under `parent` (by default the current one). Shutting the parent down shuts this one
    /// down too. Racket: `make-custodian`.
    public init(parent: Custodian? = Custodian.current) {
        self.parent = parent
        parent?.adopt(self)
    }

    private func adopt(_ child: Custodian) {
        let alreadyShutDown = state.withLock { state -> Bool in
            if state.shutDown { return true }
            state.children[ObjectIdentifier(child)] = WeakCustodian(custodian: child)
            return false
        }
        if alreadyShutDown { child.state.withLock { $0.shutDown = true } }
    }

    /// Whether ``shutdownAll()`` has run. Racket: `custodian-shut-down?`.
    public var isShutDown: Bool { state.withLock { $0.shutDown } }

    /// Registers a resource; returns `false` when the custodian is already shut down (the caller then closes it).
    func register(_ resource: any CustodianManaged) -> Bool {
        state.withLock { state in
            guard !state.shutDown else { return false }
            // Sockets dropped without close (their deinit closed them) leave empty records: sweep them out
            // whenever the table has doubled, so a long-lived custodian does not grow without bound.
            if state.resources.count >= state.sweepAt {
                state.resources = state.resources.filter { $0.value.resource != nil }
                state.children = state.children.filter { $0.value.custodian != nil }
                state.sweepAt = max(64, state.resources.count * 2)
            }
            state.resources[ObjectIdentifier(resource)] = Entry(resource: resource)
            return true
        }
    }

    /// Forgets a resource that was closed by hand.
    func unregister(_ resource: any CustodianManaged) {
        _ = state.withLock { $0.resources.removeValue(forKey: ObjectIdentifier(resource)) }
    }

    /// How many open resources the custodian manages now. Racket: `custodian-managed-list`, counted.
    public var managedCount: Int {
        state.withLock { state in state.resources.values.filter { $0.resource != nil }.count }
    }

    /// Starts `operation` as a child task of the custodian's scope (see ``withCustodian(isolation:_:)``), with this
    /// custodian as its current one. Returns `false`, starting nothing, once the custodian is shut down or its
    /// scope has ended.
    @discardableResult
    public func spawn(_ operation: @escaping @Sendable () async -> Void) -> Bool {
        spawn(preferring: nil, operation)
    }

    /// ``spawn(_:)`` with a task executor preference set as the task is made (`serve` runs each handler so,
    /// on its connection's loop): no wrapping `withTaskExecutorPreference` frame in every idle handler task.
    @discardableResult
    func spawn(preferring executor: (any TaskExecutor)?, _ operation: @escaping @Sendable () async -> Void) -> Bool {
        state.withLock { state in
            guard !state.shutDown, let jobs = state.jobs else { return false }
            return jobs.push(.run(operation, executor))
        }
    }

    func attach(_ jobs: JobQueue) {
        state.withLock { $0.jobs = jobs }
    }

    /// Closes every socket the custodian manages, cancels every task it started, and shuts down every
    /// custodian made under it. Sockets it closed throw ``NetworkError/Code/custodianShutDown`` when used.
    /// Racket: `custodian-shutdown-all`. Shutting down again does nothing.
    public func shutdownAll() async {
        let (resources, children, jobs) = state.withLock { state in
            let taken = (
                state.resources.values.compactMap(\.resource), state.children.values.compactMap(\.custodian),
                state.jobs
            )
            state.shutDown = true
            state.resources = [:]
            state.children = [:]
            state.jobs = nil
            return taken
        }
        _ = jobs?.push(.cancelAll)
        jobs?.finish()
        for child in children { await child.shutdownAll() }
        await withDiscardingTaskGroup { group in
            for resource in resources { group.addTask { await resource.shutDownByCustodian() } }
        }
    }
}

/// Runs `body` with a new custodian as the current one, in a scope built on a task group: tasks the body
/// starts with ``Custodian/spawn(_:)`` are child tasks of the scope. When the body returns, throws or is
/// cancelled, every such task is cancelled and awaited, and every socket made in the scope is closed: no
/// descriptor outlives the scope.
///
/// Custodians nest: a scope inside another makes a child custodian, shut down with its parent.
///
/// The body runs in the calling task, in the caller's isolation, as the body of `withTaskGroup` does: from an
/// actor (a `@MainActor` type, say) it may use the actor's state, and it need not be `@Sendable`. Tasks given
/// to ``Custodian/spawn(_:)`` run elsewhere and must be `@Sendable`. ``Custodian/shutdownAll()`` called from
/// another task while the body runs closes the scope's sockets (their calls throw
/// ``NetworkError/Code/custodianShutDown``) and cancels its spawned tasks; it does not cancel the body's task,
/// which is the caller's.
///
/// ```swift
/// try await withCustodian { custodian in
///     let listener = try await TCPListener(port: 0)
///     custodian.spawn { try? await echo(listener) }
///     try await Task.sleep(for: .seconds(10))
/// }   // the echo task is cancelled and awaited; the listener and its connections are closed
/// ```
public func withCustodian<T>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (Custodian) async throws -> T
) async throws -> T {
    let custodian = Custodian()
    let jobs = JobQueue()
    custodian.attach(jobs)
    let outcome = await Custodian.$current.withValue(
        custodian,
        operation: {
            await withDiscardingTaskGroup(returning: Result<T, any Error>.self, isolation: isolation) { group in
                // The spawned tasks: one child adds each job to a group of its own while the body runs here, in the
                // caller's task and isolation (as `withTaskGroup`'s body does).
                group.addTask {
                    await withDiscardingTaskGroup { spawned in
                        // Not an AsyncStream: its iteration ends when the task is cancelled, and a job spawned in a
                        // cancelled scope must still run (cancelled) rather than vanish.
                        while let job = await jobs.next() {
                            switch job {
                            case .run(let operation, let executor):
                                spawned.addTask(executorPreference: executor) { await operation() }
                            case .cancelAll: spawned.cancelAll()
                            }
                        }
                    }
                }
                let outcome: Result<T, any Error>
                do { outcome = .success(try await body(custodian)) } catch { outcome = .failure(error) }
                _ = jobs.push(.cancelAll)
                jobs.finish()
                return outcome
            }
        }, isolation: isolation)
    await custodian.shutdownAll()
    return try outcome.get()
}

/// The jobs of a custodian's scope, handed from ``Custodian/spawn(_:)`` to the scope's task group. Waiting for
/// the next job does not end on cancellation: only ``finish()`` ends it.
final class JobQueue: Sendable {
    private struct State {
        var jobs: [Custodian.Job] = []
        var finished = false
        var waiter: UnsafeContinuation<Custodian.Job?, Never>?
    }

    private let state = Lock(State())

    /// Adds a job; `false` once finished.
    func push(_ job: Custodian.Job) -> Bool {
        // The waiting consumer is taken out under the lock and resumed after it: never resume under a lock.
        let (accepted, waiter) = state.withLock { state -> (Bool, UnsafeContinuation<Custodian.Job?, Never>?) in
            guard !state.finished else { return (false, nil) }
            guard let waiter = state.waiter else {
                state.jobs.append(job)
                return (true, nil)
            }
            state.waiter = nil
            return (true, waiter)
        }
        waiter?.resume(returning: job)
        return accepted
    }

    func finish() {
        let waiter = state.withLock { state -> UnsafeContinuation<Custodian.Job?, Never>? in
            state.finished = true
            guard state.jobs.isEmpty else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The next job, or `nil` once finished and drained. One consumer at a time.
    func next() async -> Custodian.Job? {
        await withUnsafeContinuation { continuation in
            let immediate = state.withLock { state -> Custodian.Job?? in
                if !state.jobs.isEmpty { return .some(state.jobs.removeFirst()) }
                if state.finished { return .some(nil) }
                state.waiter = continuation
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }
}
#endif
