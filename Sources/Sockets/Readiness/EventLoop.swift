#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif
import CSockets
import Dispatch
import Synchronization

/// One readiness loop: an edge-triggered epoll set of the library's own, watched by a single
/// `DispatchSource` on a serial queue of its own (no thread of its own: the queue borrows a Dispatch worker
/// while it has work).
///
/// The queue has Dispatch's default target for a serial queue, the overcommitting root queue, which always
/// finds a worker for it. It does not target `DispatchQueue.global()`: that root queue has one worker per
/// core, the very workers Swift's cooperative pool runs its jobs on, so a loop's handler waited behind every
/// task job in the process, and tasks busy with CPU-bound work stopped every socket. Measured: an echo served
/// while every thread of the pool spun took 20 s (until the spinning stopped); on its own worker, 4 ms in a
/// debug build (`BusyPoolTests`).
///
/// When the epoll descriptor becomes readable, the source's handler drains `epoll_wait` and wakes every
/// waiter of every ready socket: one Dispatch event carries many sockets (measured: 6–22 on 64 busy
/// connections), where a source per socket costs an event, a queue hop and a resume each.
///
/// Sockets are spread over ``pool``: one loop per online core but one, and at least one.
public final class EventLoop: Sendable {
    /// The loops of this process: one per online core but one (at least one); `SOCKETS_LOOPS=N` in the
    /// environment sets the number.
    ///
    /// A busy loop keeps a Dispatch worker busy (and may keep it, its spell), so one core is left to the tasks
    /// that run off the loops (the cooperative pool, handlers without an executor preference). Measured on 2 cores
    /// with the load generator beside the server (`Benchmarks/RESULTS.md`): one loop served rr64 at 1.4 times
    /// and stream8 at 1.35 times the rate of two, with less CPU per operation; two loops and the load generator
    /// were three busy threads on two cores.
    public static let pool: [EventLoop] = {
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        var count = max(1, cores - 1)
        if let text = getenv("SOCKETS_LOOPS"), let wanted = Int(String(cString: text)), wanted > 0 { count = wanted }
        return (0..<count).map { EventLoop(index: $0) }
    }()

    private static let cursor = Atomic<Int>(0)

    /// The next loop, round-robin over ``pool``.
    public static func next() -> EventLoop {
        pool[cursor.add(1, ordering: .relaxed).oldValue % pool.count]
    }

    /// The serial queue every event of this loop is handled on.
    let queue: DispatchQueue
    let executor: LoopExecutor
    /// Receive memory for the jobs that run on ``executor``; see ``LoopScratch``.
    let scratch = LoopScratch()
    let epollDescriptor: Int32
    /// The read source on the epoll descriptor. A loop lives as long as the process, so the source is
    /// never cancelled and the epoll descriptor never closed.
    /// (Dispatch's source types are not `Sendable`; the mutex makes the stored reference so.)
    private let source: Lock<(any DispatchSourceRead)?>

    /// How long a loop's handler keeps its worker waiting in `epoll_wait` after the last event, before it
    /// hands back to the source; and how long it keeps it at most, so that the blocks queued behind it (the
    /// sockets' releases; their timers fire on a queue of their own) run within that time. Off by default (see ``Spell/fromEnvironment()``);
    /// measured in `Benchmarks/RESULTS.md`.
    static let spell = Spell.fromEnvironment()

