#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif

/// State guarded by a `pthread_mutex_t`, with the shape of `Synchronization.Mutex` (`withLock { state in … }`).
///
/// Used instead of `Mutex` so that the thread sanitizer can check the library: it intercepts pthread mutexes,
/// but cannot see `Mutex`'s ordering (the Synchronization module is not instrumented) and would report every
/// access under it as a race. Uncontended, both cost about the same.
final class Lock<State>: @unchecked Sendable {
    // @unchecked Sendable is safe: `state` is read and written only inside `withLock`, while `mutex` is held,
    // and `mutex` is initialised in `init` and destroyed in `deinit`, when no other reference exists.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
#endif
