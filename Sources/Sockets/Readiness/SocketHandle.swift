#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif
import CSockets
import Dispatch
import Synchronization

/// What a wait for readiness ended with.
enum WaitOutcome: Sendable {
    /// The socket may be ready: retry the system call.
    case ready
    /// The handle was closed while (or before) waiting.
    case closed
    /// The deadline passed.
    case timedOut
    /// The waiting task was cancelled.
    case cancelled
}

/// Which readiness a wait is for.
enum Interest: Sendable {
    case read
    case write
}

/// The descriptors of one socket object (one, or several for a listener on two address families), their
/// registration in an ``EventLoop``'s epoll set, and the tasks waiting for them to become ready.
///
/// The guarantees of the bridge live here:
/// - every waiter's continuation is resumed exactly once: by readiness, close, its deadline or its
///   cancellation, whichever first removes it from `waiters` under the lock;
/// - no continuation is resumed while the lock is held: each path takes its continuations out under the lock
///   (into `Wakeups`) and resumes them after. Resuming takes the waiting task's status lock, which
///   `Task.cancel()` holds while it runs the cancellation handler of ``wait(for:deadline:)``, and that handler
///   takes this lock: resuming under it deadlocks the loop (the wake-up/cancellation stress test proves it);
/// - ``close()`` wakes every waiter (they throw "closed" promptly), removes the descriptors from the epoll
///   set *before* closing them, so a number the kernel hands out again is never watched by mistake, and
///   releases the epoll set's reference on the loop's queue, behind any event batch that may still name it;
/// - a system call made off the socket's actor runs inside ``withOpenDescriptor(_:)``, and ``close()`` defers
///   `close(2)` until the last such call is done, so no such call ever reaches a number closed and reused.
final class SocketHandle: Sendable {
    let loop: EventLoop
    /// The descriptors; valid until ``close()``.
    let descriptors: [Int32]

    private struct Waiter {
        let id: UInt64
        let interest: Interest
        let deadline: DispatchTime?
        let continuation: UnsafeContinuation<WaitOutcome, Never>
    }

    private struct State {
        /// An edge arrived while nobody waited: the next wait returns at once to retry the system call.
        var readable = false
        var writable = false
        var closed = false
        var nextID: UInt64 = 0
        var waiters: [Waiter] = []
        /// Fires at the earliest deadline of a waiter; made on first use.
        var timer: (any DispatchSourceTimer)?
        var timerDeadline: DispatchTime?
        /// With ``armedOnDemand``: the directions the epoll registration was last armed for, until an event
        /// (which disarms it: `EPOLLONESHOT`) is handled.
        var armedForRead = false
        var armedForWrite = false
    }

    /// The registration watches a direction only while a task waits for it (`EPOLLONESHOT`, armed by each wait
    /// with `EPOLL_CTL_MOD`, which also reports a readiness that is already there). For a socket whose system
    /// calls run off its loop (``UDPSocket``): a registration that always watches both directions wakes the
    /// loop's thread for every datagram that arrives and every one sent (a UDP socket's `sk_write_space` fires
    /// as each sent datagram is freed), though nobody waits.
    let armedOnDemand: Bool

    private let state = Lock(State())

