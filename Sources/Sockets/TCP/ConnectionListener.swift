#if SOCKETS_PLATFORM_SUPPORTED
/// A listener whose clients are ``TCPConnection``s: ``TCPListener`` (Racket: `tcp-listen`) and ``UnixListener``
/// (Racket: `unix-socket-listen`). What ``serve(_:maxConnections:gracePeriod:onError:handler:)`` serves.
///
/// **Cancellation**: as each listener's ``accept()`` says: a cancelled accept throws `CancellationError` and
/// accepts nothing; the ``connections`` sequence ends (`nil`) when its task is cancelled.
public protocol ConnectionListener: Actor {
    /// The sequence of accepted connections.
    associatedtype Connections: AsyncSequence, Sendable where Connections.Element == TCPConnection
    /// Accepts a client, waiting for one.
    func accept() async throws -> TCPConnection
    /// The accepted connections, until the listener closes or the iterating task is cancelled.
    nonisolated var connections: Connections { get }
    /// Stops listening.
    func close() throws
}

/// The machinery ``TCPListener`` and ``UnixListener`` share: the accept loop, one `accept4`, and the loop behind
/// their `connections` sequences. One implementation, so that both keep the same guarantees.
protocol StreamListener: ConnectionListener, CustodianManaged {
    /// The listening descriptors and the tasks waiting on them.
    nonisolated var handle: SocketHandle { get }
    /// The listening address, as error texts show it.
    nonisolated var shownAddress: String { get }
    /// Whether the listener was closed (by `close()` or its custodian).
    var closed: Bool { get }
    /// Whether its custodian shut it down.
    var shutDownByCustodianFlag: Bool { get }
    /// Accepts a waiting client into `custodian`, or returns `nil` when none waits.
    func acceptWaiting(custodian: Custodian?) throws -> TCPConnection?
}

extension StreamListener {
    /// Throws when the listener is closed (or its custodian shut down).
    func checkOpen(_ operation: String) throws {
        if shutDownByCustodianFlag {
            throw NetworkError(.custodianShutDown, operation: operation, address: shownAddress)
        }
        if closed { throw NetworkError.closed(operation, shownAddress, "the listener is closed") }
    }

    /// `tryAccept()`, and the attempt of `acceptEvent()`: accepts a waiting client into `custodian`, or returns
    /// `nil`.
    func tryAccept(custodian: Custodian?) throws -> TCPConnection? {
        try checkOpen("accept")
        return try acceptWaiting(custodian: custodian)
    }

    /// `isAcceptReady()`: whether a client waits on any of the listening descriptors.
    func hasWaitingClient() throws -> Bool {
        try checkOpen("accept-ready?")
        return handle.descriptors.contains(where: SystemSocket.isReadable)
    }

    /// `accept()`: cancellation is checked before each `accept4` and while waiting; a connection `accept4`
    /// returned is returned, so a cancelled accept loses no client.
    func acceptLoop() async throws -> TCPConnection {
        let timeout = TCPTimeouts.current.accept
        let deadline = timeout?.deadlineFromNow
        while true {
            try checkOpen("accept")
            if Task.isCancelled { throw CancellationError() }
            if let connection = try acceptWaiting(custodian: Custodian.current) { return connection }
            switch await handle.wait(for: .read, deadline: deadline) {
            case .ready: continue
            case .closed: try checkOpen("accept")
            case .cancelled: throw CancellationError()
            case .timedOut:
                throw NetworkError(
                    .timedOut, operation: "accept", address: shownAddress,
                    detail: "no client within \(timeout?.shortDescription ?? "the timeout")")
            }
        }
    }

    /// One `accept4` on `descriptor`, the client wrapped by `adopt`; `nil` when no client waits. A client that gave
    /// up between its connect and the accept (`ECONNABORTED`) is skipped.
    func acceptOne(
        on descriptor: Int32, adopt: (Int32, SocketAddress?) throws -> TCPConnection
    ) throws -> TCPConnection? {
        while true {
            do {
                let (client, peer) = try SystemSocket.accept(descriptor)
                return try adopt(client, peer)
            } catch let errno as Errno {
                if errno == .wouldBlock { return nil }
                if errno == .connectionAbort { continue }
                throw NetworkError.system(errno, "accept", shownAddress)
            }
        }
    }
}

/// The iterator behind a listener's `connections`: accepts until the listener closes or the task is cancelled,
/// riding out aborted clients and running out of descriptors (see ``TCPListener/connections``).
struct AcceptIterator<Listener: StreamListener> {
    let listener: Listener
    /// The last accept used up the headroom (or failed for lack of descriptors): look before accepting.
    private var nearLimit = false

    init(listener: Listener) {
        self.listener = listener
    }

    mutating func next(isolation actor: isolated (any Actor)?) async throws -> TCPConnection? {
        var backoff = Duration.milliseconds(10)
        while true {
            do {
                if nearLimit, !DescriptorLimit.hasHeadroom {
                    throw NetworkError.system(.tooManyOpenFiles, "accept")
                }
                let connection = try await listener.accept()
                nearLimit = DescriptorLimit.isInReserve(connection.fileDescriptor)
                return connection
            } catch is CancellationError {
                return nil
            } catch let error as NetworkError {
                if error.code == .closed { return nil }
                // A task's accept timeout means no client came in time: a server keeps waiting.
                if error.code == .timedOut { continue }
                guard let errno = error.errno, TCPListener.isExhaustion(errno) else { throw error }
                nearLimit = true
                do {
                    try await Task.sleep(for: backoff)
                } catch {
                    return nil
                }
                backoff = Swift.min(backoff * 2, .milliseconds(320))
            }
        }
    }
}
#endif
