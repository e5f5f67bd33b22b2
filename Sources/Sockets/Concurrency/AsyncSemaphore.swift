#if SOCKETS_PLATFORM_SUPPORTED
import Synchronization

/// A first-come, first-served counting semaphore for tasks: at most `limit` slots taken; ``acquire()`` waits for a
/// free one, and a task cancelled while it waits leaves the queue and throws `CancellationError`, having taken
/// nothing; ``waitUntilIdle()`` waits for all to be free. With a limit of 1 it is a lock (a connection's
/// writers); ``serve(_:maxConnections:gracePeriod:onError:handler:)`` counts connections with it.
final class AsyncSemaphore: Sendable {
    private struct State {
        var taken = 0
        var nextID: UInt64 = 0
        var acquirers: [(id: UInt64, continuation: UnsafeContinuation<Void, any Error>)] = []
        var idleWaiters: [(id: UInt64, continuation: UnsafeContinuation<Void, Never>)] = []
    }

    let limit: Int
    private let state = Lock(State())

    init(limit: Int) {
        self.limit = limit
    }

    var taken: Int { state.withLock { $0.taken } }

    /// Runs on its caller's actor (`nonisolated(nonsending)`): no executor switch around every write (see
    /// `SocketHandle.wait`).
    nonisolated(nonsending) func acquire() async throws {
        let id = state.withLock { state -> UInt64? in
            if state.taken < limit {
                state.taken += 1
                return nil
            }
            state.nextID &+= 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                // Decided under the lock, resumed after it (see the type's comment).
                let acquired = state.withLock { state -> Bool? in
                    if state.taken < limit {
                        state.taken += 1
                        return true
                    }
                    if Task.isCancelled { return false }
                    state.acquirers.append((id, continuation))
                    return nil
                }
                switch acquired {
                case true?: continuation.resume()
                case false?: continuation.resume(throwing: CancellationError())
                case nil: break
                }
            }
        } onCancel: {
            let cancelled = state.withLock { state in
                state.acquirers.firstIndex { $0.id == id }.map { state.acquirers.remove(at: $0).continuation }
            }
            cancelled?.resume(throwing: CancellationError())
        }
    }

    /// Frees a slot: hands it to the first waiting acquirer, or wakes the idle waiters when none is taken.
    func release() {
        var acquirer: UnsafeContinuation<Void, any Error>?
        var idleWaiters: [UnsafeContinuation<Void, Never>] = []
        state.withLock { state in
            if !state.acquirers.isEmpty {
                acquirer = state.acquirers.removeFirst().continuation
                return
            }
            state.taken -= 1
            if state.taken == 0 {
                idleWaiters = state.idleWaiters.map(\.continuation)
                state.idleWaiters.removeAll()
            }
        }
        acquirer?.resume()
        for waiter in idleWaiters { waiter.resume() }
    }

    /// Returns once no slot is taken, or when the task is cancelled.
    func waitUntilIdle() async {
        let id = state.withLock { state -> UInt64 in
            state.nextID &+= 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let idle = state.withLock { state -> Bool in
                    if state.taken == 0 || Task.isCancelled { return true }
                    state.idleWaiters.append((id, continuation))
                    return false
                }
                if idle { continuation.resume() }
            }
        } onCancel: {
            let cancelled = state.withLock { state in
                state.idleWaiters.firstIndex { $0.id == id }.map { state.idleWaiters.remove(at: $0).continuation }
            }
            cancelled?.resume()
        }
    }
}
#endif
