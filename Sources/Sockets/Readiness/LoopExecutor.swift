import Dispatch

/// A serial executor and task executor backed by an event loop's serial `DispatchQueue`.
///
/// Actors that own sockets run on it, so their system calls run on the same queue their readiness events
/// fire on; a task that prefers it (`withTaskExecutorPreference`) runs its nonisolated code there too, so a
/// read resumed by readiness continues without a hop to the cooperative pool.
final class LoopExecutor: SerialExecutor, TaskExecutor {
    let queue: DispatchQueue

    init(queue: DispatchQueue) {
        self.queue = queue
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async {
            job.runSynchronously(isolatedTo: self.asUnownedSerialExecutor(), taskExecutor: self.asUnownedTaskExecutor())
        }
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
