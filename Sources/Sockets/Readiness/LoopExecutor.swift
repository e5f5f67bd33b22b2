#if SOCKETS_PLATFORM_SUPPORTED
import Dispatch

/// A serial executor and task executor backed by an event loop's serial `DispatchQueue`.
///
/// Actors that own sockets run on it, so their system calls run on the same queue their readiness events
/// fire on; a task that prefers it (`withTaskExecutorPreference`) runs its nonisolated code there too, so a
/// read resumed by readiness continues without a hop to the cooperative pool.
///
/// Jobs wait in a list of the executor's own: one Dispatch block is scheduled when the list goes from empty to
/// non-empty, and it runs every job there is. The loop's epoll handler runs the list too, right after it wakes
/// the waiters of a batch of ready sockets, so the tasks it resumed run in the same Dispatch event.
final class LoopExecutor: SerialExecutor, TaskExecutor {
    let queue: DispatchQueue

    private struct Pending {
        var jobs: [UnownedJob] = []
        /// A run of the list is scheduled or under way: enqueuing needs no Dispatch block.
        var running = false
    }

    private let pending = Lock(Pending())

    /// Rounds of the list one run takes before it yields the queue (to the epoll source, say) and reschedules.
    private static let roundsPerRun = 16

    init(queue: DispatchQueue) {
        self.queue = queue
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let schedule = pending.withLock { pending -> Bool in
            pending.jobs.append(job)
            if pending.running { return false }
            pending.running = true
            return true
        }
        if schedule { queue.async { self.runJobs() } }
    }

    /// Marks a run as under way, so that jobs enqueued from now on wait for ``runJobs()`` without a Dispatch
    /// block of their own. On `queue` only, followed by ``runJobs()``.
    func beginRun() {
        pending.withLock { $0.running = true }
    }

    /// Runs the jobs enqueued so far and those they enqueue, until none is left (or, after a number of
    /// rounds, schedules the rest and returns). On `queue` only.
    func runJobs() {
        var batch: [UnownedJob] = []
        for _ in 0..<Self.roundsPerRun {
            pending.withLock { pending in
                swap(&batch, &pending.jobs)
                if batch.isEmpty { pending.running = false }
            }
            if batch.isEmpty { return }
            for job in batch {
                job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
            }
            batch.removeAll(keepingCapacity: true)
        }
        queue.async { self.runJobs() }
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
