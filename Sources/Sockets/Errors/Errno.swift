#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A system error number, as a value to match on.
///
/// Modelled on swift-system's `Errno`, with its names (``connectionAbort``, ``nowInProgress``,
/// ``noRouteToHost``, ...): compare with the named constants, match a thrown error against one, print
/// it for a clear text.
///
/// ```swift
/// do {
///     _ = try await TCPConnection.connect(host: "127.0.0.1", port: 9)
/// } catch Errno.connectionRefused {
///     print("nobody listens there")
/// } catch let error as NetworkError where error.errno == .noRouteToHost {
///     print("no route: \(error)")
/// }
/// ```
///
/// A thrown ``NetworkError`` matches the ``Errno`` of its ``NetworkError/Code/system(_:)`` code.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw `errno` value.
    public let rawValue: Int32

    /// Wraps a raw `errno` value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The `errno` of the calling thread right now.
    static var current: Errno { Errno(rawValue: errno) }

    /// Connection refused.
    ///
    /// No connection could be made because nobody listens at the address:
    /// the peer's host answered the connection request with a reset.
    ///
    /// The corresponding C error is `ECONNREFUSED`.
    public static let connectionRefused = Errno(rawValue: ECONNREFUSED)

    /// Connection reset by peer.
    ///
    /// The peer closed the connection abruptly (a reset), for example because its process died
    /// or it closed the socket with unread input.
    ///
    /// The corresponding C error is `ECONNRESET`.
    public static let connectionReset = Errno(rawValue: ECONNRESET)

    /// Software caused a connection abort.
    ///
    /// A connection was aborted on this host, for example a client that gave up before its
    /// connection could be accepted.
    ///
    /// The corresponding C error is `ECONNABORTED`.
    public static let connectionAbort = Errno(rawValue: ECONNABORTED)

    /// Broken pipe.
    ///
    /// A write to a connection whose peer has gone. The library sends with `MSG_NOSIGNAL`, so the
    /// process gets this error instead of `SIGPIPE`.
    ///
    /// The corresponding C error is `EPIPE`.
    public static let brokenPipe = Errno(rawValue: EPIPE)

    /// Address already in use.
    ///
    /// Another socket is bound to the address and port.
    ///
    /// The corresponding C error is `EADDRINUSE`.
    public static let addressInUse = Errno(rawValue: EADDRINUSE)

    /// Can't assign requested address.
    ///
    /// The address is not one of this machine's.
    ///
    /// The corresponding C error is `EADDRNOTAVAIL`.
    public static let addressNotAvailable = Errno(rawValue: EADDRNOTAVAIL)

    /// Address family not supported by protocol family.
    ///
    /// The socket's family cannot use an address of this family.
    ///
    /// The corresponding C error is `EAFNOSUPPORT`.
    public static let addressFamilyNotSupported = Errno(rawValue: EAFNOSUPPORT)

    /// Operation would block.
    ///
    /// The non-blocking call would have to wait. On Linux this is the same number as `EAGAIN`.
    /// The library waits for readiness and retries; it never throws this to you.
    ///
    /// The corresponding C error is `EWOULDBLOCK`.
    public static let wouldBlock = Errno(rawValue: EWOULDBLOCK)

    /// Operation now in progress.
    ///
    /// A non-blocking connect has started and finishes later.
    ///
    /// The corresponding C error is `EINPROGRESS`.
    public static let nowInProgress = Errno(rawValue: EINPROGRESS)

    /// Interrupted function call.
    ///
    /// A signal arrived during the call. The library retries the call.
    ///
    /// The corresponding C error is `EINTR`.
    public static let interrupted = Errno(rawValue: EINTR)

    /// Invalid argument.
    ///
    /// An argument the system call was given is not valid for it.
    ///
    /// The corresponding C error is `EINVAL`.
    public static let invalidArgument = Errno(rawValue: EINVAL)

    /// Bad file descriptor.
    ///
    /// The number is not an open descriptor.
    ///
    /// The corresponding C error is `EBADF`.
    public static let badFileDescriptor = Errno(rawValue: EBADF)

    /// Too many open files.
    ///
    /// This process has used up its descriptors (its `RLIMIT_NOFILE`).
    ///
    /// The corresponding C error is `EMFILE`.
    public static let tooManyOpenFiles = Errno(rawValue: EMFILE)

    /// Too many open files in system.
    ///
    /// The system has used up its descriptors.
    ///
    /// The corresponding C error is `ENFILE`.
    public static let tooManyOpenFilesInSystem = Errno(rawValue: ENFILE)

    /// No buffer space available.
    ///
    /// The system lacked buffer space, or a queue was full.
    ///
    /// The corresponding C error is `ENOBUFS`.
    public static let noBufferSpace = Errno(rawValue: ENOBUFS)

    /// Cannot allocate memory.
    ///
    /// The system could not allocate the memory the call needs.
    ///
    /// The corresponding C error is `ENOMEM`.
    public static let noMemory = Errno(rawValue: ENOMEM)

    /// Operation timed out.
    ///
    /// The system gave up on the connection: a connect got no answer, or a connected peer
    /// stopped acknowledging. The library's own deadlines are ``NetworkError/Code/timedOut`` instead;
    /// ``NetworkError/isTimeout`` is true for both.
    ///
    /// The corresponding C error is `ETIMEDOUT`.
    public static let timedOut = Errno(rawValue: ETIMEDOUT)

    /// Network is unreachable.
    ///
    /// There is no route to the address's network.
    ///
    /// The corresponding C error is `ENETUNREACH`.
    public static let networkUnreachable = Errno(rawValue: ENETUNREACH)

    /// No route to host.
    ///
    /// The host cannot be reached.
    ///
    /// The corresponding C error is `EHOSTUNREACH`.
    public static let noRouteToHost = Errno(rawValue: EHOSTUNREACH)

    /// Permission denied.
    ///
    /// The process may not do this, for example bind a port below 1024 without privilege.
    ///
    /// The corresponding C error is `EACCES`.
    public static let permissionDenied = Errno(rawValue: EACCES)

    /// Socket is already connected.
    ///
    /// A connect on a socket that is already connected.
    ///
    /// The corresponding C error is `EISCONN`.
    public static let socketIsConnected = Errno(rawValue: EISCONN)

    /// Socket is not connected.
    ///
    /// An operation that needs a connected socket on one that is not.
    ///
    /// The corresponding C error is `ENOTCONN`.
    public static let socketNotConnected = Errno(rawValue: ENOTCONN)

    /// Message too long.
    ///
    /// A datagram is longer than the protocol carries (65,507 bytes over IPv4).
    ///
    /// The corresponding C error is `EMSGSIZE`.
    public static let messageTooLong = Errno(rawValue: EMSGSIZE)

    /// Socket operation on non-socket.
    ///
    /// The descriptor is not a socket.
    ///
    /// The corresponding C error is `ENOTSOCK`.
    public static let notSocket = Errno(rawValue: ENOTSOCK)

    /// Protocol not supported.
    ///
    /// The protocol is not available for this family and type.
    ///
    /// The corresponding C error is `EPROTONOSUPPORT`.
    public static let protocolNotSupported = Errno(rawValue: EPROTONOSUPPORT)

    /// No such file or directory.
    ///
    /// Nothing is at a Unix-domain socket's path (a connect), or a directory on the way to it is missing
    /// (a listen).
    ///
    /// The corresponding C error is `ENOENT`.
    public static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)

    /// Not a directory.
    ///
    /// A part of a Unix-domain socket's path that should be a directory is a file.
    ///
    /// The corresponding C error is `ENOTDIR`.
    public static let notDirectory = Errno(rawValue: ENOTDIR)

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
        ENOTDIR: "ENOTDIR",
    ]

    /// The symbolic name, such as `ECONNREFUSED`, or `errno N` for one without a name here.
    public var name: String { Self.names[rawValue] ?? "errno \(rawValue)" }

    /// The system's text and the symbolic name, such as `Connection refused (ECONNREFUSED)`.
    public var description: String { "\(String(cString: strerror(rawValue))) (\(name))" }
}

