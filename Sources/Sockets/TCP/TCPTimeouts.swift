#if SOCKETS_PLATFORM_SUPPORTED
import Dispatch

/// The four timeouts of CHICKEN's `tcp` unit: read, write, connect and accept.
///
/// The defaults apply to a whole task tree, as CHICKEN's are parameters: set them with
/// ``withValue(_:isolation:operation:)`` (or `TCPTimeouts.$current.withValue`). A connection captures the read and write
/// timeouts current when it is made (by `connect` or `accept`), and can change its own with
/// ``TCPConnection/setTimeouts(read:write:)``. `connect` and `accept` use the values current at their call.
///
/// `nil` means no timeout. **Default: no timeouts at all**, as in Racket (CHICKEN's default is 60 s for
/// reads and writes: that is ``chicken``). A timeout throws a ``NetworkError`` whose code is
/// ``NetworkError/Code/timedOut``; the connection stays usable.
///
/// ```swift
/// try await TCPTimeouts.withValue(TCPTimeouts(read: .seconds(5))) {
///     let connection = try await TCPConnection.connect(host: "127.0.0.1", port: 8080)
///     _ = try await connection.readLine()   // throws after 5 s without a line
/// }
/// ```
public struct TCPTimeouts: Sendable, Hashable {
    /// The longest wait for input. Racket: none. CHICKEN: `tcp-read-timeout`.
    public var read: Duration?
    /// The longest wait for the peer to take output. CHICKEN: `tcp-write-timeout`.
    public var write: Duration?
    /// The longest wait for a connection to be established: one deadline for the whole connect, name resolution
    /// and every address tried included. CHICKEN: `tcp-connect-timeout`.
    public var connect: Duration?
    /// The longest wait in `accept`. CHICKEN: `tcp-accept-timeout`.
    public var accept: Duration?

    /// Makes a set of timeouts; each `nil` (the default) means none.
    public init(read: Duration? = nil, write: Duration? = nil, connect: Duration? = nil, accept: Duration? = nil) {
        self.read = read
        self.write = write
        self.connect = connect
        self.accept = accept
    }

    /// No timeouts: Racket's behaviour, and the default.
    public static let none = TCPTimeouts()

    /// CHICKEN's defaults: 60 s for reads and writes, none for connect and accept.
    public static let chicken = TCPTimeouts(read: .seconds(60), write: .seconds(60))

    /// The timeouts of the current task tree.
    @TaskLocal public static var current = TCPTimeouts.none

    /// Runs `operation` with `timeouts` as the current ones, for it and every task it starts. `operation` runs
    /// in the caller's isolation (an actor's state can be used in it, as in `withTaskGroup`).
    public static func withValue<T>(
        _ timeouts: TCPTimeouts, isolation: isolated (any Actor)? = #isolation,
        operation: () async throws -> T
    ) async rethrows -> T {
        try await $current.withValue(timeouts, operation: operation, isolation: isolation)
    }
}

extension Duration {
    /// The dispatch time this long from now.
    var deadlineFromNow: DispatchTime {
        let (seconds, attoseconds) = components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard seconds >= 0, !nanoseconds.overflow else { return seconds < 0 ? .now() : .distantFuture }
        let total = nanoseconds.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000)
        return total.overflow ? .distantFuture : .now() + .nanoseconds(Int(total.partialValue))
    }

    /// `0.25 s`, `60 s`: how a timeout reads in an error.
    var shortDescription: String {
        let (seconds, attoseconds) = components
        let milliseconds = attoseconds / 1_000_000_000_000_000
        if milliseconds == 0 { return "\(seconds) s" }
        var fraction = String(milliseconds + 1000).dropFirst()
        while fraction.hasSuffix("0") { fraction = fraction.dropLast() }
        return "\(seconds).\(fraction) s"
    }
}
#endif
