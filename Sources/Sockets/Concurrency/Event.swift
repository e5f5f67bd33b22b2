#if SOCKETS_PLATFORM_SUPPORTED
/// Something ``sync(_:)-(Event<T>...)`` can wait on, together with others, committing exactly one. Racket: a
/// synchronizable event (`tcp-accept-evt`, a listener, `udp-receive!-evt`, an alarm, …).
///
/// An event has two parts: an *attempt* that commits without waiting (accepts the connection, receives the
/// datagram, sends the bytes) and returns its value, or returns `nil` and does nothing when the event is not
/// ready; and a *wait* that returns once the event may have become ready. `sync` tries the attempts, one at a
/// time, and returns the first value; only when none is ready does it wait on all of them. So exactly one event
/// commits, and the others have no effect.
///
/// ```swift
/// let chosen = try await sync(
///     listener.acceptEvent().map { Input.client($0) },
///     socket.receiveEvent().map { Input.datagram($0) },
///     Event.timeout(after: .seconds(5)).map { Input.idle }
/// )
/// ```
public struct Event<Value: Sendable>: Sendable {
    let attempt: @Sendable () async throws -> Value?
    let wait: @Sendable () async -> Void

    /// Makes an event from its two parts.
    ///
    /// - Parameters:
    ///   - attempt: commits without waiting and returns the value, or returns `nil` having done nothing.
    ///   - wait: returns once the event may be ready (returning early is harmless: `sync` tries again); must
    ///     return promptly when the task is cancelled.
    public init(attempt: @escaping @Sendable () async throws -> Value?, wait: @escaping @Sendable () async -> Void) {
        self.attempt = attempt
        self.wait = wait
    }

    /// The same event, its value passed through `transform` when it is chosen. Racket: `wrap-evt` /
    /// `handle-evt`.
    public func map<Result: Sendable>(_ transform: @escaping @Sendable (Value) async throws -> Result) -> Event<Result>
    {
        let attempt = self.attempt
        return Event<Result>(attempt: { try await attempt().asyncMap(transform) }, wait: wait)
    }

    /// An event that is always ready with `value`. Racket: `always-evt` (with a value).
    public static func always(_ value: Value) -> Event {
        Event(attempt: { value }, wait: {})
    }

    /// An event that is never ready. Racket: `never-evt`.
    public static var never: Event {
        Event(
            attempt: { nil },
            wait: {
                try? await Task.sleep(for: .seconds(86_400 * 365))
            })
    }
}

extension Event where Value == Void {
    /// An event ready once `duration` has passed from now (from when the event is made). Racket: `alarm-evt`.
    public static func timeout(after duration: Duration) -> Event<Void> {
        deadline(ContinuousClock.now + duration)
    }

    /// An event ready at `instant`. Racket: `alarm-evt`.
    public static func deadline(_ instant: ContinuousClock.Instant) -> Event<Void> {
        Event(
            attempt: { ContinuousClock.now >= instant ? () : nil },
            wait: { try? await Task.sleep(until: instant, clock: .continuous) })
    }
}

extension Optional where Wrapped: Sendable {
    fileprivate func asyncMap<Result>(_ transform: (Wrapped) async throws -> Result) async rethrows -> Result? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

/// Waits until one of `events` is ready, commits it, and returns its value; the others have no effect (no
/// connection accepted, no datagram consumed, no byte sent). Racket: `sync` (and `sync/enable-break`).
///
/// Fair: each round starts trying at a random event, so one that is always ready does not starve the others.
///
/// **Cancellation**: either one event commits and its value is returned, or `CancellationError` is thrown and
/// none committed. With no events, it waits until the task is cancelled.
/// - Throws: what the chosen event's attempt throws (a closed listener, say), or `CancellationError`.
public func sync<T: Sendable>(_ events: Event<T>...) async throws -> T {
    try await sync(events)
}

/// ``sync(_:)-(Event<T>...)`` over an array of events.
public func sync<T: Sendable>(_ events: [Event<T>]) async throws -> T {
    guard let value = try await synchronize(events, deadline: nil) else { throw CancellationError() }
    return value
}

/// Like ``sync(_:)-(Event<T>...)``, but returns `nil` once `timeout` has passed with no event ready. The events
/// are tried once more at the deadline, so a zero timeout polls. Racket: `sync/timeout`.
public func sync<T: Sendable>(timeout: Duration, _ events: Event<T>...) async throws -> T? {
    try await synchronize(events, deadline: ContinuousClock.now + timeout)
}

/// ``sync(timeout:_:)`` over an array of events.
public func sync<T: Sendable>(timeout: Duration, _ events: [Event<T>]) async throws -> T? {
    try await synchronize(events, deadline: ContinuousClock.now + timeout)
}

private func synchronize<T: Sendable>(_ events: [Event<T>], deadline: ContinuousClock.Instant?) async throws -> T? {
    while true {
        try Task.checkCancellation()
        if !events.isEmpty {
            let start = Int.random(in: 0..<events.count)
            for offset in 0..<events.count {
                if let value = try await events[(start + offset) % events.count].attempt() { return value }
            }
        }
        if let deadline, ContinuousClock.now >= deadline { return nil }
        // Nothing ready: wait until any event may be (or the deadline, or cancellation), then try again.
        await withTaskGroup(of: Void.self) { group in
            for event in events { group.addTask { await event.wait() } }
            if let deadline { group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) } }
            if events.isEmpty, deadline == nil {
                group.addTask { try? await Task.sleep(for: .seconds(86_400 * 365)) }
            }
            _ = await group.next()
            group.cancelAll()
        }
    }
}
#endif