    /// Registers `descriptors` with `loop` (edge-triggered, read and write).
    /// - Throws: the errno of `epoll_ctl`; the descriptors are then closed.
    init(descriptors: [Int32], loop: EventLoop = .next(), armedOnDemand: Bool = false) throws(Errno) {
        self.loop = loop
        self.descriptors = descriptors
        self.armedOnDemand = armedOnDemand
        let events =
            armedOnDemand
            ? Self.oneShot
            : CSOCKETS_EPOLLIN | CSOCKETS_EPOLLOUT | CSOCKETS_EPOLLRDHUP | CSOCKETS_EPOLLET
        for (index, descriptor) in descriptors.enumerated() {
            let token = UInt64(UInt(bitPattern: Unmanaged.passRetained(self).toOpaque()))
            if csockets_epoll_add(loop.epollDescriptor, descriptor, events, token) != 0 {
                let errno = Errno.current
                // This descriptor was never registered: its reference goes at once. Those registered before
                // it may be named by an event batch in progress: their references go behind it, on the queue.
                Unmanaged.passUnretained(self).release()
                for registered in descriptors[..<index] {
                    _ = csockets_epoll_delete(loop.epollDescriptor, registered)
                }
                descriptors.forEach(SystemSocket.close)
                state.withLock { $0.closed = true }
                let pointer = Unmanaged.passUnretained(self)
                loop.queue.async {
                    for _ in 0..<index { pointer.release() }
                }
                throw errno
            }
        }
    }

    convenience init(descriptor: Int32, loop: EventLoop = .next(), armedOnDemand: Bool = false) throws(Errno) {
        try self.init(descriptors: [descriptor], loop: loop, armedOnDemand: armedOnDemand)
    }

    /// The first (often the only) descriptor.
    var descriptor: Int32 { descriptors[0] }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Called on the loop's queue with the epoll flags of an event: wakes the waiters of each direction that
    /// became ready; an edge that finds nobody waiting is kept for the next wait.
    func signal(_ flags: UInt32) {
        let readable = flags & (CSOCKETS_EPOLLIN | CSOCKETS_EPOLLERR | CSOCKETS_EPOLLHUP | CSOCKETS_EPOLLRDHUP) != 0
        let writable = flags & (CSOCKETS_EPOLLOUT | CSOCKETS_EPOLLERR | CSOCKETS_EPOLLHUP) != 0
        let woken = state.withLock { state -> Wakeups in
            var woken = Wakeups()
            var wokeReader = false
            var wokeWriter = false
            state.waiters.removeAll { waiter in
                guard waiter.interest == .read ? readable : writable else { return false }
                woken.append(waiter.continuation)
                if waiter.interest == .read { wokeReader = true } else { wokeWriter = true }
                return true
            }
            // A woken waiter retries its system call; one that then finds nothing waits for the next edge.
            if readable, !wokeReader { state.readable = true }
            if writable, !wokeWriter { state.writable = true }
            if armedOnDemand {
                // The event disarmed the registration: arm it again for the waiters left (the other direction).
                state.armedForRead = false
                state.armedForWrite = false
                arm(&state)
            }
            return woken
        }
        woken.resume(returning: .ready)
    }

    private let waiterIDs = Atomic<UInt64>(0)

    /// Whether ``close()`` has begun, and how many callers are inside ``withOpenDescriptor(_:)``: see there.
    fileprivate let uses = Atomic<Int>(0)

