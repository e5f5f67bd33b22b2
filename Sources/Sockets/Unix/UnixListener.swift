#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif

/// A listening Unix-domain stream socket, on a path or an abstract name. Racket: a unix socket listener
/// (`unix-socket-listen`, `unix-socket-listener?`).
///
/// ```swift
/// let listener = try await UnixListener(path: "/tmp/app.sock", removeStaleSocket: true, removesPathOnClose: true)
/// try await serve(listener) { connection in
///     let peer = try await connection.peerCredentials()
///     try await connection.writeLine("hello, uid \(peer.userID)")
/// }
/// ```
///
/// It has ``TCPListener``'s shape and shares its machinery: ``accept()``, ``tryAccept()``, ``isAcceptReady()``,
/// ``connections``, ``close()``, ``acceptEvent()`` and ``readyEvent()`` for ``sync(_:)-(Event<T>...)``, custodian
/// ownership, and ``serve(_:maxConnections:gracePeriod:onError:handler:)``. Its clients are ``TCPConnection``s
/// (one implementation of the two halves), whose ``TCPConnection/unixPath`` is this listener's ``path`` and whose
/// ``TCPConnection/peerCredentials()`` name the client process.
///
/// **The socket file.** Binding creates a file at a ``UnixSocketPath/path(_:)``. As in Racket, closing the
/// listener does **not** delete it unless asked (`removesPathOnClose: true`), and a file left there (by a server
/// that crashed, say) makes the next listen fail with ``Errno/addressInUse`` unless asked to remove it
/// (`removeStaleSocket: true`). An abstract name has no file: it is free again as soon as its listener closes.
///
/// **Cancellation** is Racket's break: a cancelled ``accept()`` throws `CancellationError` and accepts nothing,
/// so the client waiting is accepted by a later call, never lost.
public actor UnixListener {
    nonisolated let handle: SocketHandle
    /// Where the listener listens.
    public nonisolated let path: UnixSocketPath
    /// Whether closing the listener (by ``close()``, its custodian, or dropping it) removes its socket file.
    public nonisolated let removesPathOnClose: Bool
    /// The socket file this listener made (device and inode), so that only that file is removed on close.
    private nonisolated let createdFile: (device: UInt64, inode: UInt64)?
    private(set) var closed = false
    /// The custodian that manages the listener, if any.
    nonisolated let custodian: Custodian?
    private(set) var shutDownByCustodianFlag = false

    /// The backlog when none is given: 128, as ``TCPListener/defaultBacklog`` (Racket's is 4).
    public static let defaultBacklog = TCPListener.defaultBacklog

    /// The listener runs on its event loop's queue, where its readiness events fire.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        handle.loop.executor.asUnownedSerialExecutor()
    }

    /// The listening descriptor.
    public nonisolated var fileDescriptor: Int32 { handle.descriptor }

    /// Starts listening on `path`. Racket: `unix-socket-listen`.
    ///
    /// - Parameters:
    ///   - path: a socket file path (at most 107 bytes) or an abstract name (``UnixSocketPath``).
    ///   - backlog: how many clients may wait to be accepted; default ``defaultBacklog``.
    ///   - removeStaleSocket: when a *socket file* is already at the path and nothing listens on it (a connect to
    ///     it is refused: its server is gone), remove it and listen. A socket someone still listens on, or a file
    ///     that is not a socket, is never removed: the listen fails with ``Errno/addressInUse``. Default `false`,
    ///     as in Racket.
    ///   - removesPathOnClose: remove the socket file when the listener closes (by ``close()``, by its custodian,
    ///     or when dropped), if the file is still the one this listener made. Default `false`, as in Racket,
    ///     where "the socket file must be deleted separately".
    /// - Throws: ``NetworkError``: an invalid path or backlog (``NetworkError/Code/invalidArgument``, before any
    ///   system call); ``Errno/addressInUse`` when the path is taken (its text says whether someone listens
    ///   there or the file looks stale); ``Errno/permissionDenied``, ``Errno/notDirectory``,
    ///   ``Errno/noSuchFileOrDirectory`` from the file system; ``NetworkError/Code/custodianShutDown``.
    public init(
        path: UnixSocketPath, backlog: Int = UnixListener.defaultBacklog, removeStaleSocket: Bool = false,
        removesPathOnClose: Bool = false
    ) async throws {
        let shown = path.description
        try path.validate("listen")
        guard backlog >= 0 else {
            throw NetworkError.invalid("listen", shown, "the backlog must not be negative, not \(backlog)")
        }
        let descriptor: Int32
        do {
            descriptor = try SystemSocket.openUnix()
        } catch {
            throw NetworkError.system(error, "listen", shown)
        }
        var failure: Errno?
        do { try SystemSocket.bind(descriptor, toUnix: path) } catch { failure = error }
        if failure == .addressInUse {
            let stale: Bool
            do {
                stale = try Self.isStale(path, removing: removeStaleSocket)
            } catch {
                SystemSocket.close(descriptor)
                throw error
            }
            guard stale else {
                SystemSocket.close(descriptor)
                throw NetworkError.system(.addressInUse, "listen", shown, detail: "another process listens there")
            }
            failure = nil
            do { try SystemSocket.bind(descriptor, toUnix: path) } catch { failure = error }
        }
        if failure == nil {
            do { try SystemSocket.listen(descriptor, backlog: backlog) } catch { failure = error }
        }
        if let failure {
            SystemSocket.close(descriptor)
            throw NetworkError.system(failure, "listen", shown)
        }
        createdFile = path.filePath.flatMap(SystemSocket.socketFile(at:))
        do {
            handle = try SocketHandle(descriptor: descriptor)
        } catch {
            if removesPathOnClose, let file = path.filePath { SystemSocket.unlink(file) }
            throw NetworkError.system(error, "listen", shown)
        }
        self.path = path
        self.removesPathOnClose = removesPathOnClose
        self.custodian = Custodian.current
        if let custodian, !custodian.register(self) {
            handle.close()
            removeFileIfAsked()
            throw NetworkError(.custodianShutDown, operation: "listen", address: shown)
        }
    }

    /// After `EADDRINUSE`: whether the path holds a socket file nobody listens on, removing it when `removing`.
    /// Throws the listen's error, with what was found, when it is stale but not to be removed, or not a socket.
    private static func isStale(_ path: UnixSocketPath, removing: Bool) throws -> Bool {
        let shown = path.description
        // An abstract name in use always has a socket bound to it.
        guard let file = path.filePath else { return false }
        guard SystemSocket.socketFile(at: file) != nil else {
            throw NetworkError.system(.addressInUse, "listen", shown, detail: "a file that is not a socket is there")
        }
        // Refused: a socket file with nobody listening on it (its server is gone).
        let probe = try? SystemSocket.openUnix()
        defer { if let probe { SystemSocket.close(probe) } }
        guard let probe else { return false }
        do {
            try SystemSocket.connect(probe, toUnix: path)
            return false
        } catch .connectionRefused {
            guard removing else {
                throw NetworkError.system(
                    .addressInUse, "listen", shown,
                    detail: "a socket file nobody listens on is there (left by a server that stopped?); "
                        + "remove it, or listen with removeStaleSocket: true")
            }
            SystemSocket.unlink(file)
            return true
        } catch {
            // A full backlog (EAGAIN) means someone listens; other errors: leave the file alone.
            return false
        }
    }

    deinit {
        handle.close()
        removeFileIfAsked()
    }

    /// Removes the socket file if asked to and it is still the one this listener made.
    private nonisolated func removeFileIfAsked() {
        guard removesPathOnClose, let file = path.filePath, let createdFile,
            let current = SystemSocket.socketFile(at: file), current == createdFile
        else { return }
        SystemSocket.unlink(file)
    }

    nonisolated var shownAddress: String { path.description }

    /// Accepts a client connection, waiting for one. Racket: `unix-socket-accept`.
    ///
    /// The connection's read and write timeouts and buffer mode are the task's current ones
    /// (``TCPTimeouts/current``, whose `accept` bounds this wait, and ``BufferMode/current``).
    ///
    /// - Throws: ``NetworkError`` when the listener is closed (also when it closes while this call waits),
    ///   when the accept timeout passes, or when the system fails (`EMFILE` when out of descriptors);
    ///   `CancellationError` when the task is cancelled, having accepted nothing.
    public func accept() async throws -> TCPConnection {
        try await acceptLoop()
    }

    /// Accepts a client if one is waiting; returns `nil` at once otherwise.
    public func tryAccept() throws -> TCPConnection? {
        try tryAccept(custodian: Custodian.current)
    }

    /// Whether a client waits to be accepted, so that ``accept()`` would not wait.
    /// - Throws: ``NetworkError`` when the listener is closed.
    public func isAcceptReady() throws -> Bool {
        try hasWaitingClient()
    }

    func acceptWaiting(custodian: Custodian?) throws -> TCPConnection? {
        try acceptOne(on: handle.descriptor) { client, _ in
            try TCPConnection.adoptUnix(descriptor: client, path: path, operation: "accept", custodian: custodian)
        }
    }

    /// Stops listening. Clients not yet accepted see their connection reset; accepted connections are not
    /// affected; an ``accept()`` waiting in another task throws at once. The socket file stays unless the
    /// listener was made with `removesPathOnClose: true`. Racket: `unix-socket-close-listener`.
    /// - Throws: ``NetworkError`` when the listener is already closed.
    public func close() throws {
        if shutDownByCustodianFlag {
            throw NetworkError(.custodianShutDown, operation: "close", address: shownAddress)
        }
        guard !closed else {
            throw NetworkError.closed("close", shownAddress, "the listener is already closed")
        }
        closed = true
        handle.close()
        removeFileIfAsked()
        custodian?.unregister(self)
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { closed }

    // MARK: The sequence of connections

    /// The accepted connections, until the listener closes or the iterating task is cancelled (then the
    /// sequence ends, without error). It rides out aborted clients and running out of descriptors as
    /// ``TCPListener/connections`` does (the same code).
    public nonisolated var connections: Connections { Connections(listener: self) }

    /// The accepted connections of a listener, as an `AsyncSequence`.
    public struct Connections: AsyncSequence, Sendable {
        public typealias Element = TCPConnection
        let listener: UnixListener

        /// Makes the iterator.
        public func makeAsyncIterator() -> Iterator { Iterator(listener: listener) }

        /// Accepts the next connection.
        public struct Iterator: AsyncIteratorProtocol {
            private var base: AcceptIterator<UnixListener>

            init(listener: UnixListener) {
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

    // MARK: Events

    /// Ready when a client waits; when chosen, accepts it. Racket: `unix-socket-accept-evt` (if it is not chosen,
    /// no connection is accepted). The connection is managed by the custodian current when the event was made.
    public nonisolated func acceptEvent() -> Event<TCPConnection> {
        let custodian = Custodian.current
        return Event(
            attempt: { try await self.tryAccept(custodian: custodian) },
            wait: { _ = await self.handle.wait(for: .read) })
    }

    /// Ready when ``accept()`` would not wait; its value is the listener itself. Racket: a unix socket listener
    /// used as an event.
    public nonisolated func readyEvent() -> Event<UnixListener> {
        Event(
            attempt: { try await self.isAcceptReady() ? self : nil },
            wait: { _ = await self.handle.wait(for: .read) })
    }
}

extension UnixListener: StreamListener {
    func shutDownByCustodian() async {
        shutDownByCustodianFlag = true
        closed = true
        handle.close()
        removeFileIfAsked()
    }
}
#endif
