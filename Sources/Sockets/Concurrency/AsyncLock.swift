import Synchronization

/// A first-come, first-served lock for tasks: ``lock()`` suspends while another task holds it, and a task
/// cancelled while it waits leaves the queue and throws `CancellationError`, having taken nothing.
final class AsyncLock: Sendable {
    private struct State {
        var locked = false
        var nextID: UInt64 = 0
        var waiters: [(id: UInt64, continuation: UnsafeContinuation<Void, any Error>)] = []
    }

    private let state = Lock(State())

    var isLocked: Bool { state.withLock { $0.locked } }

    func lock() async throws {
        let id: UInt64? = state.withLock { state in
            guard state.locked else {
                state.locked = true
                return nil
            }
            state.nextID &+= 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                state.withLock { state in
                    if !state.locked {
                        state.locked = true
                        continuation.resume()
                    } else if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        state.waiters.append((id, continuation))
                    }
                }
            }
        } onCancel: {
            state.withLock { state in
                if let index = state.waiters.firstIndex(where: { $0.id == id }) {
                    state.waiters.remove(at: index).continuation.resume(throwing: CancellationError())
                }
            }
        }
    }

    /// Hands the lock to the first waiter, or frees it.
    func unlock() {
        state.withLock { state in
            if state.waiters.isEmpty {
                state.locked = false
            } else {
                state.waiters.removeFirst().continuation.resume()
            }
        }
    }
}
