#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif

/// The process's descriptor limit, and the reserve that accepting leaves free below it.
///
/// Descriptors are numbered from the lowest free one, and `EMFILE` means no number below `RLIMIT_NOFILE` is
/// free. Running all the way to the limit is not safe for a Dispatch program on Linux: libdispatch's worker
/// monitor opens `/proc` files now and then and crashes the process when it cannot. So the accepting loops of
/// this library (``TCPListener/connections``, ``serve(_:maxConnections:gracePeriod:onError:handler:)``) watch for
/// descriptors numbered within ``reserve`` of the limit; once one is accepted, they accept again only while at
/// least ``minimumFree`` more descriptors can be opened, and otherwise back off.
public enum DescriptorLimit {
    /// How close to the limit an accepted descriptor's number must be for accepting to look before it leaps.
    public static let reserve = 16

    /// How many descriptors must still be free (besides the one an accept takes) for accepting to go on near
    /// the limit.
    public static let minimumFree = 4

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

    /// Whether ``minimumFree`` descriptors can be opened now (opens and closes `/dev/null` to see). Counting
    /// what can really be opened, not where the lowest free number lies, so that descriptors the process was
    /// started with, or holds for other work, never stop accepting for good.
    static var hasHeadroom: Bool {
        var probes: [Int32] = []
        defer { probes.forEach(SystemSocket.close) }
        for _ in 0..<minimumFree {
            let probe = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard probe >= 0 else { return false }
            probes.append(probe)
        }
        return true
    }
}
#endif
