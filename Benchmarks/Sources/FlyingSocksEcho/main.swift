// flyingsocks-echo: the echo server on FlyingSocks (FlyingFox's socket layer): `Socket`s bound and listening,
// wrapped in `AsyncSocket`s on one `SocketPool<ePoll>` (the pool FlyingFox's HTTPServer uses on Linux, run in a
// task of its own), one task per connection. The same command line as Sockets' echo-server.
//
// TCP: `AsyncSocket.read(atMost:)` (which reads at most 4,096 bytes at a time, by FlyingSocks' design) and
// `write(_ data:)`; the read throws `SocketError.disconnected` at the client's end-of-file, and the connection,
// whose every echo is already written, is closed. UDP: `receive(atMost:)` then `send(_:to:)` to the sender. The
// address `receive` returns is a `sockaddr_storage`, whose `family` and `withSockAddr` call each other without
// end in FlyingSocks 0.27.1, so it is converted to the concrete `sockaddr_in`/`sockaddr_in6` before sending.
// FlyingSocks reports an empty datagram as `disconnected`; those are skipped (a FlyingSocks limitation).
import BenchSupport
import FlyingSocks
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

installSignalHandlers()
let options = ServerOptions.parse(name: "flyingsocks-echo")
let isIPv6 = options.host.contains(":")

func makeSocket(type: SocketType, port: Int) throws -> Socket {
    let socket = try Socket(domain: isIPv6 ? AF_INET6 : AF_INET, type: type)
    do {
        try socket.setValue(true, for: .localAddressReuse)
        if isIPv6 {
            try socket.bind(
                to: sockaddr_in6.inet6(ip6: options.host == "localhost" ? "::1" : options.host, port: UInt16(port)))
        } else {
            try socket.bind(
                to: sockaddr_in.inet(ip4: options.host == "localhost" ? "127.0.0.1" : options.host, port: UInt16(port)))
        }
        if type == .stream { try socket.listen(maxPendingConnection: 256) }
    } catch {
        try? socket.close()
        throw error
    }
    return socket
}

func boundPort(_ socket: Socket) throws -> Int {
    switch try socket.sockname() {
    case .ip4(_, let port), .ip6(_, let port): return Int(port)
    case .unix: return 0
    }
}

func bindBoth() throws -> (Socket, Socket?) {
    let tcp = try makeSocket(type: .stream, port: options.port)
    guard options.udp else { return (tcp, nil) }
    do {
        return (tcp, try makeSocket(type: .datagram, port: boundPort(tcp)))
    } catch {
        try? tcp.close()
        throw error
    }
}

func echo(_ connection: AsyncSocket) async {
    var on: Int32 = 1
    _ = setsockopt(
        connection.socket.file.rawValue, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    do {
        while true {
            let bytes = try await connection.read(atMost: 65_536)
            try await connection.write(Data(bytes))
        }
    } catch {
        // End-of-file (SocketError.disconnected), a reset or cancellation: every echo is written; close.
    }
    try? connection.close()
}

/// The sender as a concrete address type (see the note at the top).
func concreteAddress(_ address: any SocketAddress) -> (any SocketAddress)? {
    guard let storage = address as? sockaddr_storage else { return address }
    switch Int32(storage.ss_family) {
    case AF_INET: return try? sockaddr_in.make(from: storage)
    case AF_INET6: return try? sockaddr_in6.make(from: storage)
    default: return nil
    }
}

func echoDatagrams(_ socket: AsyncSocket) async {
    while !Task.isCancelled {
        do {
            let (sender, bytes): (any SocketAddress, [UInt8]) = try await socket.receive(atMost: 65_536)
            guard let sender = concreteAddress(sender) else { continue }
            try await socket.send(bytes, to: sender)
        } catch is CancellationError {
            return
        } catch {
            // An empty datagram (reported as disconnected) or one that could not be sent: go on.
        }
    }
}

let tcp: Socket
let udp: Socket?
let pool = SocketPool<ePoll>.ePoll()
do {
    (tcp, udp) = try withSamePortRetries(options, bindBoth)
    try await pool.prepare()
} catch {
    writeError("flyingsocks-echo: \(error)")
    exit(1)
}
let listener = try AsyncSocket(socket: tcp, pool: pool)
let datagrams = try udp.map { try AsyncSocket(socket: $0, pool: pool) }
announceListening(options, port: try boundPort(tcp))

await withDiscardingTaskGroup { group in
    group.addTask {
        do { try await pool.run() } catch { writeError("flyingsocks-echo: pool: \(error)") }
    }
    if let datagrams {
        group.addTask { await echoDatagrams(datagrams) }
    }
    while !Task.isCancelled {
        do {
            for try await connection in listener.sockets {
                group.addTask { await echo(connection) }
            }
        } catch {
            // Out of descriptors and the like: pause, then accept again.
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}
