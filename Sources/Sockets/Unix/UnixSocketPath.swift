#if SOCKETS_PLATFORM_SUPPORTED
/// Where a Unix-domain socket lives: a file system path, or a name in Linux's abstract namespace. Racket: a value
/// for which `unix-socket-path?` holds (a path string, or a byte string that starts with NUL).
///
/// ```swift
/// let listener = try await UnixListener(path: "/run/my-service.sock")
/// let other = try await UnixListener(path: .abstract(Array("my-service".utf8)))
/// ```
///
/// - ``path(_:)``: a socket file at that path (relative paths are taken from the current directory by the
///   kernel). At most ``maximumPathLength`` (107) bytes of UTF-8, because `sun_path` holds 108 with the path's
///   NUL; no NUL inside; not empty.
/// - ``abstract(_:)``: a name in Linux's abstract namespace, which has no file: it goes away with the last
///   socket bound to it, and file permissions do not apply. The bytes are the name *after* Racket's leading NUL
///   (Racket's `#"\0name"` is `.abstract(Array("name".utf8))`); they may hold NULs (`"abc"` and `"abc\0"` are
///   different names); at most ``maximumAbstractNameLength`` (107) bytes; may be empty.
///
/// Nothing is checked when the value is made: ``isValid`` says whether it is usable (Racket's
/// `unix-socket-path?`), and ``UnixListener/init(path:backlog:removeStaleSocket:removesPathOnClose:)`` and
/// ``TCPConnection/connect(unixPath:timeout:)`` throw a ``NetworkError`` with code
/// ``NetworkError/Code/invalidArgument`` naming the rule broken, before any system call.
///
/// **Cancellation**: a value; nothing here waits.
public enum UnixSocketPath: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// A socket file at this path.
    case path(String)
    /// A name in Linux's abstract namespace: the bytes after the leading NUL.
    case abstract([UInt8])

    /// The longest path, in bytes of UTF-8: `sun_path` is 108 bytes and holds the path's terminating NUL too.
    public static let maximumPathLength = 107
    /// The longest abstract name: `sun_path`'s 108 bytes less the leading NUL.
    public static let maximumAbstractNameLength = 107

    /// Whether Unix-domain sockets are available on this platform: `true` (this library runs on Linux). Racket:
    /// `unix-socket-available?`.
    public static let isAvailable = true

    /// A path, from a string literal: `let path: UnixSocketPath = "/tmp/app.sock"`.
    public init(stringLiteral value: String) {
        self = .path(value)
    }

    /// Whether the value is a usable Unix socket address: a path of 1 to 107 bytes with no NUL, or an abstract
    /// name of at most 107 bytes. Racket: `unix-socket-path?`.
    public var isValid: Bool { problem == nil }

    /// What is wrong with the value, or `nil` when it is valid.
    var problem: String? {
        switch self {
        case .path(let path):
            let count = path.utf8.count
            if count == 0 { return "the socket path is empty" }
            if path.utf8.contains(0) { return "the socket path \(description) contains a NUL byte" }
            if count > Self.maximumPathLength {
                return "the socket path is \(count) bytes long; a Unix socket path takes at most "
                    + "\(Self.maximumPathLength) (sun_path holds 108 bytes with the terminating NUL)"
            }
            return nil
        case .abstract(let name):
            if name.count > Self.maximumAbstractNameLength {
                return "the abstract socket name is \(name.count) bytes long; it takes at most "
                    + "\(Self.maximumAbstractNameLength) (sun_path holds 108 bytes with the leading NUL)"
            }
            return nil
        }
    }

    /// Throws ``NetworkError/Code/invalidArgument`` for `operation` when the value is not valid.
    func validate(_ operation: String) throws {
        if let problem { throw NetworkError.invalid(operation, description, problem) }
    }

    /// The path as given; an abstract name as `@name`, as `ss` and `netstat` show it, with NUL written `\0` and
    /// other bytes outside printable ASCII as `\xNN`. A path longer than 200 bytes is cut short (with `…`).
    public var description: String {
        switch self {
        case .path(let path):
            let bytes = Array(path.utf8)
            guard bytes.count > 200 else { return path }
            return String(decoding: bytes.prefix(200), as: UTF8.self) + "…"
        case .abstract(let name):
            var text = "@"
            for byte in name.prefix(200) {
                switch byte {
                case 0: text += "\\0"
                case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(byte))
                default:
                    let hex = String(byte, radix: 16)
                    text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
                }
            }
            return name.count > 200 ? text + "…" : text
        }
    }

    /// The file system path, for ``path(_:)``; `nil` for an abstract name.
    public var filePath: String? {
        if case .path(let path) = self { return path }
        return nil
    }
}

/// Who is at the other end of a Unix-domain connection: the process, user and group of the peer, as the kernel
/// recorded them when it connected (for an accepted connection) or listened (for a connection made with
/// ``TCPConnection/connect(unixPath:timeout:)``). Linux's `SO_PEERCRED`; Racket has no counterpart.
///
/// Read it with ``TCPConnection/peerCredentials()``.
///
/// **Cancellation**: a value; nothing here waits.
public struct PeerCredentials: Hashable, Sendable, CustomStringConvertible {
    /// The peer's process ID (`pid`).
    public var processID: Int32
    /// The peer's effective user ID (`uid`).
    public var userID: UInt32
    /// The peer's effective group ID (`gid`).
    public var groupID: UInt32

    /// Makes credentials (for tests and wrappers; the library reads them from the kernel).
    public init(processID: Int32, userID: UInt32, groupID: UInt32) {
        self.processID = processID
        self.userID = userID
        self.groupID = groupID
    }

    /// `pid 123 uid 0 gid 0`.
    public var description: String { "pid \(processID) uid \(userID) gid \(groupID)" }
}
#endif
