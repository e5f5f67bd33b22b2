#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSockets

/// The system calls on one socket descriptor: non-blocking, close-on-exec, `EINTR` retried,
/// `MSG_NOSIGNAL` on every send. Each throws the `errno` it failed with; `EAGAIN` is thrown as
/// ``Errno/wouldBlock`` for the caller to wait on readiness.
///
/// This layer owns no state: the objects above it (listener, connection, UDP socket) own the number.
enum SystemSocket {
    /// Repeats `call` while it fails with `EINTR`; throws the errno of any other failure.
    @inline(__always)
    static func retrying<T: BinaryInteger>(_ call: () -> T) throws(Errno) -> T {
        while true {
            let result = call()
            if result >= 0 { return result }
            let errno = Errno(rawValue: csockets_errno())
            if errno != .interrupted { throw errno == Errno(rawValue: EWOULDBLOCK) ? .wouldBlock : errno }
        }
    }

    static func open(family: SocketAddress.Family, kind: Resolver.SocketKind) throws(Errno) -> Int32 {
        #if canImport(Glibc)
        let type = kind.rawValue | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        return try retrying { socket(family.rawValue, type, 0) }
        #else
        let fd = try retrying { socket(family.rawValue, kind.rawValue, 0) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
        #endif
    }

    static func close(_ fd: Int32) {
        // Linux releases the descriptor even when close is interrupted: never retry it.
        _ = Glibc.close(fd)
    }

    static func bind(_ fd: Int32, to address: SocketAddress) throws(Errno) {
        _ = try address.withSockAddr { (pointer, length) throws(Errno) in
            try retrying { Glibc.bind(fd, pointer, length) }
        }
    }

    static func listen(_ fd: Int32, backlog: Int) throws(Errno) {
        _ = try retrying { Glibc.listen(fd, Int32(clamping: backlog)) }
    }

    /// Accepts one connection, non-blocking and close-on-exec; returns its descriptor and peer.
    static func accept(_ fd: Int32) throws(Errno) -> (Int32, SocketAddress?) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let client = try withUnsafeMutablePointer(to: &storage) { (pointer) throws(Errno) -> Int32 in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(Errno) -> Int32 in
                try retrying { csockets_accept(fd, address, &length) }
            }
        }
        return (client, withUnsafeBytes(of: &storage) { SocketAddress(storage: $0.baseAddress!) })
    }

    /// Starts a connect; returns `true` when it completed at once, `false` when it is in progress.
    static func connect(_ fd: Int32, to address: SocketAddress) throws(Errno) -> Bool {
        do {
            _ = try address.withSockAddr { (pointer, length) throws(Errno) in
                try retrying { Glibc.connect(fd, pointer, length) }
            }
            return true
        } catch .nowInProgress {
            return false
        }
    }

    /// The pending error of a socket (`SO_ERROR`), cleared by reading it.
    static func pendingError(_ fd: Int32) -> Errno? {
        let value = (try? getOption(fd, SOL_SOCKET, SO_ERROR)) ?? 0
        return value == 0 ? nil : Errno(rawValue: value)
    }

    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retrying { recv(fd, buffer.baseAddress, buffer.count, 0) }
    }

    static func send(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try retrying { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    static func receive(
        _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer,
        from sender: inout SocketAddress?
    ) throws(Errno) -> (count: Int, truncated: Bool) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        let (count, flags) = try withUnsafeMutablePointer(to: &storage) { (name) throws(Errno) -> (Int, Int32) in
            try withUnsafeMutablePointer(to: &vector) { (vectorPointer) throws(Errno) -> (Int, Int32) in
                var message = msghdr()
                message.msg_name = UnsafeMutableRawPointer(name)
                message.msg_namelen = length
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                let count = try retrying { recvmsg(fd, &message, 0) }
                length = message.msg_namelen
                return (count, message.msg_flags)
            }
        }
        sender = withUnsafeBytes(of: &storage) { SocketAddress(storage: $0.baseAddress!) }
        return (count, flags & Int32(MSG_TRUNC) != 0)
    }

    static func send(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, to address: SocketAddress?) throws(Errno) -> Int {
        guard let address else { return try send(fd, buffer) }
        return try address.withSockAddr { (pointer, length) throws(Errno) in
            try retrying { sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), pointer, length) }
        }
    }

    static func shutdown(_ fd: Int32, writing: Bool) throws(Errno) {
        _ = try retrying { Glibc.shutdown(fd, Int32(writing ? SHUT_WR : SHUT_RD)) }
    }

    /// Makes an IPv6 socket IPv6 only (`IPV6_V6ONLY`), so that an IPv4 socket can take the same port.
    static func setIPv6Only(_ fd: Int32) throws(Errno) {
        try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1)
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(Errno) {
        var value = value
        _ = try retrying { setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) }
    }

    static func getOption(_ fd: Int32, _ level: Int32, _ name: Int32) throws(Errno) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try retrying { getsockopt(fd, level, name, &value, &length) }
        return value
    }

    static func setRawOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: UnsafeRawBufferPointer) throws(Errno)
    {
        _ = try retrying { setsockopt(fd, level, name, value.baseAddress, socklen_t(value.count)) }
    }

    static func localAddress(_ fd: Int32) throws(Errno) -> SocketAddress? {
        try address(fd) { getsockname($0, $1, $2) }
    }

    static func peerAddress(_ fd: Int32) throws(Errno) -> SocketAddress? {
        try address(fd) { getpeername($0, $1, $2) }
    }

    private static func address(
        _ fd: Int32, _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) throws(Errno) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { (pointer) throws(Errno) -> Int32 in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(Errno) -> Int32 in
                try retrying { call(fd, address, &length) }
            }
        }
        return withUnsafeBytes(of: &storage) { SocketAddress(storage: $0.baseAddress!) }
    }

    /// Whether a read on `fd` would not block right now (`poll` with a zero timeout).
    static func isReadable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0 && entry.revents != 0
    }

    /// Whether a write on `fd` would not block right now.
    static func isWritable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&entry, 1, 0) > 0 && entry.revents != 0
    }
}
#endif
