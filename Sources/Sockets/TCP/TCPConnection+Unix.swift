#if SOCKETS_PLATFORM_SUPPORTED
// MARK: Unix-domain connections

extension TCPConnection {
    /// Connects to a Unix-domain stream socket: a path, or a name in Linux's abstract namespace. Racket:
    /// `unix-socket-connect`. The result is a ``TCPConnection`` like any other (two halves, buffering, timeouts,
    /// events, custodian), whose ``unixPath`` is `path`.
    ///
    /// A Unix-domain connect completes at once, or fails at once: ``Errno/noSuchFileOrDirectory`` (`ENOENT`) when
    /// no socket is at the path, ``Errno/connectionRefused`` when a socket file is there but nothing listens on it
    /// (one left by a server that stopped), ``Errno/permissionDenied``, ``Errno/notDirectory``. Only a listener whose
    /// backlog is full makes it wait: it tries again (1 ms, doubling to 50 ms) until `timeout` passes.
    ///
    /// **Cancellation**: either returns a connection or throws `CancellationError`, never both; the socket of a
    /// cancelled connect is closed.
    ///
    /// - Parameters:
    ///   - path: where the server listens (``UnixSocketPath/isValid``).
    ///   - timeout: how long to keep trying while the listener's backlog is full. Default:
    ///     ``TCPTimeouts/current``'s `connect` (none).
    /// - Throws: ``NetworkError``: an invalid path (``NetworkError/Code/invalidArgument``, before any system call),
    ///   the system's refusal, or the timeout.
    public static func connect(
        unixPath path: UnixSocketPath, timeout: Duration? = TCPTimeouts.current.connect
    ) async throws -> TCPConnection {
        try path.validate("connect")
        let shown = path.description
        let deadline = timeout.map { ContinuousClock.now + $0 }
        if Task.isCancelled { throw CancellationError() }
        let descriptor: Int32
        do {
            descriptor = try SystemSocket.openUnix()
        } catch {
            throw NetworkError.system(error, "connect", shown)
        }
        var backoff = Duration.milliseconds(1)
        while true {
            do {
                try SystemSocket.connect(descriptor, toUnix: path)
                break
            } catch {
                guard error == .wouldBlock else {
                    SystemSocket.close(descriptor)
                    throw NetworkError.system(
                        error, "connect", shown,
                        detail: error == .connectionRefused
                            ? "a socket file is there but nothing listens on it" : nil)
                }
            }
            // The listener's backlog is full: try again shortly, until the deadline.
            var pause = backoff
            if let deadline {
                let left = deadline - ContinuousClock.now
                if left <= .zero {
                    SystemSocket.close(descriptor)
                    throw NetworkError(
                        .timedOut, operation: "connect", address: shown,
                        detail: "the listener's backlog stayed full for \(timeout ?? .zero)")
                }
                pause = min(pause, left)
            }
            do {
                try await Task.sleep(for: pause)
            } catch {
                SystemSocket.close(descriptor)
                throw CancellationError()
            }
            backoff = min(backoff * 2, .milliseconds(50))
        }
        return try adoptUnix(descriptor: descriptor, path: path, operation: "connect", custodian: Custodian.current)
    }

    /// Wraps a connected Unix-domain descriptor (`connect`ed, or `accept`ed from a ``UnixListener`` on `path`):
    /// registers it with an event loop and with `custodian`. Closes `descriptor` and throws when it cannot.
    static func adoptUnix(
        descriptor: Int32, path: UnixSocketPath, operation: String, custodian: Custodian?
    ) throws -> TCPConnection {
        let handle: SocketHandle
        do {
            handle = try SocketHandle(descriptor: descriptor)
        } catch {
            throw NetworkError.system(error, operation, path.description)
        }
        // No hosts or ports: the IP addresses are placeholders (0.0.0.0:0), never shown (see `shownPeer`).
        let none = SocketAddress.any(.ipv4, port: 0)
        return try TCPConnection(handle: handle, local: none, remote: none, custodian: custodian, unixPath: path)
            .registered(operation)
    }

    /// For a Unix-domain connection, the socket's path or abstract name: the one connected to, or the one the
    /// accepting ``UnixListener`` listens on. `nil` for a TCP connection. (On a Unix-domain connection
    /// ``localAddress`` and ``remoteAddress`` are the placeholder `0.0.0.0:0`.)
    public nonisolated var unixPath: UnixSocketPath? { unixSocketPath }

    /// The process, user and group at the other end of a Unix-domain connection (Linux's `SO_PEERCRED`): the
    /// client's for an accepted connection, the server's for one made by ``connect(unixPath:timeout:)``.
    /// - Throws: ``NetworkError``: ``NetworkError/Code/invalidArgument`` on a TCP connection;
    ///   ``NetworkError/Code/closed`` once both halves are closed.
    public func peerCredentials() throws -> PeerCredentials {
        try checkOpen("peer credentials")
        guard unixSocketPath != nil else {
            throw NetworkError.invalid(
                "peer credentials", shownPeer, "peer credentials exist for Unix-domain connections only")
        }
        do {
            return try SystemSocket.peerCredentials(handle.descriptor)
        } catch {
            throw NetworkError.system(error, "peer credentials", shownPeer)
        }
    }

    /// The peer as error texts show it: `host:port`, or the Unix socket's path (`@name` for an abstract name).
    nonisolated var shownPeer: String { unixSocketPath?.description ?? remoteAddress.description }

    /// Throws ``NetworkError/Code/invalidArgument`` for an operation that needs IP addresses, on a Unix-domain
    /// connection.
    nonisolated func checkNotUnix(_ operation: String) throws {
        if let unixSocketPath {
            throw NetworkError.invalid(
                operation, unixSocketPath.description,
                "a Unix-domain connection has no IP addresses or ports (see unixPath)")
        }
    }
}
#endif
