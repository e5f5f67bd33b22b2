#if canImport(Glibc)
import Glibc
#endif

/// The process's descriptor limit, and the reserve that accepting leaves free below it.
///
/// Descriptors are numbered from the lowest free one, and `EMFILE` means no number below `RLIMIT_NOFILE` is
/// free. Running all the way to the limit is not safe for a Dispatch program on Linux: libdispatch's worker
/// monitor opens `/proc` files now and then and crashes the process when it cannot. So the accepting loops of
/// this library (``TCPListener/connections``, ``serve(_:maxConnections:gracePeriod:handler:)``) stop short of
/// the last ``reserve`` numbers.
public enum DescriptorLimit {
    /// How many descriptor numbers below the limit accepting leaves free.
    public static let reserve = 16

    /// The soft `RLIMIT_NOFILE`.
    public static var softLimit: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return Int.max }
        return limit.rlim_cur > rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// Whether `descriptor` lies in the reserve: every number below it is taken.
    static func isInReserve(_ descriptor: Int32) -> Bool {
        Int(descriptor) >= softLimit - reserve
    }

    /// Whether the lowest free descriptor number lies below the reserve (opens and closes `/dev/null` to see).
    static var hasHeadroom: Bool {
        let probe = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard probe >= 0 else { return false }
        defer { SystemSocket.close(probe) }
        return !isInReserve(probe)
    }
}