    /// Waits until the socket may be ready for `interest`, or until it is closed, the deadline passes, or the
    /// task is cancelled. Does not throw: the caller turns the outcome into its own error.
    ///
    /// `nonisolated(nonsending)`: it runs on its caller's actor (a connection's, on the loop), with no switch to
    /// the generic executor and back around every wait, each of which looked up the task's executor preference
    /// under its status lock. With the writer lock's `acquire` so too: rr64 through the README's server went from
    /// 80,900 to 102,600 round trips/s and from 12.0 to 9.6 µs of server CPU each (5 rounds, one `compare`).
    nonisolated(nonsending) func wait(for interest: Interest, deadline: DispatchTime? = nil) async -> WaitOutcome {
        let id = waiterIDs.add(1, ordering: .relaxed).newValue
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<WaitOutcome, Never>) in
                let immediate = state.withLock { state -> WaitOutcome? in
                    if state.closed { return .closed }
                    if interest == .read, state.readable {
                        state.readable = false
                        return .ready
                    }
                    if interest == .write, state.writable {
                        state.writable = false
                        return .ready
                    }
                    // Cancelled before the waiter was added: onCancel found nothing to remove.
                    if Task.isCancelled { return .cancelled }
                    if let deadline, deadline <= .now() { return .timedOut }
                    state.waiters.append(
                        Waiter(
                            id: id, interest: interest, deadline: deadline,
                            continuation: continuation))
                    if let deadline { armTimer(&state, for: deadline) }
                    if armedOnDemand { arm(&state) }
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            // Takes the lock while the runtime holds this task's status lock: safe only because no holder of
            // `state`'s lock ever waits on the runtime (nothing is resumed under it).
            let cancelled = state.withLock { state in
                state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0).continuation }
            }
            cancelled?.resume(returning: .cancelled)
        }
    }

    /// Wakes every waiter for `interest` with ``WaitOutcome/closed``: a half of the socket was closed while
    /// another task waited on it.
    func interrupt(_ interest: Interest) {
        let woken = state.withLock { state -> Wakeups in
            var woken = Wakeups()
            state.waiters.removeAll { waiter in
                guard waiter.interest == interest else { return false }
                woken.append(waiter.continuation)
                return true
            }
            return woken
        }
        woken.resume(returning: .closed)
    }

    private static let oneShot = CSOCKETS_EPOLLET | UInt32(EPOLLONESHOT.rawValue)

    /// With ``armedOnDemand``: arms the registration for the directions the waiters want, unless it is armed
    /// for them already. Called with the lock held, while not closed (so the descriptors are registered and
    /// open). `EPOLL_CTL_MOD` polls the socket, so a readiness that came before it is reported at once.
    private func arm(_ state: inout State) {
        guard !state.closed else { return }
        var read = false
        var write = false
        for waiter in state.waiters {
            if waiter.interest == .read { read = true } else { write = true }
        }
        guard (read && !state.armedForRead) || (write && !state.armedForWrite) else { return }
        state.armedForRead = state.armedForRead || read
        state.armedForWrite = state.armedForWrite || write
        var events = Self.oneShot
        if state.armedForRead { events |= CSOCKETS_EPOLLIN | CSOCKETS_EPOLLRDHUP }
        if state.armedForWrite { events |= CSOCKETS_EPOLLOUT }
        let token = UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque()))
        for descriptor in descriptors {
            _ = csockets_epoll_modify(loop.epollDescriptor, descriptor, events, token)
        }
    }

    /// The queue every handle's deadline timer fires on: one of its own, not the loop's, so that a loop that
    /// keeps its worker (its spell) or runs a long batch of jobs does not hold a deadline back. Its handler only
    /// takes the handle's lock and resumes the expired waiters (their tasks then run on their own executors).
    /// Measured with the spell on, on a busy loop (`deadlinesOnBusyLoop`): read, write and accept deadlines
    /// fired late by a median of 0.9–2.0 ms on the loop's queue, and failed the 2 ms bound in one run of four.
    private static let timerQueue = DispatchQueue(label: "Sockets.Timers")

    /// Arms (or re-arms) the timer for the earliest deadline. Called with the lock held.
    private func armTimer(_ state: inout State, for deadline: DispatchTime) {
        if let current = state.timerDeadline, current <= deadline { return }
        state.timerDeadline = deadline
        if state.timer == nil {
            let timer = DispatchSource.makeTimerSource(queue: Self.timerQueue)
            timer.setEventHandler { [weak self] in self?.expireWaiters() }
            timer.schedule(deadline: deadline, leeway: .microseconds(250))
            timer.activate()
            state.timer = timer
        } else {
            state.timer?.schedule(deadline: deadline, leeway: .microseconds(250))
        }
    }

    private func expireWaiters() {
        let expired = state.withLock { state -> Wakeups in
            let now = DispatchTime.now()
            state.timerDeadline = nil
            var expired = Wakeups()
            var earliest: DispatchTime?
            state.waiters.removeAll { waiter in
                guard let deadline = waiter.deadline else { return false }
                if deadline <= now {
                    expired.append(waiter.continuation)
                    return true
                }
                earliest = min(earliest ?? deadline, deadline)
                return false
            }
            if let earliest { armTimer(&state, for: earliest) }
            return expired
        }
        expired.resume(returning: .timedOut)
    }

    /// Closes the descriptors: wakes every waiter with ``WaitOutcome/closed``, removes the descriptors from
    /// the epoll set, closes them, and releases the set's references on the loop's queue.
    /// Returns `false` when already closed.
    @discardableResult
    func close() -> Bool {
        let woken = state.withLock { state -> Wakeups? in
            guard !state.closed else { return nil }
            state.closed = true
            var woken = Wakeups()
            for waiter in state.waiters { woken.append(waiter.continuation) }
            state.waiters.removeAll()
            state.timer?.cancel()
            state.timer = nil
            return woken
        }
        guard let woken else { return false }
        woken.resume(returning: .closed)
        for descriptor in descriptors {
            _ = csockets_epoll_delete(loop.epollDescriptor, descriptor)
        }
        // The descriptors close now, or when the last caller inside `withOpenDescriptor` leaves.
        let before = uses.bitwiseOr(Self.closing, ordering: .acquiringAndReleasing).oldValue
        if before >> Self.userShift == 0 { closeDescriptorsOnce() }
        let count = descriptors.count
        let pointer = Unmanaged.passUnretained(self)
        loop.queue.async {
            for _ in 0..<count { pointer.release() }
        }
        return true
    }
}