    private init(index: Int) {
        let queue = DispatchQueue(label: "Sockets.EventLoop.\(index)")
        self.queue = queue
        let executor = LoopExecutor(queue: queue)
        self.executor = executor
        let descriptor = csockets_epoll_create()
        precondition(descriptor >= 0, "epoll_create1 failed: \(Errno.current)")
        self.epollDescriptor = descriptor
        // Token 0 (no handle has it) is the executor's wake-up eventfd.
        let added = csockets_epoll_add(
            descriptor, executor.wakeDescriptor, CSOCKETS_EPOLLIN | CSOCKETS_EPOLLET, EventLoop.wakeToken)
        precondition(added == 0, "epoll_ctl failed: \(Errno.current)")
        let spell = EventLoop.spell
        // Token 1 is the spell's timerfd, its tick; a loop without a spell has none.
        var tickDescriptor: Int32 = -1
        if spell.limit > 0 {
            tickDescriptor = csockets_timerfd_create()
            precondition(tickDescriptor >= 0, "timerfd_create failed: \(Errno.current)")
            let added = csockets_epoll_add(
                descriptor, tickDescriptor, CSOCKETS_EPOLLIN | CSOCKETS_EPOLLET, EventLoop.tickToken)
            precondition(added == 0, "epoll_ctl failed: \(Errno.current)")
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
        source.setEventHandler { [tickDescriptor] in
            EventLoop.run(descriptor, tickDescriptor, executor, spell)
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

    private static let wakeToken: UInt64 = 0
    private static let tickToken: UInt64 = 1

    /// The source's handler: handles every ready socket, runs the tasks their wake-ups resumed (in this same
    /// Dispatch event), and, while sockets keep becoming ready, keeps the worker: it waits in `epoll_wait`
    /// itself, for `spell.idle` after the last event and `spell.limit` in all, with the executor's eventfd in
    /// the set so that a job enqueued from another thread wakes it. Then it hands back to the source.
    ///
    /// A spell's waits have no timeout of their own: a timerfd in the set ticks every `spell.idle` while the
    /// spell lasts, and the spell ends at the first tick that finds no event since `spell.idle` before it (so
    /// after between one and two `spell.idle` of quiet) or the limit passed. A timeout per wait armed and
    /// cancelled a kernel timer on every wait, and on this machine (a virtual one) that doubled the kernel
    /// time of a wait that sleeps: the C server's rr1 went from 9.5 to 18.1 µs of CPU per round trip with a
    /// 1 ms timeout on its `epoll_wait` (`Benchmarks/RESULTS.md`). Runs on `queue` only.
    private static func run(_ epollDescriptor: Int32, _ tickDescriptor: Int32, _ executor: LoopExecutor, _ spell: Spell)
    {
        executor.beginRun()
        defer { executor.endRun() }
        let capacity = 64
        withUnsafeTemporaryAllocation(of: epoll_event.self, capacity: capacity) { events in
            let start = DispatchTime.now().uptimeNanoseconds
            var lastEvent = start
            var ticking = false
            defer { if ticking { _ = csockets_timerfd_set_interval(tickDescriptor, 0) } }
            // The spell goes on: the next wait may sleep, until an event, an enqueue or a tick.
            var spelling = false
            while true {
                var parked = false
                if spelling {
                    if !ticking {
                        guard csockets_timerfd_set_interval(tickDescriptor, Int64(spell.idle)) == 0 else { return }
                        ticking = true
                    }
                    parked = executor.park()
                }
                let count = csockets_epoll_wait(epollDescriptor, events.baseAddress, Int32(capacity), parked ? -1 : 0)
                if parked { executor.unpark() }
                var activity = count
                for index in 0..<Int(max(count, 0)) {
                    let token = csockets_epoll_event_data(events.baseAddress, Int32(index))
                    if token == wakeToken {
                        _ = csockets_eventfd_reset(executor.wakeDescriptor)
                        continue
                    }
                    if token == tickToken {  // a tick is not activity
                        _ = csockets_eventfd_reset(tickDescriptor)
                        activity -= 1
                        continue
                    }
                    let flags = csockets_epoll_event_flags(events.baseAddress, Int32(index))
                    guard let pointer = UnsafeRawPointer(bitPattern: UInt(token)) else { continue }
                    // Safe: a handle stays retained while it is registered, and its release after
                    // deregistration is queued behind this handler on the same serial queue.
                    Unmanaged<SocketHandle>.fromOpaque(pointer).takeUnretainedValue().signal(flags)
                }
                // Jobs that keep enqueuing more: yield the queue (endRun schedules the rest behind it).
                guard executor.runPending() else { return }
                if count == capacity {
                    spelling = false
                    continue
                }
                let now = DispatchTime.now().uptimeNanoseconds
                if activity > 0 { lastEvent = now }
                if now >= min(lastEvent + spell.idle, start + spell.limit) { return }
                spelling = true
            }
        }
    }
}

/// How long a busy loop keeps its worker (see ``EventLoop/spell``).
struct Spell: Sendable {
    /// Nanoseconds without an event before the loop hands back to its source.
    var idle: UInt64
    /// Nanoseconds a loop keeps its worker at most in one Dispatch event.
    var limit: UInt64

    /// **Off by default** (`0,0`: the handler hands back after every batch). `SOCKETS_LOOP_SPELL=IDLE,LIMIT` (in
    /// microseconds; `200,1000` measured best) turns it on. It is off because, since each loop has a Dispatch
    /// worker of its own, it does not pay consistently. In the last recorded run: rr1 0.74, stream1 1.41, stream8
    /// 0.88, the rest 0.94–1.04 of handing back; less CPU per rr1 round trip (14.4 against 18.3 µs; NIO 12.6),
    /// but rr1's rate falls toward NIO's (`Benchmarks/RESULTS.md`). (It was first kept off for hangs, every task
    /// waiting, in about one full test run in three; they came with a skipped `recv` since removed, and none of
    /// 31 full runs with the spell on then hung.)
    static func fromEnvironment() -> Spell {
        var spell = Spell(idle: 0, limit: 0)
        if let text = getenv("SOCKETS_LOOP_SPELL").map({ String(cString: $0) }) {
            let parts = text.split(separator: ",").compactMap { UInt64($0) }
            if parts.count == 2 { spell = Spell(idle: parts[0] * 1000, limit: parts[1] * 1000) }
        }
        return spell
    }
}
#endif
