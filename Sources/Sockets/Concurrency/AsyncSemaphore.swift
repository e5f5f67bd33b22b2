#if SOCKETS_PLATFORM_SUPPORTED
import Synchronization

/// A first-come, first-served counting semaphore for tasks: at most `limit` slots taken; ``acquire()`` waits for a
/// free one, and a task cancelled while it waits leaves the queue and throws `CancellationError`, having taken
/// nothing; ``waitUntilIdle()`` waits for all to be free. With a limit of 1 it is a lock (a connection's
/// writers); ``serve(_:maxConnections:gracePeriod:handler:)`` counts connections with it.
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

    func acquire() async throws {
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
                state.withLock { state in
                    if state.taken < limit {
                        state.taken += 1
                        continuation.resume()
                    } else if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        state.acquirers.append((id, continuation))
                    }
                }
            }
        } onCancel: {
            state.withLock { state in
                if let index = state.acquirers.firstIndex(where: { $0.id == id }) {
                    state.acquirers.remove(at: index).continuation.resume(throwing: CancellationError())
                }
            }
        }
    }

    /// Frees a slot: hands it to the first waiting acquirer, or wakes the idle waiters when none is taken.
    func release() {
        state.withLock { state in
            if !state.acquirers.isEmpty {
                state.acquirers.removeFirst().continuation.resume()
                return
            }
            state.taken -= 1
            if state.taken == 0 {
                for waiter in state.idleWaiters { waiter.continuation.resume() }
                state.idleWaiters.removeAll()
            }
        }
    }

    /// Returns once no slot is taken, or when the task is cancelled.
    func waitUntilIdle() async {
        let id = state.withLock { state -> UInt64 in
            state.nextID &+= 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                state.withLock { state in
                    if state.taken == 0 || Task.isCancelled {
                        continuation.resume()
                    } else {
                        state.idleWaiters.append((id, continuation))
                    }
                }
            }
        } onCancel: {
            state.withLock { state in
                if let index = state.idleWaiters.firstIndex(where: { $0.id == id }) {
                    state.idleWaiters.remove(at: index).continuation.resume()
                }
            }
        }
    }
}
#endif
