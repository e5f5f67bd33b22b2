#if SOCKETS_PLATFORM_SUPPORTED
/// How a connection's output is buffered before it is sent.
///
/// Racket's ports are block-buffered by default (`file-stream-buffer-mode`); CHICKEN's `tcp-buffer-size` sets
/// the size (CHICKEN's own default is no buffering). Here **the default is `.block(4096)`**, as in Racket:
/// nothing reaches the peer before the buffer fills, ``TCPConnection/flush()`` is called, the output is
/// closed, or **a read on the same connection has to wait**: that read first sends what is buffered (as far as
/// the kernel takes it at once), so a request written without `flush()` and then answered never leaves both
/// sides waiting. Racket would hang there; Swift users expect it not to, as `NIOAsyncChannel` and FlyingSocks
/// send on each write. Writes between two reads still leave in one system call. A read that finds its bytes
/// already there sends nothing, and neither does a `sync` on a read event (flush before it).
public enum BufferMode: Sendable, Hashable {
    /// Every write is sent at once.
    case none
    /// Output is sent when a write contains a newline (or the buffer reaches 4096 bytes).
    case line
    /// Output is sent when this many bytes have gathered.
    case block(Int)

    /// The mode new connections get, for the current task tree (CHICKEN: `tcp-buffer-size`, read when a
    /// connection is made).
    @TaskLocal public static var current: BufferMode = .block(4096)

    /// Runs `operation` with `mode` as the mode of connections made in it and in every task it starts.
    /// `operation` runs in the caller's isolation.
    public static func withValue<T>(
        _ mode: BufferMode, isolation: isolated (any Actor)? = #isolation,
        operation: () async throws -> T
    ) async rethrows -> T {
        try await $current.withValue(mode, operation: operation, isolation: isolation)
    }

    /// The same mode with a block size of at least one byte.
    var normalized: BufferMode {
        if case .block(let size) = self, size < 1 { return .block(1) }
        return self
    }

    /// How many bytes gather before they are sent.
    var threshold: Int {
        switch self {
        case .none: return 0
        case .line: return 4096
        case .block(let size): return size
        }
    }
}
#endif
