#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif
import CSockets
import Dispatch
import Synchronization

/// One readiness loop: an edge-triggered epoll set of the library's own, watched by a single
/// `DispatchSource` on a serial queue that targets `DispatchQueue.global()` (no thread of its own).
///
/// When the epoll descriptor becomes readable, the source's handler drains `epoll_wait` and wakes every
/// waiter of every ready socket: one Dispatch event carries many sockets (measured: 6–22 on 64 busy
/// connections), where a source per socket costs an event, a queue hop and a resume each.
///
/// Sockets are spread over ``pool``, one loop per core.
public final class EventLoop: Sendable {
    /// The loops of this process, one per online core.
    public static let pool: [EventLoop] = {
        let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return (0..<cores).map { EventLoop(index: $0) }
    }()

    private static let cursor = Atomic<Int>(0)

    /// The next loop, round-robin over ``pool``.
    public static func next() -> EventLoop {
        pool[cursor.add(1, ordering: .relaxed).oldValue % pool.count]
    }

    /// The serial queue every event of this loop is handled on.
    let queue: DispatchQueue
    let executor: LoopExecutor
    let epollDescriptor: Int32
    /// The read source on the epoll descriptor. A loop lives as long as the process, so the source is
    /// never cancelled and the epoll descriptor never closed.
    /// (Dispatch's source types are not `Sendable`; the mutex makes the stored reference so.)
    private let source: Lock<(any DispatchSourceRead)?>

    private init(index: Int) {
        let queue = DispatchQueue(label: "Sockets.EventLoop.\(index)", target: .global())
        self.queue = queue
        self.executor = LoopExecutor(queue: queue)
        let descriptor = csockets_epoll_create()
        precondition(descriptor >= 0, "epoll_create1 failed: \(Errno.current)")
        self.epollDescriptor = descriptor
        let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
        let executor = self.executor
        source.setEventHandler {
            // The tasks that the batch's wakeups resume run in this same Dispatch event, after the batch.
            executor.beginRun()
            EventLoop.drain(descriptor)
            executor.runJobs()
        }
        source.activate()
        self.source = Lock(source)
    }

    /// Runs `body` with a preference for this loop's executor: its nonisolated code runs on the loop's queue,
    /// beside the sockets it uses, with no hop to the cooperative pool after each wait. Code isolated to an
    /// actor (the caller's, when it has one) still runs on that actor.
    public func withExecutorPreference<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async rethrows -> T {
        try await withTaskExecutorPreference(executor, isolation: isolation, operation: body)
    }

    /// Handles every ready socket of the loop. Runs on `queue` only.
    private static func drain(_ epollDescriptor: Int32) {
        let capacity = 64
        withUnsafeTemporaryAllocation(of: epoll_event.self, capacity: capacity) { events in
            while true {
                let count = csockets_epoll_wait(epollDescriptor, events.baseAddress, Int32(capacity), 0)
                if count <= 0 { return }
                for index in 0..<Int(count) {
                    let token = csockets_epoll_event_data(events.baseAddress, Int32(index))
                    let flags = csockets_epoll_event_flags(events.baseAddress, Int32(index))
                    guard let pointer = UnsafeRawPointer(bitPattern: UInt(token)) else { continue }
                    // Safe: a handle stays retained while it is registered, and its release after
                    // deregistration is queued behind this handler on the same serial queue.
                    Unmanaged<SocketHandle>.fromOpaque(pointer).takeUnretainedValue().signal(flags)
                }
                if count < capacity { return }
            }
        }
    }
}
#endif
