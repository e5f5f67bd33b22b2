#if SOCKETS_PLATFORM_SUPPORTED
/// The error every failing network operation of this library throws (besides `CancellationError`).
///
/// Racket raises `exn:fail:network` for what the network did and `exn:fail:contract` for bad
/// arguments; both are a `NetworkError` here, told apart by ``code``. Its text names the operation,
/// the address and the reason:
///
/// ```
/// connect to 127.0.0.1:9 failed: Connection refused (ECONNREFUSED)
/// ```
///
/// The common questions are one test each: ``isTimeout``, ``isRefused``, ``isPeerGone``. For the rest,
/// match on ``code``, on ``errno`` or on an ``Errno`` itself:
///
/// ```swift
/// catch let error as NetworkError where error.isTimeout { … }
/// catch Errno.addressInUse { … }
/// catch let error as NetworkError where error.code == .closed { … }
/// ```
public struct NetworkError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a value to match on.
    public enum Code: Sendable, Hashable {
        /// The system call failed with this error number.
        case system(Errno)
        /// Name resolution failed (`getaddrinfo`'s code, such as ``ResolutionError/unknownName``).
        case resolution(ResolutionError)
        /// The operation took longer than its timeout (CHICKEN's `tcp-read-timeout` and friends): the
        /// library's own deadline. The kernel's `ETIMEDOUT` is `.system(.timedOut)`; ``NetworkError/isTimeout``
        /// is true for both.
        case timedOut
        /// The socket, listener or half was closed, before or during the operation.
        case closed
        /// An argument was out of range or inconsistent (Racket's `exn:fail:contract`); no system call was made.
        case invalidArgument
        /// The input ended before the operation could complete (`read(exactly:)`).
        case endOfFile
        /// The custodian that manages the socket has been shut down (Racket: `custodian-shutdown-all`).
        case custodianShutDown
        /// A line was longer than the reader's limit (``TCPConnection/readLine(ending:maxLength:)``); the
        /// detail names the limit.
        case lineTooLong
        /// The task was cancelled after part of the data went out (see ``NetworkError/bytesTransferred``).
        /// When nothing went out, `CancellationError` is thrown instead.
        case cancelled
    }

    /// What went wrong.
    public var code: Code
    /// The operation, such as `connect`, `accept`, `read`, `listen`.
    public var operation: String
    /// The address the operation was about, as `host:port` (or a host alone), when there is one.
    public var address: String?
    /// More about the reason, such as which addresses were tried or which argument is wrong.
    public var detail: String?
    /// For a write, read or send that stopped part-way: how many bytes went through before it stopped.
    public var bytesTransferred: Int?

    /// Makes an error. The library makes them; tests and wrappers may too.
    public init(
        _ code: Code, operation: String, address: String? = nil, detail: String? = nil,
        bytesTransferred: Int? = nil
    ) {
        self.code = code
        self.operation = operation
        self.address = address
        self.detail = detail
        self.bytesTransferred = bytesTransferred
    }

    /// The system's error number, when the failure came from a system call.
    public var errno: Errno? {
        if case .system(let errno) = code { return errno }
        return nil
    }

    /// The resolver's error, when name resolution failed.
    public var resolutionError: ResolutionError? {
        if case .resolution(let error) = code { return error }
        return nil
    }

    /// Whether the operation ran out of time: the library's timeout (``Code/timedOut``, from
    /// ``TCPTimeouts`` or a `timeout:` argument) or the kernel's (``Errno/timedOut``, `ETIMEDOUT`: a
    /// connect that got no answer, or a peer that stopped acknowledging).
    public var isTimeout: Bool { code == .timedOut || errno == .timedOut }

    /// Whether nobody listened at the address: ``Errno/connectionRefused`` (`ECONNREFUSED`), from a TCP
    /// connect or, on a connected UDP socket, from the peer's "port unreachable".
    public var isRefused: Bool { errno == .connectionRefused }

    /// Whether the peer has gone: it reset the connection (``Errno/connectionReset``), it is no longer there
    /// to write to (``Errno/brokenPipe``), the connection was aborted (``Errno/connectionAbort``), or the
    /// input ended before ``TCPConnection/read(exactly:)`` had its bytes (``Code/endOfFile``).
    public var isPeerGone: Bool {
        switch code {
        case .system(.connectionReset), .system(.brokenPipe), .system(.connectionAbort), .endOfFile: true
        default: false
        }
    }

    /// The text: the operation, the address, and the reason.
    public var description: String {
        var text = operation
        if let address {
            text += " " + Self.preposition(for: operation) + " " + address
        }
        text += " failed: " + reason
        if let bytesTransferred {
            text += " (after \(bytesTransferred) byte\(bytesTransferred == 1 ? "" : "s"))"
        }
        return text
    }

    private var reason: String {
        let base: String
        switch code {
        case .system(let errno): base = errno.description
        case .resolution(let error): base = error.description
        case .timedOut: base = "timed out"
        case .closed: base = "closed"
        case .invalidArgument: base = "invalid argument"
        case .endOfFile: base = "unexpected end of file"
        case .cancelled: base = "cancelled"
        case .custodianShutDown: base = "its custodian has been shut down"
        case .lineTooLong: base = "line too long"
        }
        guard let detail else { return base }
        switch code {
        case .invalidArgument, .closed: return detail
        default: return "\(base): \(detail)"
        }
    }

    private static func preposition(for operation: String) -> String {
        switch operation {
        case "connect", "write", "send", "send to", "flush": return "to"
        case "read", "receive": return "from"
        case "resolve": return "of"
        default: return "on"
        }
    }

    // MARK: Makers used across the library

    static func system(
        _ errno: Errno, _ operation: String, _ address: String? = nil,
        detail: String? = nil, bytes: Int? = nil
    ) -> NetworkError {
        NetworkError(.system(errno), operation: operation, address: address, detail: detail, bytesTransferred: bytes)
    }

    static func invalid(_ operation: String, _ address: String? = nil, _ detail: String) -> NetworkError {
        NetworkError(.invalidArgument, operation: operation, address: address, detail: detail)
    }

    static func closed(_ operation: String, _ address: String? = nil, _ what: String) -> NetworkError {
        NetworkError(.closed, operation: operation, address: address, detail: what)
    }
}
#endif
