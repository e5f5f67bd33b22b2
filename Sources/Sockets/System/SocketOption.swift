#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif

/// A socket option with a typed value, for ``TCPConnection/setOption(_:_:)`` and its kin.
///
/// ```swift
/// try await connection.setOption(.noDelay, true)
/// let size = try await connection.option(.receiveBufferSize)
/// ```
public struct SocketOption<Value: Sendable>: Sendable {
    let level: Int32
    let name: Int32
    let label: String
    let encode: @Sendable (Value) -> Int32
    let decode: @Sendable (Int32) -> Value
}

extension SocketOption where Value == Bool {
    static func flag(_ level: Int32, _ name: Int32, _ label: String) -> Self {
        SocketOption(level: level, name: name, label: label, encode: { $0 ? 1 : 0 }, decode: { $0 != 0 })
    }

    /// `TCP_NODELAY`: send small segments at once instead of gathering them (Nagle's algorithm off).
    /// On by default for connections of this library, whose output is already buffered (``BufferMode``).
    public static var noDelay: Self { flag(Int32(IPPROTO_TCP), TCP_NODELAY, "TCP_NODELAY") }
    /// `SO_KEEPALIVE`: probe an idle connection to find a vanished peer.
    public static var keepAlive: Self { flag(SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE") }
    /// `SO_REUSEADDR`.
    public static var reuseAddress: Self { flag(SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR") }
    /// `SO_BROADCAST`: allow sending to broadcast addresses (on for UDP sockets, as in Racket).
    public static var broadcast: Self { flag(SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST") }
}

extension SocketOption where Value == Int {
    static func integer(_ level: Int32, _ name: Int32, _ label: String) -> Self {
        SocketOption(level: level, name: name, label: label, encode: { Int32(clamping: $0) }, decode: { Int($0) })
    }

    /// `SO_SNDBUF`: the kernel's send buffer, in bytes (Linux reports twice the size set).
    public static var sendBufferSize: Self { integer(SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF") }
    /// `SO_RCVBUF`: the kernel's receive buffer, in bytes (Linux reports twice the size set).
    public static var receiveBufferSize: Self { integer(SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF") }
}

extension SocketOption where Value == Int {
    /// `IP_TTL`: the time-to-live of outgoing IPv4 packets.
    public static var ipTimeToLive: Self { integer(Int32(IPPROTO_IP), IP_TTL, "IP_TTL") }
    /// `IPV6_UNICAST_HOPS`: the hop limit of outgoing IPv6 packets.
    public static var ipv6HopLimit: Self { integer(Int32(IPPROTO_IPV6), IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS") }
    /// `IP_MULTICAST_TTL`: the time-to-live of outgoing IPv4 multicast packets.
    public static var multicastTimeToLive: Self { integer(Int32(IPPROTO_IP), IP_MULTICAST_TTL, "IP_MULTICAST_TTL") }
    /// `IPV6_MULTICAST_HOPS`: the hop limit of outgoing IPv6 multicast packets.
    public static var multicastHopLimit: Self {
        integer(Int32(IPPROTO_IPV6), IPV6_MULTICAST_HOPS, "IPV6_MULTICAST_HOPS")
    }
}

extension SocketOption where Value == Bool {
    /// `IP_MULTICAST_LOOP`: whether this host receives its own IPv4 multicast datagrams.
    public static var multicastLoopback: Self { flag(Int32(IPPROTO_IP), IP_MULTICAST_LOOP, "IP_MULTICAST_LOOP") }
    /// `IPV6_MULTICAST_LOOP`: whether this host receives its own IPv6 multicast datagrams.
    public static var ipv6MulticastLoopback: Self {
        flag(Int32(IPPROTO_IPV6), IPV6_MULTICAST_LOOP, "IPV6_MULTICAST_LOOP")
    }
}
#endif
