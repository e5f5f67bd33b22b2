#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address with a port: where a socket is bound, or where its peer is.
///
/// Its ``host`` is the numeric text Racket's `tcp-addresses` returns (`"127.0.0.1"`, `"::1"`), and its
/// ``description`` is `host:port`, with brackets for IPv6 (`"[::1]:8080"`).
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// The protocol family of an address.
    public enum Family: Sendable, Hashable {
        /// IPv4 (`AF_INET`).
        case ipv4
        /// IPv6 (`AF_INET6`).
        case ipv6

        var rawValue: Int32 { self == .ipv4 ? AF_INET : AF_INET6 }
    }

    /// IPv4 or IPv6.
    public let family: Family
    /// The port number, 0...65535.
    public let port: Int
    /// The IPv6 scope (interface index); 0 for IPv4.
    public let scopeID: UInt32
    /// The address bytes in network order: 4 for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    /// The numeric host text, such as `"127.0.0.1"` or `"::1"`.
    public var host: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        bytes.withUnsafeBytes { raw in
            _ = inet_ntop(family.rawValue, raw.baseAddress, &text, socklen_t(text.count))
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `host:port`, with the host in brackets for IPv6: `"127.0.0.1:80"`, `"[::1]:80"`.
    public var description: String {
        family == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Makes an address from a numeric host (`"127.0.0.1"`, `"::1"`) and a port, or returns `nil` when the
    /// host is not numeric or the port is outside 0...65535. Names are resolved by ``Resolver``.
    public init?(numericHost: String, port: Int) {
        guard (0...65535).contains(port) else { return nil }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, numericHost, &v4) == 1 {
            self.init(family: .ipv4, bytes: withUnsafeBytes(of: &v4) { Array($0) }, port: port, scopeID: 0)
        } else if inet_pton(AF_INET6, numericHost, &v6) == 1 {
            self.init(family: .ipv6, bytes: withUnsafeBytes(of: &v6) { Array($0) }, port: port, scopeID: 0)
        } else {
            return nil
        }
    }

    /// The wildcard address of a family (`0.0.0.0` or `::`), as a listener with no host binds.
    public static func any(_ family: Family, port: Int) -> SocketAddress {
        SocketAddress(
            family: family, bytes: [UInt8](repeating: 0, count: family == .ipv4 ? 4 : 16),
            port: port, scopeID: 0)
    }

    init(family: Family, bytes: [UInt8], port: Int, scopeID: UInt32) {
        self.family = family
        self.bytes = bytes
        self.port = port
        self.scopeID = scopeID
    }

    /// The same address with another port.
    public func withPort(_ port: Int) -> SocketAddress {
        SocketAddress(family: family, bytes: bytes, port: port, scopeID: scopeID)
    }

    /// Whether this is a multicast address (224.0.0.0/4 or ff00::/8).
    public var isMulticast: Bool {
        family == .ipv4 ? (bytes[0] & 0xF0) == 0xE0 : bytes[0] == 0xFF
    }

    /// Reads an address the system wrote; `nil` for a family other than IPv4 and IPv6.
    init?(storage: UnsafeRawPointer) {
        let family = storage.load(as: sockaddr.self).sa_family
        if Int32(family) == AF_INET {
            let address = storage.loadUnaligned(as: sockaddr_in.self)
            var raw = address.sin_addr
            self.init(
                family: .ipv4, bytes: withUnsafeBytes(of: &raw) { Array($0) },
                port: Int(UInt16(bigEndian: address.sin_port)), scopeID: 0)
        } else if Int32(family) == AF_INET6 {
            let address = storage.loadUnaligned(as: sockaddr_in6.self)
            var raw = address.sin6_addr
            self.init(
                family: .ipv6, bytes: withUnsafeBytes(of: &raw) { Array($0) },
                port: Int(UInt16(bigEndian: address.sin6_port)), scopeID: address.sin6_scope_id)
        } else {
            return nil
        }
    }

    /// Calls `body` with this address as a `sockaddr` and its length.
    func withSockAddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var storage = sockaddr_storage()
        let length = write(to: &storage)
        return try withUnsafePointer(to: &storage) { (pointer) throws(E) -> R in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(E) -> R in
                try body(address, length)
            }
        }
    }

    /// Writes this address into `storage`; returns its length.
    @discardableResult
    func write(to storage: inout sockaddr_storage) -> socklen_t {
        withUnsafeMutableBytes(of: &storage) { raw in
            if family == .ipv4 {
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = UInt16(port).bigEndian
                withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: bytes) }
                raw.storeBytes(of: address, as: sockaddr_in.self)
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            } else {
                var address = sockaddr_in6()
                address.sin6_family = sa_family_t(AF_INET6)
                address.sin6_port = UInt16(port).bigEndian
                address.sin6_scope_id = scopeID
                withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: bytes) }
                raw.storeBytes(of: address, as: sockaddr_in6.self)
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            }
        }
    }
}
#endif
