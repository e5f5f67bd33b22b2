#if SOCKETS_PLATFORM_SUPPORTED
// MARK: Connecting

extension TCPConnection {
    /// Connects to `host` at `port`. A name's addresses are raced as ``ConnectStrategy`` says: by default Happy
    /// Eyeballs v2 (RFC 8305), which resolves IPv6 and IPv4 at once, interleaves them, and starts the next
    /// address 250 ms after the last while the earlier attempts keep going; the first to connect wins and every
    /// other attempt is closed. ``ConnectStrategy/sequential`` tries them one after another instead, as Racket does.
    ///
    /// Racket: `tcp-connect` (and `tcp-connect/enable-break`: cancellation either returns a connection or
    /// throws `CancellationError`, never both; every attempt under way is closed). CHICKEN: `tcp-connect` with
    /// `tcp-connect-timeout`.
    ///
    /// - Parameters:
    ///   - host: a name or numeric address (`"localhost"`, `"127.0.0.1"`, `"::1"`).
    ///   - port: 1...65535.
    ///   - localHost: the local address to connect from; needs `localPort`.
    ///   - localPort: the local port to connect from (1...65535); alone, the address is chosen automatically.
    ///   - timeout: one deadline for the whole connect, name resolution included. Default:
    ///     ``TCPTimeouts/current``'s `connect`.
    ///   - strategy: how the addresses are tried. Default: ``ConnectStrategy/current`` (Happy Eyeballs).
    /// - Throws: ``NetworkError``: an invalid argument (before any system call), a resolution failure, the
    ///   failure of every address (each listed in the text with its reason), or the timeout.
    public static func connect(
        host: String, port: Int, localHost: String? = nil, localPort: Int? = nil,
        timeout: Duration? = TCPTimeouts.current.connect,
        strategy: ConnectStrategy = .current
    ) async throws -> TCPConnection {
        guard (1...65535).contains(port) else {
            throw NetworkError.invalid(
                "connect", Resolver.describe(host: host, service: "\(port)"),
                "port \(port) is outside 1...65535")
        }
        return try await connect(
            host: host, service: String(port), localHost: localHost, localPort: localPort,
            timeout: timeout, strategy: strategy)
    }

    /// Connects to `"host:port"`, `"host:service"` or `"[v6-address]:port"` (CHICKEN's one-argument
    /// `tcp-connect`; the service is a number or a name such as `"http"`), racing the addresses as
    /// ``connect(host:port:localHost:localPort:timeout:strategy:)`` does.
    public static func connect(
        to endpoint: String, timeout: Duration? = TCPTimeouts.current.connect,
        strategy: ConnectStrategy = .current
    ) async throws -> TCPConnection {
        let parsed = try Endpoint(parsing: endpoint)
        return try await connect(host: parsed.host, service: parsed.service, timeout: timeout, strategy: strategy)
    }

    /// Connects to `host` at a service given as a port number or a name (`"http"`, `"www"`), as MIT Scheme's
    /// `open-tcp-stream-socket` does, racing the addresses as
    /// ``connect(host:port:localHost:localPort:timeout:strategy:)`` does.
    public static func connect(
        host: String, service: String, localHost: String? = nil, localPort: Int? = nil,
        timeout: Duration? = TCPTimeouts.current.connect,
        strategy: ConnectStrategy = .current
    ) async throws -> TCPConnection {
        let shown = Resolver.describe(host: host, service: service)
        try Resolver.validate(host: host, operation: "connect", shown: shown)
        if let port = Int(service), !(1...65535).contains(port) {
            throw NetworkError.invalid("connect", shown, "port \(port) is outside 1...65535")
        }
        if localHost != nil, localPort == nil {
            throw NetworkError.invalid("connect", shown, "a local host needs a local port")
        }
        if let localPort, !(1...65535).contains(localPort) {
            throw NetworkError.invalid("connect", shown, "local port \(localPort) is outside 1...65535")
        }
        var race = try ConnectRace(shown: shown, timeout: timeout, strategy: strategy)
        if let localPort {
            if let localHost {
                race.locals = try await race.beforeDeadline {
                    try await Resolver.resolve(
                        host: localHost, service: String(localPort), kind: .stream,
                        passive: true)
                }
            } else {
                race.locals = [.any(.ipv4, port: localPort), .any(.ipv6, port: localPort)]
            }
            race.needsLocal = true
        }
        if let port = Int(service), let address = SocketAddress(numericHost: host, port: port) {
            return try await race.connect(to: [address])
        }
        return try await race.connect(host: host, service: service)
    }

    /// Connects to the first of `addresses` that answers, racing them in the order given as `strategy` says
    /// (Happy Eyeballs: the next address starts when the last fails or after the attempt delay, while the
    /// earlier attempts keep going; sequential: one after another). Every attempt that loses is closed.
    ///
    /// For a caller that resolved names itself, or keeps a list of replicas. Cancellation either returns a
    /// connection or throws `CancellationError`, never both, and closes every attempt under way.
    ///
    /// - Parameters:
    ///   - addresses: at least one address, each with a port in 1...65535.
    ///   - timeout: one deadline for the whole connect. Default: ``TCPTimeouts/current``'s `connect`.
    ///   - strategy: how the addresses are tried. Default: ``ConnectStrategy/current`` (Happy Eyeballs).
    /// - Throws: ``NetworkError``: an empty list or a bad port (``NetworkError/Code/invalidArgument``), the
    ///   failure of every address (each listed with its reason), or the timeout.
    public static func connect(
        to addresses: [SocketAddress], timeout: Duration? = TCPTimeouts.current.connect,
        strategy: ConnectStrategy = .current
    ) async throws -> TCPConnection {
        let shown =
            addresses.count <= 3
            ? addresses.map(\.description).joined(separator: ", ")
            : addresses.prefix(3).map(\.description).joined(separator: ", ") + " and \(addresses.count - 3) more"
        guard !addresses.isEmpty else { throw NetworkError.invalid("connect", nil, "the list of addresses is empty") }
        if let bad = addresses.first(where: { !(1...65535).contains($0.port) }) {
            throw NetworkError.invalid("connect", shown, "port \(bad.port) of \(bad) is outside 1...65535")
        }
        return try await ConnectRace(shown: shown, timeout: timeout, strategy: strategy).connect(to: addresses)
    }
}
#endif
