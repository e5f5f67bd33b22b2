#if SOCKETS_PLATFORM_SUPPORTED
/// Multicast: Racket's `udp-multicast-…` procedures, for IPv4 as Racket has them and for IPv6 groups too.
extension UDPSocket {
    /// Joins a multicast group, to receive its datagrams. Racket: `udp-multicast-join-group!`.
    ///
    /// - Parameters:
    ///   - group: a numeric multicast address of the socket's family (`"224.0.0.251"` for mDNS, `"ff02::fb"`).
    ///   - interface: for IPv4, the address of the interface to receive on; for IPv6, an interface name
    ///     (`"lo"`). `nil` or `"0.0.0.0"`: the kernel chooses.
    /// - Throws: ``NetworkError`` for an address that is not multicast or not of the socket's family, or the
    ///   system's refusal.
    public func joinMulticastGroup(_ group: String, interface: String? = nil) async throws {
        try await changeMembership(group, interface: interface, join: true)
    }

    /// Leaves a multicast group joined with the same arguments. Racket: `udp-multicast-leave-group!`.
    public func leaveMulticastGroup(_ group: String, interface: String? = nil) async throws {
        try await changeMembership(group, interface: interface, join: false)
    }

    private func changeMembership(_ group: String, interface: String?, join: Bool) async throws {
        let operation = join ? "join multicast group" : "leave multicast group"
        try checkOpen(operation)
        guard let address = SocketAddress(numericHost: group, port: 0), address.isMulticast else {
            throw NetworkError.invalid(operation, group, "\(group) is not a multicast address")
        }
        guard address.family == family else {
            throw NetworkError.invalid(operation, group, "the group is \(address.family) and the socket \(family)")
        }
        let local = family == .ipv4 ? try await interfaceAddress(interface, operation) : .any(.ipv4, port: 0)
        let index = family == .ipv6 ? try interfaceIndex(interface, operation) : 0
        do {
            try SystemSocket.setMembership(
                handle.descriptor, group: address, interface: local, interfaceIndex: index,
                join: join)
        } catch {
            throw NetworkError.system(error, operation, group)
        }
    }

    /// The IPv4 address of an interface given by host; `0.0.0.0` for `nil`.
    private func interfaceAddress(_ host: String?, _ operation: String) async throws -> SocketAddress {
        guard let host, host != "0.0.0.0" else { return .any(.ipv4, port: 0) }
        try Resolver.validate(host: host, operation: operation, shown: host)
        return try await Resolver.resolve(host: host, service: "0", kind: .datagram, family: .ipv4)[0]
    }

    /// The index of an IPv6 interface given by name; 0 (the kernel chooses) for `nil`.
    private func interfaceIndex(_ name: String?, _ operation: String) throws -> UInt32 {
        guard let name, name != "::", name != "0.0.0.0" else { return 0 }
        guard let index = SystemSocket.interfaceIndex(named: name) else {
            throw NetworkError.invalid(operation, name, "no interface is named \(name)")
        }
        return index
    }

    /// The interface multicast datagrams are sent from: an IPv4 address (`"0.0.0.0"` when the kernel chooses);
    /// for IPv6, the interface's name (`"::"` when the kernel chooses). Racket: `udp-multicast-interface`.
    public func multicastInterface() throws -> String {
        try checkOpen("get multicast interface")
        do {
            if family == .ipv4 { return try SystemSocket.multicastInterfaceAddress(handle.descriptor).host }
            return try SystemSocket.multicastInterfaceName(handle.descriptor)
        } catch {
            throw NetworkError.system(error, "get multicast interface", shownLocal)
        }
    }

    /// Sets the interface multicast datagrams are sent from; `nil` or `"0.0.0.0"` lets the kernel choose.
    /// Racket: `udp-multicast-set-interface!`.
    public func setMulticastInterface(_ interface: String?) async throws {
        let operation = "set multicast interface"
        try checkOpen(operation)
        let local = family == .ipv4 ? try await interfaceAddress(interface, operation) : .any(.ipv4, port: 0)
        let index = family == .ipv6 ? try interfaceIndex(interface, operation) : 0
        do {
            try SystemSocket.setMulticastInterface(handle.descriptor, family: family, address: local, index: index)
        } catch {
            throw NetworkError.system(error, operation, interface)
        }
    }

    /// Whether this host receives its own multicast datagrams (`IP_MULTICAST_LOOP`). Racket:
    /// `udp-multicast-loopback?`.
    public func isMulticastLoopback() throws -> Bool {
        try option(family == .ipv4 ? .multicastLoopback : .ipv6MulticastLoopback)
    }

    /// Sets whether this host receives its own multicast datagrams. Racket: `udp-multicast-set-loopback!`.
    public func setMulticastLoopback(_ loopback: Bool) throws {
        try setOption(family == .ipv4 ? .multicastLoopback : .ipv6MulticastLoopback, loopback)
    }

    /// The time-to-live of outgoing multicast datagrams (`IP_MULTICAST_TTL`). Racket: `udp-multicast-ttl`.
    public func multicastTimeToLive() throws -> Int {
        try option(family == .ipv4 ? .multicastTimeToLive : .multicastHopLimit)
    }

    /// Sets the multicast time-to-live, 0...255 (keep it as low as possible: 1 stays on the local network).
    /// Racket: `udp-multicast-set-ttl!`.
    public func setMulticastTimeToLive(_ ttl: Int) throws {
        guard (0...255).contains(ttl) else {
            throw NetworkError.invalid("set multicast TTL", shownLocal, "a TTL is a byte, 0...255, not \(ttl)")
        }
        try setOption(family == .ipv4 ? .multicastTimeToLive : .multicastHopLimit, ttl)
    }
}
#endif
