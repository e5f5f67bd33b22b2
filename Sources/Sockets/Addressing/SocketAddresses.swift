#if SOCKETS_PLATFORM_SUPPORTED
/// The local and remote ends of a connection, listener or UDP socket. Racket: the results of `tcp-addresses`
/// and `udp-addresses`, with and without port numbers.
public struct SocketAddresses: Sendable, Hashable {
    /// This side's address and port (port 0 for an unbound UDP socket).
    public let local: SocketAddress
    /// The other side's address and port: `0.0.0.0` (or `::`) and port 0 for a listener or an unconnected UDP
    /// socket.
    public let remote: SocketAddress

    /// This side's numeric host, such as `"127.0.0.1"`.
    public var localHost: String { local.host }
    /// This side's port.
    public var localPort: Int { local.port }
    /// The other side's numeric host.
    public var remoteHost: String { remote.host }
    /// The other side's port (0 for a listener or an unconnected UDP socket).
    public var remotePort: Int { remote.port }
}

/// The ends of a TCP connection or listener. Racket: `tcp-addresses`.
public typealias TCPAddresses = SocketAddresses

/// The ends of a UDP socket. Racket: `udp-addresses`.
public typealias UDPAddresses = SocketAddresses
#endif
