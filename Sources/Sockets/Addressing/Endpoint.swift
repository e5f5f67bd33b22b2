#if SOCKETS_PLATFORM_SUPPORTED
/// A host and a port or service name, as text: what `"host:port"` strings parse into.
///
/// CHICKEN's `tcp-connect` takes `"HOSTNAME:PORT"` where the port is a number or a service name; MIT
/// Scheme's `open-tcp-stream-socket` takes a host and a service. An IPv6 literal takes brackets:
/// `"[::1]:8080"`.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// The host name or numeric address, without brackets.
    public var host: String
    /// The port number or service name (`"8080"`, `"http"`).
    public var service: String

    /// Makes an endpoint from its parts.
    public init(host: String, service: String) {
        self.host = host
        self.service = service
    }

    /// Parses `"host:port"`, `"host:service"` or `"[v6-address]:port"`.
    ///
    /// - Throws: ``NetworkError`` (``NetworkError/Code/invalidArgument``) naming what is missing.
    public init(parsing text: String) throws {
        func fail(_ why: String) -> NetworkError {
            NetworkError.invalid("parse", text.count > 80 ? String(text.prefix(40)) + "…" : "\"\(text)\"", why)
        }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw fail("an opening [ has no closing ]") }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), rest.count > 1 else { throw fail("expected host:port, the port is missing") }
            self.init(host: host, service: String(rest.dropFirst()))
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw fail("expected host:port, the port is missing") }
            let host = String(text[..<colon])
            if host.contains(":") { throw fail("an IPv6 address needs brackets, as in [::1]:80") }
            let service = String(text[text.index(after: colon)...])
            guard !service.isEmpty else { throw fail("expected host:port, the port is missing") }
            guard !host.isEmpty else { throw fail("expected host:port, the host is missing") }
            self.init(host: host, service: service)
        }
        guard !host.isEmpty else { throw fail("expected host:port, the host is missing") }
    }

    /// `host:service`, with brackets around an IPv6 host.
    public var description: String { Resolver.describe(host: host, service: service) }
}
#endif