extension Errno {
    /// Whether `error` is this error number: an ``Errno`` equal to it, or a ``NetworkError`` whose
    /// ``NetworkError/errno`` is it.
    ///
    /// This makes an error number a pattern, as in swift-system, for the errors this library throws too:
    ///
    /// ```swift
    /// do {
    ///     _ = try await TCPConnection.connect(host: "127.0.0.1", port: 9)
    /// } catch Errno.connectionRefused {
    ///     print("nobody listens there")
    /// }
    /// ```
    public static func ~= (errno: Errno, error: any Error) -> Bool {
        switch error {
        case let error as Errno: return error == errno
        case let error as NetworkError: return error.errno == errno
        default: return false
        }
    }

    /// Whether `other` is this error number. The pattern an ``Errno`` is matched with against another
    /// (`catch .wouldBlock` after a call that `throws(Errno)`, `case .failure(.wouldBlock)`): without it such a
    /// match took the `any Error` overload above and boxed the error, one allocation per `EAGAIN` (measured:
    /// one of echo-server's four allocations per rr64 round trip).
    public static func ~= (errno: Errno, other: Errno) -> Bool {
        errno == other
    }
}

// The names before swift-system's were adopted: kept for one release.
extension Errno {
    /// `ECONNABORTED`.
    @available(*, deprecated, renamed: "connectionAbort")
    public static var connectionAborted: Errno { connectionAbort }
    /// `EINPROGRESS`.
    @available(*, deprecated, renamed: "nowInProgress")
    public static var inProgress: Errno { nowInProgress }
    /// `EHOSTUNREACH`.
    @available(*, deprecated, renamed: "noRouteToHost")
    public static var hostUnreachable: Errno { noRouteToHost }
    /// `EISCONN`.
    @available(*, deprecated, renamed: "socketIsConnected")
    public static var alreadyConnected: Errno { socketIsConnected }
    /// `ENOTCONN`.
    @available(*, deprecated, renamed: "socketNotConnected")
    public static var notConnected: Errno { socketNotConnected }
    /// `ENOTSOCK`.
    @available(*, deprecated, renamed: "notSocket")
    public static var notASocket: Errno { notSocket }
}
#endif
