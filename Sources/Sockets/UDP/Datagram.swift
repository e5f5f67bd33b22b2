#if SOCKETS_PLATFORM_SUPPORTED
/// A datagram with its peer: the sender of one received, the destination of one to send.
public struct Datagram: Sendable, Hashable {
    /// The datagram's bytes (possibly empty: UDP carries empty datagrams).
    public var bytes: [UInt8]
    /// The sender (received) or the destination (to send).
    public var address: SocketAddress
    /// For a received datagram: it was longer than the room given, and the rest was discarded.
    public var truncated: Bool

    /// Makes a datagram to send (or as received).
    public init(bytes: [UInt8], address: SocketAddress, truncated: Bool = false) {
        self.bytes = bytes
        self.address = address
        self.truncated = truncated
    }
}

/// What ``UDPSocket/receive(into:range:)`` wrote: Racket's three results of `udp-receive!`, and whether the
/// datagram was cut to fit.
public struct UDPReceipt: Sendable, Hashable {
    /// How many bytes were written into the buffer (0 for an empty datagram).
    public let count: Int
    /// The sender.
    public let sender: SocketAddress
    /// The datagram was longer than the range; the rest was discarded (Racket discards it silently).
    public let truncated: Bool

    /// The sender's numeric host, as Racket's second result.
    public var host: String { sender.host }
    /// The sender's port, as Racket's third result.
    public var port: Int { sender.port }
}
#endif
