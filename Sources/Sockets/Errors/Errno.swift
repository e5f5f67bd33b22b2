#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A system error number, as a value to match on.
///
/// Modelled on swift-system's `Errno`: compare with the named constants, print it for a clear text.
///
/// ```swift
/// do {
///     _ = try await TCPConnection.connect(host: "127.0.0.1", port: 9)
/// } catch let error as NetworkError where error.errno == .connectionRefused {
///     print("nobody listens there")
/// }
/// ```
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw `errno` value.
    public let rawValue: Int32

    /// Wraps a raw `errno` value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The `errno` of the calling thread right now.
    static var current: Errno { Errno(rawValue: errno) }

    /// `ECONNREFUSED`: nobody listens at the address.
    public static let connectionRefused = Errno(rawValue: ECONNREFUSED)
    /// `ECONNRESET`: the peer reset the connection.
    public static let connectionReset = Errno(rawValue: ECONNRESET)
    /// `ECONNABORTED`: a connection was aborted before it could be accepted.
    public static let connectionAborted = Errno(rawValue: ECONNABORTED)
    /// `EPIPE`: writing to a connection whose peer has gone.
    public static let brokenPipe = Errno(rawValue: EPIPE)
    /// `EADDRINUSE`: the address or port is taken.
    public static let addressInUse = Errno(rawValue: EADDRINUSE)
    /// `EADDRNOTAVAIL`: the address is not one of this machine's.
    public static let addressNotAvailable = Errno(rawValue: EADDRNOTAVAIL)
    /// `EAFNOSUPPORT`: the address family is not supported.
    public static let addressFamilyNotSupported = Errno(rawValue: EAFNOSUPPORT)
    /// `EAGAIN` / `EWOULDBLOCK`: the call would block.
    public static let wouldBlock = Errno(rawValue: EAGAIN)
    /// `EINPROGRESS`: a non-blocking connect has started.
    public static let inProgress = Errno(rawValue: EINPROGRESS)
    /// `EINTR`: interrupted by a signal (the library retries it).
    public static let interrupted = Errno(rawValue: EINTR)
    /// `EINVAL`: an invalid argument.
    public static let invalidArgument = Errno(rawValue: EINVAL)
    /// `EBADF`: not an open descriptor.
    public static let badFileDescriptor = Errno(rawValue: EBADF)
    /// `EMFILE`: this process has no descriptors left.
    public static let tooManyOpenFiles = Errno(rawValue: EMFILE)
    /// `ENFILE`: the system has no descriptors left.
    public static let tooManyOpenFilesInSystem = Errno(rawValue: ENFILE)
    /// `ENOBUFS`: no buffer space.
    public static let noBufferSpace = Errno(rawValue: ENOBUFS)
    /// `ENOMEM`: out of memory.
    public static let noMemory = Errno(rawValue: ENOMEM)
    /// `ETIMEDOUT`: the system timed the connection out.
    public static let timedOut = Errno(rawValue: ETIMEDOUT)
    /// `ENETUNREACH`: no route to the network.
    public static let networkUnreachable = Errno(rawValue: ENETUNREACH)
    /// `EHOSTUNREACH`: no route to the host.
    public static let hostUnreachable = Errno(rawValue: EHOSTUNREACH)
    /// `EACCES`: permission denied (a privileged port, for example).
    public static let permissionDenied = Errno(rawValue: EACCES)
    /// `EISCONN`: the socket is already connected.
    public static let alreadyConnected = Errno(rawValue: EISCONN)
    /// `ENOTCONN`: the socket is not connected.
    public static let notConnected = Errno(rawValue: ENOTCONN)
    /// `EMSGSIZE`: a datagram is too long.
    public static let messageTooLong = Errno(rawValue: EMSGSIZE)
    /// `ENOTSOCK`: the descriptor is not a socket.
    public static let notASocket = Errno(rawValue: ENOTSOCK)
    /// `EPROTONOSUPPORT`: the protocol is not supported.
    public static let protocolNotSupported = Errno(rawValue: EPROTONOSUPPORT)

    private static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EIO: "EIO", EBADF: "EBADF", EAGAIN: "EAGAIN",
        ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST",
        EINVAL: "EINVAL", ENFILE: "ENFILE", EMFILE: "EMFILE", ENOSPC: "ENOSPC", EPIPE: "EPIPE",
        ENOTSOCK: "ENOTSOCK", EDESTADDRREQ: "EDESTADDRREQ", EMSGSIZE: "EMSGSIZE", EPROTOTYPE: "EPROTOTYPE",
        ENOPROTOOPT: "ENOPROTOOPT", EPROTONOSUPPORT: "EPROTONOSUPPORT", EOPNOTSUPP: "EOPNOTSUPP",
        EAFNOSUPPORT: "EAFNOSUPPORT", EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL",
        ENETDOWN: "ENETDOWN", ENETUNREACH: "ENETUNREACH", ENETRESET: "ENETRESET", ECONNABORTED: "ECONNABORTED",
        ECONNRESET: "ECONNRESET", ENOBUFS: "ENOBUFS", EISCONN: "EISCONN", ENOTCONN: "ENOTCONN",
        ETIMEDOUT: "ETIMEDOUT", ECONNREFUSED: "ECONNREFUSED", EHOSTDOWN: "EHOSTDOWN",
        EHOSTUNREACH: "EHOSTUNREACH", EALREADY: "EALREADY", EINPROGRESS: "EINPROGRESS",
    ]

    /// The symbolic name, such as `ECONNREFUSED`, or `errno N` for one without a name here.
    public var name: String { Self.names[rawValue] ?? "errno \(rawValue)" }

    /// The system's text and the symbolic name, such as `Connection refused (ECONNREFUSED)`.
    public var description: String { "\(String(cString: strerror(rawValue))) (\(name))" }
}