extension SocketHandle {
    /// `uses`: bit 0 set once ``close()`` has begun, bit 1 once the descriptors are closed, and above them the
    /// number of callers inside ``withOpenDescriptor(_:)``.
    fileprivate static let closing = 1
    fileprivate static let descriptorsClosed = 2
    fileprivate static let userShift = 2
    fileprivate static let user = 1 << userShift

    /// Runs `body` with the first descriptor, kept open until `body` returns: a ``close()`` meanwhile wakes the
    /// waiters and leaves the epoll set at once, but defers `close(2)` until the last such caller leaves, so
    /// the number is never handed out again while `body` may still use it. Returns `nil` (without running
    /// `body`) once ``close()`` has begun. For system calls made off the socket's actor; `body` must not
    /// wait (it runs one non-blocking call or a few).
    func withOpenDescriptor<Result, Failure: Error>(
        _ body: (Int32) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        let before = uses.add(Self.user, ordering: .acquiringAndReleasing).oldValue
        defer { leave() }
        guard before & Self.closing == 0 else { return nil }
        return try body(descriptor)
    }

    private func leave() {
        let after = uses.subtract(Self.user, ordering: .acquiringAndReleasing).newValue
        if after == Self.closing { closeDescriptorsOnce() }
    }

    /// Closes the descriptors, once: whoever sees `closing` with no user left first (``close()`` or the
    /// last caller to leave ``withOpenDescriptor(_:)``) does it.
    fileprivate func closeDescriptorsOnce() {
        let (exchanged, _) = uses.compareExchange(
            expected: Self.closing, desired: Self.closing | Self.descriptorsClosed,
            ordering: .acquiringAndReleasing)
        guard exchanged else { return }
        descriptors.forEach(SystemSocket.close)
    }
}

/// Continuations taken out of a handle's waiters under its lock, to be resumed once the lock is released.
/// Holds one inline (the usual case: one waiter per direction), so a wake-up allocates nothing.
private struct Wakeups {
    private var first: UnsafeContinuation<WaitOutcome, Never>?
    private var others: [UnsafeContinuation<WaitOutcome, Never>] = []

    mutating func append(_ continuation: UnsafeContinuation<WaitOutcome, Never>) {
        if first == nil { first = continuation } else { others.append(continuation) }
    }

    /// Resumes every continuation with `outcome`. Never call it with a lock held.
    func resume(returning outcome: WaitOutcome) {
        first?.resume(returning: outcome)
        for continuation in others { continuation.resume(returning: outcome) }
    }
}
#endif
