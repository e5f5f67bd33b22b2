#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Testing

/// A listener on 127.0.0.1 (ephemeral port) with one client connected to it and accepted.
struct LoopbackPair {
    let listener: TCPListener
    let client: TCPConnection
    let server: TCPConnection

    static func make(host: String = "127.0.0.1", bufferMode: BufferMode = .none) async throws -> LoopbackPair {
        try await BufferMode.$current.withValue(bufferMode) {
            let listener = try await TCPListener(port: 0, host: host)
            async let accepted = listener.accept()
            let client = try await TCPConnection.connect(host: host, port: listener.port)
            return LoopbackPair(listener: listener, client: client, server: try await accepted)
        }
    }

    func close() async {
        try? await client.close()
        try? await server.close()
        try? await listener.close()
    }
}

struct TimeLimitExceeded: Error, CustomStringConvertible {
    let seconds: Double
    var description: String { "the test did not finish within \(seconds) s" }
}

/// Runs `body`, failing with `TimeLimitExceeded` when it takes longer than `seconds` (then `body` is cancelled).
func withinTimeLimit<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T
{
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimeLimitExceeded(seconds: seconds) }
        return value
    }
}

/// What a call threw, for assertions on the error's code and text.
func thrownError(_ body: () async throws -> Void) async -> (any Error)? {
    do {
        try await body()
        return nil
    } catch {
        return error
    }
}

/// The number of open descriptors of this process.
func descriptorCountOfProcess() -> Int {
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    while readdir(directory) != nil { count += 1 }
    return count - 3  // ".", ".." and the directory's own descriptor
}

/// The inode of an open descriptor, or nil when the number is not open.
func inodeOfDescriptor(_ descriptor: Int32) -> UInt? {
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { return nil }
    return UInt(status.st_ino)
}

/// A pattern of `count` bytes that differs from position to position (a prime period).
///
/// One period is made byte by byte and the rest copied whole: made byte by byte, a megabyte took seconds of a
/// cooperative thread in a debug build under the thread sanitizer, and the suite's sockets waited behind it.
func patternBytes(_ count: Int, seed: Int = 0) -> [UInt8] {
    let period = (0..<251).map { UInt8(truncatingIfNeeded: ($0 + seed) % 251) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count + period.count)
    while bytes.count < count { bytes.append(contentsOf: period) }
    bytes.removeLast(bytes.count - count)
    return bytes
}

/// A port on which nothing listens, on 127.0.0.1 and on ::1, reserved while this value lives: sockets bound to it
/// that do not listen. A connect to it is refused, and, unlike a port that was merely free a moment ago, no
/// other test's listener can be given it meanwhile (tests run in parallel: one that connected to a "refused"
/// port reached another test's listener, which then accepted a stranger).
final class RefusedPort: Sendable {
    let port: Int
    private let descriptors: [Int32]

    init() throws {
        for _ in 0..<50 {
            let v4 = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(v4, $0, length) == 0 && getsockname(v4, $0, &length) == 0
                }
            }
            guard v4 >= 0, bound else {
                throw ExternalProcess.Failure(description: "cannot bind a socket to 127.0.0.1: errno \(errno)")
            }
            let port = Int(UInt16(bigEndian: address.sin_port))
            let v6 = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address6 = sockaddr_in6()
            address6.sin6_family = sa_family_t(AF_INET6)
            address6.sin6_addr = in6addr_loopback
            address6.sin6_port = UInt16(port).bigEndian
            let bound6 =
                v6 >= 0
                && withUnsafePointer(to: &address6) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(v6, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
                    }
                }
            if bound6 {
                self.port = port
                descriptors = [v4, v6]
                return
            }
            close(v4)
            if v6 >= 0 { close(v6) }
        }
        throw ExternalProcess.Failure(description: "no port free on both 127.0.0.1 and ::1 in 50 tries")
    }

    deinit {
        for descriptor in descriptors { close(descriptor) }
    }
}
