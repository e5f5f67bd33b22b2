#if SOCKETS_PLATFORM_SUPPORTED
import CSockets
import Dispatch

/// A serial executor and task executor backed by an event loop's serial `DispatchQueue`.
///
/// Actors that own sockets run on it, so their system calls run on the same queue their readiness events
/// fire on; a task that prefers it (`withTaskExecutorPreference`) runs its nonisolated code there too, so a
/// read resumed by readiness continues without a hop to the cooperative pool.
///
/// Jobs wait in a list of the executor's own: one Dispatch block is scheduled when the list goes from empty to
/// non-empty, and it runs every job there is. The loop's epoll handler runs the list too, right after it wakes
/// the waiters of a batch of ready sockets, so the tasks it resumed run in the same Dispatch event; while that
/// handler waits in `epoll_wait` for more (its spell), an enqueue wakes it through an eventfd in the epoll set
/// rather than scheduling a block behind it.
final class LoopExecutor: SerialExecutor, TaskExecutor {
    let queue: DispatchQueue

    private struct Pending {
        var jobs: [UnownedJob] = []
        /// A run of the list is scheduled or under way: enqueuing needs no Dispatch block.
        var running = false
        /// The loop's handler waits in `epoll_wait` (its spell, see ``EventLoop``): enqueuing wakes it through
        /// ``wakeDescriptor`` instead.
        var parked = false
    }

    private let pending = Lock(Pending())

    /// The eventfd in the loop's epoll set that an enqueue writes while the loop is parked. Lives as long as
    /// the process, as the loop does.
    let wakeDescriptor: Int32

    /// Rounds of the list one run takes before it yields the queue (to the epoll source, say) and reschedules.
    private static let roundsPerRun = 16

    init(queue: DispatchQueue) {
        self.queue = queue
        let descriptor = csockets_eventfd_create()
        precondition(descriptor >= 0, "eventfd failed: \(Errno.current)")
        self.wakeDescriptor = descriptor
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        enum Action { case none, schedule, wake }
        let action = pending.withLock { pending -> Action in
            pending.jobs.append(job)
            if pending.parked {
                pending.parked = false
                return .wake
            }
            if pending.running { return .none }
            pending.running = true
            return .schedule
        }
        switch action {
        case .none: break
        case .schedule: queue.async { self.runJobs() }
        case .wake: _ = csockets_eventfd_signal(wakeDescriptor)
        }
    }

    /// Whether a run is scheduled or under way (the loop's handler holds its worker, or a block of jobs waits
    /// on the queue). For tests.
    var isRunning: Bool { pending.withLock { $0.running } }

    /// Marks a run as under way, so that jobs enqueued from now on wait for ``runPending()`` without a Dispatch
    /// block of their own. On `queue` only, followed by ``endRun()``.
    func beginRun() {
        pending.withLock { $0.running = true }
    }

    /// Marks the loop as waiting in `epoll_wait`, so that the next enqueue writes ``wakeDescriptor``; returns
    /// `false` (and does not park) when jobs are waiting. In a run only; ``unpark()`` follows the wait.
    func park() -> Bool {
        pending.withLock { pending in
            guard pending.jobs.isEmpty else { return false }
            pending.parked = true
            return true
        }
    }

    /// The loop is back from `epoll_wait`.
    func unpark() {
        pending.withLock { $0.parked = false }
    }

    /// Runs the jobs enqueued so far and those they enqueue, until none is left; returns `false` when it
    /// stopped after a number of rounds with jobs still waiting. The run stays under way. On `queue` only.
    func runPending() -> Bool {
        var batch: [UnownedJob] = []
        for _ in 0..<Self.roundsPerRun {
            pending.withLock { swap(&batch, &$0.jobs) }
            if batch.isEmpty { return true }
            for job in batch {
                job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
            }
            batch.removeAll(keepingCapacity: true)
        }
        return false
    }

    /// Ends a run: when jobs are left, schedules a block to run them (yielding the queue first); otherwise
    /// the next enqueue schedules one. On `queue` only.
    func endRun() {
        let left = pending.withLock { pending -> Bool in
            if pending.jobs.isEmpty { pending.running = false }
            return pending.running
        }
        if left { queue.async { self.runJobs() } }
    }

    /// A run of its own: the Dispatch block an enqueue schedules.
    private func runJobs() {
        _ = runPending()
        endRun()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }
}
#endif
