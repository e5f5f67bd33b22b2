#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif

/// The system calls of Unix-domain stream sockets (`AF_UNIX`): opening one, building its `sockaddr_un` (a path,
/// or a name in Linux's abstract namespace), binding, connecting, and the peer's credentials (`SO_PEERCRED`).
/// Accepting, reading, writing and closing are the same calls as TCP's (``SystemSocket``).
extension SystemSocket {
    /// A Unix-domain stream socket, non-blocking and close-on-exec.
    static func openUnix() throws(Errno) -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        return try retrying { socket(AF_UNIX, type, 0) }
    }

    static func bind(_ fd: Int32, toUnix address: UnixSocketPath) throws(Errno) {
        _ = try address.withSockAddr { (pointer, length) throws(Errno) in
            try retrying { Glibc.bind(fd, pointer, length) }
        }
    }

    /// Connects at once. A Unix-domain connect on Linux never completes later: it succeeds, or fails (with
    /// ``Errno/wouldBlock`` when the listener's backlog is full).
    static func connect(_ fd: Int32, toUnix address: UnixSocketPath) throws(Errno) {
        _ = try address.withSockAddr { (pointer, length) throws(Errno) in
            try retrying { Glibc.connect(fd, pointer, length) }
        }
    }

    /// The process, user and group of the peer of a Unix-domain socket, as they were when it connected (or
    /// listened): `SO_PEERCRED`.
    static func peerCredentials(_ fd: Int32) throws(Errno) -> PeerCredentials {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }: three 32-bit fields.
        var fields: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        let peerCredentialOption: Int32 = 17  // SO_PEERCRED, a _GNU_SOURCE name Glibc's module leaves out
        _ = try retrying { getsockopt(fd, SOL_SOCKET, peerCredentialOption, &fields, &length) }
        return PeerCredentials(processID: fields.0, userID: fields.1, groupID: fields.2)
    }

    /// The socket's family (`SO_DOMAIN`): `AF_UNIX`, `AF_INET`, ...
    static func domain(_ fd: Int32) -> Int32? {
        try? getOption(fd, SOL_SOCKET, SO_DOMAIN)
    }

    /// Whether `path` names a socket file (`lstat`), and its device and inode.
    static func socketFile(at path: String) -> (device: UInt64, inode: UInt64)? {
        var status = stat()
        guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFSOCK else { return nil }
        return (UInt64(status.st_dev), UInt64(status.st_ino))
    }

    /// Removes a file; returns whether it was removed.
    @discardableResult
    static func unlink(_ path: String) -> Bool {
        Glibc.unlink(path) == 0
    }
}

extension UnixSocketPath {
    /// The offset of `sun_path` in `sockaddr_un` (2 on Linux).
    static let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2

    /// Calls `body` with this name as a `sockaddr_un` and its length: for a path, the path and its NUL; for an
    /// abstract name, a NUL and the name's bytes (the length says where it ends, so it may hold NULs). The name
    /// must be valid (``problem``).
    func withSockAddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes: [UInt8]
        let length: Int
        switch self {
        case .path(let path):
            bytes = Array(path.utf8)
            length = Self.pathOffset + bytes.count + 1
        case .abstract(let name):
            bytes = [0] + name
            length = Self.pathOffset + bytes.count
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes.prefix(raw.count))
        }
        return try withUnsafePointer(to: &address) { (pointer) throws(E) -> R in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (raw) throws(E) -> R in
                try body(raw, socklen_t(length))
            }
        }
    }
}
#endif
