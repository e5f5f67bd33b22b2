#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// A listening TCP server socket. Racket: a TCP listener (`tcp-listen`); MIT Scheme: a server socket
/// (`open-tcp-server-socket`).
///
/// ```swift
/// let listener = try await TCPListener(port: 0, host: "127.0.0.1")
/// print("listening on port \(listener.port)")
/// for try await connection in listener.connections {
///     Task { try await connection.write("hello\n"); try await connection.close() }
/// }
/// ```
///
/// With no host it listens on every address of both families: one IPv6 socket (IPv6 only) and one IPv4
/// socket on the same port, as Racket keeps several sockets for that. A host that resolves to both families
/// (`"localhost"`) gets a socket for each address.
///
/// **Cancellation** is Racket's break: a cancelled ``accept()`` throws `CancellationError` and accepts
/// nothing, so the client waiting is accepted by a later call, never lost.
public actor TCPListener {
    nonisolated let handle: SocketHandle
    /// The listening port: the one asked for, or the one the system chose for port 0.
    /// CHICKEN: `tcp-listener-port`.
    public nonisolated let port: Int
    /// The addresses listened on, one per socket.
    public nonisolated let localAddresses: [SocketAddress]
    private(set) var closed = false
    private var nextSocket = 0
    /// The custodian that manages the listener, if any.
    nonisolated let custodian: Custodian?
    private(set) var shutDownByCustodianFlag = false

    /// The backlog when none is given: 128 pending connections. Racket's and CHICKEN's default is 4, which
    /// makes clients of a busy server wait a second for a SYN retransmission; servers want more.
    public static let defaultBacklog = 128

    /// The listener runs on its event loop's queue, where its readiness events fire.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        handle.loop.executor.asUnownedSerialExecutor()
    }

    /// The listening descriptor (the first one, when there are several). CHICKEN: `tcp-listener-fileno`.
    public nonisolated var fileDescriptor: Int32 { handle.descriptor }
    /// Every listening descriptor.
    public nonisolated var fileDescriptors: [Int32] { handle.descriptors }

    /// Starts listening. Racket: `tcp-listen`; CHICKEN: `tcp-listen`; MIT Scheme: `open-tcp-server-socket`.
    ///
    /// - Parameters:
    ///   - port: 0...65535; 0 picks an ephemeral port, read it back from ``port``.
    ///   - host: listen only at the addresses of this host (`"127.0.0.1"`, `"::1"`, `"localhost"`);
    ///     `nil` (the default) for all addresses of both families.
    ///   - backlog: how many clients may wait to be accepted (Racket's `max-allow-wait`); default
    ///     ``defaultBacklog``.
    ///   - reuseAddress: set `SO_REUSEADDR`, so the port can be reused while old connections linger in
    ///     TIME_WAIT (Racket's `reuse?`). Default `false`, as in Racket.
    /// - Throws: ``NetworkError``: an invalid argument (before any system call), a host that does not resolve,
    ///   or the system's refusal (`EADDRINUSE`, `EACCES`, ...).
    public init(
        port: Int = 0, host: String? = nil, backlog: Int = TCPListener.defaultBacklog,
        reuseAddress: Bool = false
    ) async throws {
        let shown = Resolver.describe(host: host, service: "\(port)")
        guard (0...65535).contains(port) else {
            throw NetworkError.invalid("listen", shown, "port \(port) is outside 0...65535")
        }
        guard backlog >= 0 else {
            throw NetworkError.invalid("listen", shown, "the backlog must not be negative, not \(backlog)")
        }
        var addresses: [SocketAddress]
        if let host {
            try Resolver.validate(host: host, operation: "listen", shown: shown)
            addresses = try await Resolver.resolve(host: host, service: "\(port)", kind: .stream, passive: true)
        } else {
            addresses = [.any(.ipv4, port: port), .any(.ipv6, port: port)]
        }
        var lastError: Errno = .addressInUse
        var sockets: ([Int32], [SocketAddress])?
        for _ in 0..<8 where sockets == nil {
            do {
                sockets = try Self.bindAll(
                    addresses, backlog: backlog, reuseAddress: reuseAddress,
                    optionalIPv6: host == nil)
            } catch let failure as BindFailure {
                lastError = failure.errno
                // A port chosen for the first socket was taken for another family: choose again.
                if failure.retry, port == 0 { continue }
                throw NetworkError.system(failure.errno, "listen", failure.address.map { $0.description } ?? shown)
            }
        }
        guard let (descriptors, bound) = sockets else { throw NetworkError.system(lastError, "listen", shown) }
        do {
            handle = try SocketHandle(descriptors: descriptors)
        } catch {
            throw NetworkError.system(error, "listen", shown)
        }
        self.port = bound[0].port
        self.localAddresses = bound
        self.custodian = Custodian.current
        if let custodian, !custodian.register(self) {
            handle.close()
            throw NetworkError(.custodianShutDown, operation: "listen", address: shown)
        }
    }

    /// Listens on a service given by number or name (`"8080"`, `"http"`), as MIT Scheme's
    /// `open-tcp-server-socket` takes it; the other arguments are those of ``init(port:host:backlog:reuseAddress:)``.
    /// - Throws: ``NetworkError``: an unknown service name, or any error of the port-number form.
    public init(
        service: String, host: String? = nil, backlog: Int = TCPListener.defaultBacklog,
        reuseAddress: Bool = false
    ) async throws {
        var port = Int(service) ?? -1
        if port < 0 { port = try await Resolver.resolve(host: nil, service: service, passive: true)[0].port }
        try await self.init(port: port, host: host, backlog: backlog, reuseAddress: reuseAddress)
    }

    private struct BindFailure: Error {
        let errno: Errno
        let address: SocketAddress?
        let retry: Bool
    }

    /// Opens, binds and listens on a socket per address, all on one port. Closes them all on failure.
    private static func bindAll(
        _ addresses: [SocketAddress], backlog: Int, reuseAddress: Bool,
        optionalIPv6: Bool
    ) throws -> ([Int32], [SocketAddress]) {
        var descriptors: [Int32] = []
        var bound: [SocketAddress] = []
        var port = addresses[0].port
        do {
            for address in addresses {
                let target = address.withPort(port)
                let descriptor: Int32
                do {
                    descriptor = try SystemSocket.open(family: address.family, kind: .stream)
                } catch {
                    // No IPv6 on this machine: a listener on all addresses keeps its IPv4 socket alone.
                    if optionalIPv6, address.family == .ipv6, !descriptors.isEmpty { continue }
                    throw BindFailure(errno: error, address: target, retry: false)
                }
                do {
                    if reuseAddress { try SystemSocket.setOption(descriptor, SOL_SOCKET, SO_REUSEADDR, 1) }
                    if address.family == .ipv6 {
                        try SystemSocket.setIPv6Only(descriptor)
                    }
                    try SystemSocket.bind(descriptor, to: target)
                    try SystemSocket.listen(descriptor, backlog: backlog)
                    let local = (try SystemSocket.localAddress(descriptor)) ?? target
                    descriptors.append(descriptor)
                    bound.append(local)
                    port = local.port
                } catch {
                    SystemSocket.close(descriptor)
                    if optionalIPv6, address.family == .ipv6, !descriptors.isEmpty,
                        error == .addressNotAvailable || error == .addressFamilyNotSupported
                    {
                        continue
                    }
                    throw BindFailure(
                        errno: error, address: target,
                        retry: error == .addressInUse && !descriptors.isEmpty)
                }
            }
        } catch {
            descriptors.forEach(SystemSocket.close)
            throw error
        }
        return (descriptors, bound)
    }

    deinit {
        handle.close()
    }

    nonisolated var shownAddress: String { localAddresses[0].description }

    /// Accepts a client connection, waiting for one. Racket: `tcp-accept` and `tcp-accept/enable-break`;
    /// CHICKEN: `tcp-accept` with `tcp-accept-timeout`; MIT Scheme: `tcp-server-connection-accept` with
    /// `block? #t`.
    ///
    /// The connection's read and write timeouts and buffer mode are the task's current ones
    /// (``TCPTimeouts/current``, ``BufferMode/current``).
    ///
    /// - Throws: ``NetworkError`` when the listener is closed (also when it closes while this call waits),
    ///   when the accept timeout passes, or when the system fails (`EMFILE` when out of descriptors);
    ///   `CancellationError` when the task is cancelled, having accepted nothing.
    public func accept() async throws -> TCPConnection {
        try await acceptLoop()
    }

    /// Accepts a client if one is waiting; returns `nil` at once otherwise. MIT Scheme:
    /// `tcp-server-connection-accept` with `block? #f`.
    public func tryAccept() throws -> TCPConnection? {
        try tryAccept(custodian: Custodian.current)
    }

    /// Whether a client waits to be accepted, so that ``accept()`` would not wait. Racket and CHICKEN:
    /// `tcp-accept-ready?`.
    /// - Throws: ``NetworkError`` when the listener is closed.
    public func isAcceptReady() throws -> Bool {
        try hasWaitingClient()
    }

    /// One `accept4` on each socket in turn, starting after the one that served last.
    func acceptWaiting(custodian: Custodian?) throws -> TCPConnection? {
        let descriptors = handle.descriptors
        for offset in 0..<descriptors.count {
            let index = (nextSocket + offset) % descriptors.count
            let accepted = try acceptOne(on: descriptors[index]) { client, peer in
                try TCPConnection.adopt(descriptor: client, peer: peer, operation: "accept", custodian: custodian)
            }
            if let accepted {
                nextSocket = index + 1
                return accepted
            }
        }
        return nil
    }

    /// Stops listening. Clients not yet accepted see their connection reset; accepted connections are not
    /// affected; an ``accept()`` waiting in another task throws at once. Racket: `tcp-close`; MIT Scheme:
    /// `close-tcp-server-socket`.
    /// - Throws: ``NetworkError`` when the listener is already closed (as Racket's `tcp-close` raises).
    public func close() throws {
        if shutDownByCustodianFlag {
            throw NetworkError(.custodianShutDown, operation: "close", address: shownAddress)
        }
        guard !closed else {
            throw NetworkError.closed("close", shownAddress, "the listener is already closed")
        }
        closed = true
        handle.close()
        custodian?.unregister(self)
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { closed }

    /// The listening address and, for the remote end, `0.0.0.0` port 0 (`::` for an IPv6-only listener).
    /// Racket: `tcp-addresses` on a listener.
    /// - Throws: ``NetworkError`` when the listener is closed.
    public func addresses() throws -> TCPAddresses {
        try checkOpen("addresses")
        let local = localAddresses.first { $0.family == .ipv4 } ?? localAddresses[0]
        return SocketAddresses(local: local, remote: .any(local.family, port: 0))
    }

    // MARK: The sequence of connections

    /// The accepted connections, until the listener closes or the iterating task is cancelled (then the
    /// sequence ends, without error).
    ///
    /// Unlike ``accept()``, it rides out what a server should: a client that aborted before it was accepted
    /// is skipped, and when the process is out of descriptors (`EMFILE`, `ENFILE`) or memory it backs off
    /// (10 ms, doubling to 320 ms, never spinning) and accepts again once descriptors free up. Near the limit it
    /// keeps ``DescriptorLimit/minimumFree`` descriptors free: a Dispatch program on Linux must never run out
    /// entirely (libdispatch crashes the process when it cannot open a file).
    public nonisolated var connections: Connections { Connections(listener: self) }

    /// The accepted connections of a listener, as an `AsyncSequence`.
    public struct Connections: AsyncSequence, Sendable {
        public typealias Element = TCPConnection
        let listener: TCPListener

        /// Makes the iterator.
        public func makeAsyncIterator() -> Iterator { Iterator(listener: listener) }

        /// Accepts the next connection.
        public struct Iterator: AsyncIteratorProtocol {
            private var base: AcceptIterator<TCPListener>

            init(listener: TCPListener) {
                base = AcceptIterator(listener: listener)
            }

            /// The next connection; `nil` once the listener is closed or the task is cancelled.
            public mutating func next() async throws -> TCPConnection? {
                try await base.next(isolation: nil)
            }

            /// The next connection, waiting in the caller's isolation (no hop off the caller's actor to wait).
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> TCPConnection? {
                try await base.next(isolation: actor)
            }
        }
    }

    /// Out of descriptors or memory: a server waits and accepts again.
    static func isExhaustion(_ errno: Errno) -> Bool {
        errno == .tooManyOpenFiles || errno == .tooManyOpenFilesInSystem || errno == .noBufferSpace
            || errno == .noMemory
    }
}

extension TCPListener: StreamListener {
    func shutDownByCustodian() async {
        shutDownByCustodianFlag = true
        closed = true
        handle.close()
    }
}
#endif
