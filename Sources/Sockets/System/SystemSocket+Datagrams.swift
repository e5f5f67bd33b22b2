#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSockets

/// The datagram calls that go beyond one `recvmsg`/`sendto`: batches, dissolving a UDP association,
/// multicast membership and interfaces. Like the rest of ``SystemSocket``, each throws the `errno` it
/// failed with.
extension SystemSocket {
    /// One datagram of a batch received by ``receiveBatch(_:into:stride:maxCount:)``.
    struct BatchEntry {
        /// Its length as received (at most the stride).
        var count: Int
        /// Whether it was longer than the stride and cut.
        var truncated: Bool
        /// Who sent it.
        var sender: SocketAddress?
    }

    /// Receives up to `maxCount` datagrams in one call (`recvmmsg`), datagram `i` into
    /// `buffer[i * stride ..< (i + 1) * stride]`. Throws ``Errno/wouldBlock`` when none waits.
    static func receiveBatch(
        _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, stride: Int,
        maxCount: Int
    ) throws(Errno) -> [BatchEntry] {
        precondition(buffer.count >= stride * maxCount)
        var lengths = [Int](repeating: 0, count: maxCount)
        var flags = [Int32](repeating: 0, count: maxCount)
        var senders = [sockaddr_storage](repeating: sockaddr_storage(), count: maxCount)
        let received = try retrying {
            csockets_recvmmsg(
                fd, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), stride, UInt32(maxCount),
                &lengths, &flags, &senders)
        }
        return (0..<Int(received)).map { index in
            BatchEntry(
                count: min(lengths[index], stride), truncated: flags[index] & Int32(MSG_TRUNC) != 0,
                sender: withUnsafeBytes(of: &senders[index]) { SocketAddress(storage: $0.baseAddress!) })
        }
    }

    /// Sends datagrams in one call (`sendmmsg`): datagram `i` is `lengths[i]` bytes at `offsets[i]` of
    /// `payload`, to `destinations[i]`. Returns how many went out (the first ones, each whole). Throws
    /// ``Errno/wouldBlock`` when the outgoing queue is full.
    static func sendBatch(
        _ fd: Int32, _ payload: UnsafeRawBufferPointer, offsets: [Int], lengths: [Int],
        to destinations: [SocketAddress]
    ) throws(Errno) -> Int {
        var offsets = offsets
        var lengths = lengths
        var storages = [sockaddr_storage](repeating: sockaddr_storage(), count: destinations.count)
        var storageLengths = destinations.indices.map { destinations[$0].write(to: &storages[$0]) }
        let base = payload.baseAddress?.assumingMemoryBound(to: UInt8.self)
        return Int(
            try retrying {
                csockets_sendmmsg(fd, base, &offsets, &lengths, UInt32(destinations.count), &storages, &storageLengths)
            })
    }

    /// Dissolves a UDP socket's association with its peer (`connect` to `AF_UNSPEC`). Linux answers with
    /// success, or with `EAFNOSUPPORT` on some kernels after dissolving all the same: the result is ignored.
    static func dissolveAssociation(_ fd: Int32) {
        var unspecified = sockaddr()
        unspecified.sa_family = sa_family_t(AF_UNSPEC)
        _ = Glibc.connect(fd, &unspecified, socklen_t(MemoryLayout<sockaddr>.size))
    }

    /// The index of the network interface with this name (`if_nametoindex`), or `nil` when there is none.
    static func interfaceIndex(named name: String) -> UInt32? {
        let index = if_nametoindex(name)
        return index == 0 ? nil : index
    }

    /// Joins or leaves a multicast group: IPv4 on the interface with the IPv4 address `interface`; IPv6 on the
    /// interface with index `interfaceIndex` (0: the kernel chooses).
    static func setMembership(
        _ fd: Int32, group: SocketAddress, interface: SocketAddress, interfaceIndex: UInt32,
        join: Bool
    ) throws(Errno) {
        if group.family == .ipv4 {
            var request = ip_mreq()
            withUnsafeMutableBytes(of: &request.imr_multiaddr) { $0.copyBytes(from: group.bytes) }
            withUnsafeMutableBytes(of: &request.imr_interface) { $0.copyBytes(from: interface.bytes) }
            try withUnsafeBytes(of: &request) { (raw) throws(Errno) in
                try setRawOption(fd, Int32(IPPROTO_IP), join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, raw)
            }
        } else {
            var request = ipv6_mreq()
            withUnsafeMutableBytes(of: &request.ipv6mr_multiaddr) { $0.copyBytes(from: group.bytes) }
            request.ipv6mr_interface = interfaceIndex
            try withUnsafeBytes(of: &request) { (raw) throws(Errno) in
                try setRawOption(fd, Int32(IPPROTO_IPV6), join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP, raw)
            }
        }
    }

    /// The IPv4 address of the interface multicast datagrams are sent from (`IP_MULTICAST_IF`).
    static func multicastInterfaceAddress(_ fd: Int32) throws(Errno) -> SocketAddress {
        var address = in_addr()
        var length = socklen_t(MemoryLayout<in_addr>.size)
        _ = try retrying { getsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_IF, &address, &length) }
        return SocketAddress(family: .ipv4, bytes: withUnsafeBytes(of: &address) { Array($0) }, port: 0, scopeID: 0)
    }

    /// The name of the IPv6 interface multicast datagrams are sent from (`IPV6_MULTICAST_IF`): `"::"` when the
    /// kernel chooses, the index as a number when the interface has no name.
    static func multicastInterfaceName(_ fd: Int32) throws(Errno) -> String {
        let index = try getOption(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_IF)
        guard index != 0 else { return "::" }
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(UInt32(index), &name) != nil else { return "\(index)" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Sets the interface multicast datagrams are sent from: for IPv4 by its address, for IPv6 by its index.
    static func setMulticastInterface(
        _ fd: Int32, family: SocketAddress.Family, address: SocketAddress,
        index: UInt32
    ) throws(Errno) {
        if family == .ipv4 {
            var raw = in_addr()
            withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: address.bytes) }
            try withUnsafeBytes(of: &raw) { (bytes) throws(Errno) in
                try setRawOption(fd, Int32(IPPROTO_IP), IP_MULTICAST_IF, bytes)
            }
        } else {
            try setOption(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_IF, Int32(index))
        }
    }
}
#endif
