#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A UDP socket. Racket: the value of `udp-open-socket` and every `udp-…` procedure on it.
///
/// ```swift
/// let socket = try await UDPSocket()
/// try await socket.bind(host: "127.0.0.1", port: 0)
/// let port = try await socket.addresses().localPort
/// let datagram = try await socket.receive()
/// try await socket.send(datagram.bytes, to: datagram.address)   // echo it
/// ```
///
/// Datagram boundaries are kept: one send is one receive. Empty datagrams go both ways. A datagram longer
/// than the room a receive gives is cut to it, and the receipt says so (``UDPReceipt/truncated``).
///
/// **Cancellation** is Racket's break: a cancelled receive consumes no datagram; a cancelled send either
/// sent the whole datagram or nothing (`CancellationError`).
///
/// **Receives and sends run in the caller's isolation.** ``receive(maxLength:)``, ``receive(into:range:)``,
/// ``receiveBatch(maxCount:maxLength:)``, ``datagrams``, ``send(_:range:to:)`` and ``send(_:range:)`` are
/// `nonisolated(nonsending)`: they make their system call on the caller's thread, with no hop to the socket's
/// event loop and back (they wait for readiness there only when the system call says `EAGAIN`). A receive
/// takes up to 32 datagrams that are waiting in one `recvmmsg`, returns the first and keeps the others, in
/// order, for the receives that follow; every receive, readiness query and receive event takes from those
/// first, and ``close()`` drops them as it drops the kernel's queue.
public actor UDPSocket {
    nonisolated let handle: SocketHandle
    /// The protocol family, fixed when the socket was made.
    public nonisolated let family: SocketAddress.Family
    /// The custodian that manages the socket, if any.
    nonisolated let custodian: Custodian?

    /// What the sends and receives check, which run off the actor: under a lock rather than the actor's.
    struct Status {
        var closed = false
        var shutDownByCustodian = false
        var bound = false
        var peer: SocketAddress?

        func checkOpen(_ operation: String) throws {
            if shutDownByCustodian { throw NetworkError(.custodianShutDown, operation: operation) }
            if closed { throw NetworkError.closed(operation, nil, "the UDP socket is closed") }
        }
    }

    nonisolated let status = Lock(Status())
    /// The datagrams read ahead. Every receive holds this lock from its look at the queue to its system call.
    nonisolated let inbox = Lock(DatagramInbox())

    /// The longest payload of a UDP datagram over IPv4.
    public static let maximumDatagramLength = 65_507

    /// The socket runs on its event loop's queue, where its readiness events fire.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        handle.loop.executor.asUnownedSerialExecutor()
    }

    /// The event loop the socket is registered with.
    public nonisolated var eventLoop: EventLoop { handle.loop }

    /// The descriptor. Valid until closed.
    public nonisolated var fileDescriptor: Int32 { handle.descriptor }

    /// Opens an unbound, unconnected socket. Racket: `udp-open-socket`.
    ///
    /// The family comes from `familyHost` and `familyPort` when either is given (the first address they
    /// resolve to): pass the host and port you will send to or bind to. With neither, the socket is IPv4.
    /// Sending to broadcast addresses is allowed, as in Racket.
    public init(familyHost: String? = nil, familyPort: Int? = nil) async throws {
        var family = SocketAddress.Family.ipv4
        if familyHost != nil || familyPort != nil {
            let port = familyPort ?? 0
            guard (0...65535).contains(port) else {
                throw NetworkError.invalid("open", nil, "port \(port) is outside 0...65535")
            }
            if let familyHost {
                try Resolver.validate(host: familyHost, operation: "open", shown: familyHost)
            }
            let addresses = try await Resolver.resolve(host: familyHost, service: "\(port)", kind: .datagram)
            family = addresses[0].family
        }
        try self.init(family: family)
    }

    /// Opens an unbound socket of the given family.
    public init(family: SocketAddress.Family) throws {
        let descriptor: Int32
        do {
            descriptor = try SystemSocket.open(family: family, kind: .datagram)
            try? SystemSocket.setOption(descriptor, SOL_SOCKET, SO_BROADCAST, 1)
            handle = try SocketHandle(descriptor: descriptor, armedOnDemand: true)
        } catch {
            throw NetworkError.system(error, "open")
        }
        self.family = family
        self.custodian = Custodian.current
        if let custodian, !custodian.register(self) {
            handle.close()
            throw NetworkError(.custodianShutDown, operation: "open")
        }
    }

    deinit {
        handle.close()
    }

    // MARK: State

    /// The local address, for messages. On the actor (which closes the descriptor), or inside
    /// ``SocketHandle/withOpenDescriptor(_:)`` with its descriptor.
    nonisolated func describeLocal(_ descriptor: Int32? = nil) -> String {
        guard !status.withLock(\.closed),
            let local = try? SystemSocket.localAddress(descriptor ?? handle.descriptor)
        else { return "a UDP socket" }
        return local.description
    }

    var shownLocal: String { describeLocal() }

    nonisolated func checkOpen(_ operation: String) throws {
        try status.withLock { try $0.checkOpen(operation) }
    }

    private nonisolated var peer: SocketAddress? { status.withLock(\.peer) }

    /// Whether the socket is bound to a local address and port. Racket: `udp-bound?`.
    public var isBound: Bool { status.withLock(\.bound) }

    /// Whether the socket is connected to a peer. Racket: `udp-connected?`.
    public var isConnected: Bool { peer != nil }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { status.withLock(\.closed) }

    // MARK: Binding and connecting

    /// Binds the socket to a local port, at one address or all. Racket: `udp-bind!`.
    ///
    /// - Parameters:
    ///   - host: accept datagrams only at this address; `nil` for all of the machine's addresses.
    ///   - port: 0...65535; 0 picks an ephemeral port (read it back from ``addresses()``).
    ///   - reuseAddress: set `SO_REUSEADDR` first, so several sockets can share a multicast port.
    /// - Throws: ``NetworkError`` when the socket is already bound or closed, for a bad argument, or when the
    ///   system refuses (`EADDRINUSE`).
    public func bind(host: String? = nil, port: Int, reuseAddress: Bool = false) async throws {
        let shown = Resolver.describe(host: host, service: "\(port)")
        try checkOpen("bind")
        guard (0...65535).contains(port) else {
            throw NetworkError.invalid("bind", shown, "port \(port) is outside 0...65535")
        }
        guard !isBound else { throw NetworkError.invalid("bind", shown, "the socket is already bound") }
        let address: SocketAddress
        if let host {
            try Resolver.validate(host: host, operation: "bind", shown: shown)
            address = try await Resolver.resolve(
                host: host, service: "\(port)", kind: .datagram, passive: true,
                family: family)[0]
        } else {
            address = .any(family, port: port)
        }
        try checkOpen("bind")
        guard !isBound else { throw NetworkError.invalid("bind", shown, "the socket is already bound") }
        do {
            if reuseAddress { try SystemSocket.setOption(handle.descriptor, SOL_SOCKET, SO_REUSEADDR, 1) }
            try SystemSocket.bind(handle.descriptor, to: address)
        } catch {
            throw NetworkError.system(error, "bind", address.description)
        }
        status.withLock { $0.bound = true }
    }

    /// Connects the socket to a peer, or disconnects it when both `host` and `port` are `nil`. A connected socket
    /// sends with ``send(_:range:)`` and receives only from its peer. Connect, re-connect and disconnect any
    /// number of times. Racket: `udp-connect!`.
    ///
    /// - Throws: ``NetworkError``: only one of `host` and `port` given (Racket's `exn:fail:contract`), a port
    ///   outside 1...65535, a closed socket, or the system's refusal.
    public func connect(host: String?, port: Int?) async throws {
        try checkOpen("connect")
        guard let host, let port else {
            guard host == nil, port == nil else {
                throw NetworkError.invalid(
                    "connect", host ?? port.map { "port \($0)" },
                    "give both a host and a port, or neither to disconnect")
            }
            return try disconnect()
        }
        let shown = Resolver.describe(host: host, service: "\(port)")
        guard (1...65535).contains(port) else {
            throw NetworkError.invalid("connect", shown, "port \(port) is outside 1...65535")
        }
        let address = try await resolve(host: host, port: port, operation: "connect", shown: shown)
        try checkOpen("connect")
        do {
            _ = try SystemSocket.connect(handle.descriptor, to: address)
        } catch {
            throw NetworkError.system(error, "connect", address.description)
        }
        status.withLock { status in
            status.peer = address
            status.bound = true
        }
    }

    /// Disconnects the socket, if connected; it keeps its local binding. Racket: `(udp-connect! socket #f #f)`.
    public func disconnect() throws {
        try checkOpen("disconnect")
        guard peer != nil else { return }
        let local = (try? SystemSocket.localAddress(handle.descriptor)) ?? nil
        SystemSocket.dissolveAssociation(handle.descriptor)
        status.withLock { $0.peer = nil }
        // Linux also drops a port the kernel chose (bind to port 0, or the bind of connect itself); Racket's
        // binding does not change, so bind the same address and port again.
        if let local, local.port != 0, (try? SystemSocket.localAddress(handle.descriptor))??.port == 0 {
            do {
                try SystemSocket.bind(handle.descriptor, to: local)
            } catch {
                status.withLock { $0.bound = false }
                throw NetworkError.system(
                    error, "disconnect", local.description,
                    detail: "the socket lost its binding and could not bind it again")
            }
        }
    }

    private func resolve(host: String, port: Int, operation: String, shown: String) async throws -> SocketAddress {
        try Resolver.validate(host: host, operation: operation, shown: shown)
        let addresses = try await Resolver.resolve(host: host, service: "\(port)", kind: .datagram)
        if let match = addresses.first(where: { $0.family == family }) { return match }
        if family == .ipv6, let v4 = addresses.first {
            // An IPv6 socket reaches IPv4 peers through mapped addresses (::ffff:a.b.c.d).
            return SocketAddress(
                family: .ipv6, bytes: [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + v4.bytes,
                port: v4.port, scopeID: 0)
        }
        throw NetworkError.system(
            .addressFamilyNotSupported, operation, shown,
            detail: "the socket is IPv4 and \(host) has no IPv4 address")
    }

    // MARK: Addresses and options

    /// The local and remote addresses: port 0 while unbound or unconnected. Racket: `udp-addresses`.
    /// - Throws: ``NetworkError`` when the socket is closed.
    public func addresses() throws -> UDPAddresses {
        try checkOpen("addresses")
        let local = ((try? SystemSocket.localAddress(handle.descriptor)) ?? nil) ?? .any(family, port: 0)
        return SocketAddresses(local: local, remote: peer ?? .any(family, port: 0))
    }

    /// Sets the kernel's receive buffer (`SO_RCVBUF`). Racket: `udp-set-receive-buffer-size!`.
    /// - Throws: ``NetworkError`` for a size below 1, or above what the system allows (Linux would silently
    ///   cap it; this checks).
    public func setReceiveBufferSize(_ size: Int) throws {
        try checkOpen("set receive buffer size")
        guard size >= 1, size <= Int(Int32.max) / 2 else {
            throw NetworkError.invalid(
                "set receive buffer size", shownLocal, "size \(size) is outside 1...\(Int32.max / 2)")
        }
        do {
            try SystemSocket.setOption(handle.descriptor, SOL_SOCKET, SO_RCVBUF, Int32(size))
            // Linux stores (and reports) twice the size asked for, capped at twice net.core.rmem_max.
            let granted = Int(try SystemSocket.getOption(handle.descriptor, SOL_SOCKET, SO_RCVBUF)) / 2
            guard granted >= size else {
                throw NetworkError.system(
                    .noBufferSpace, "set receive buffer size", shownLocal,
                    detail: "asked for \(size) bytes, the system allows at most \(granted)")
            }
        } catch let errno as Errno {
            throw NetworkError.system(errno, "set receive buffer size", shownLocal)
        }
    }

    /// Sets a socket option, such as ``SocketOption/receiveBufferSize``.
    public func setOption<Value>(_ option: SocketOption<Value>, _ value: Value) throws {
        try checkOpen("set \(option.label)")
        do {
            try SystemSocket.setOption(handle.descriptor, option.level, option.name, option.encode(value))
        } catch {
            throw NetworkError.system(error, "set \(option.label)", shownLocal)
        }
    }

    /// Reads a socket option.
    public func option<Value>(_ option: SocketOption<Value>) throws -> Value {
        try checkOpen("get \(option.label)")
        do {
            return option.decode(try SystemSocket.getOption(handle.descriptor, option.level, option.name))
        } catch {
            throw NetworkError.system(error, "get \(option.label)", shownLocal)
        }
    }

    /// The time-to-live of outgoing datagrams (`IP_TTL`; the hop limit for IPv6). Racket: `udp-ttl`.
    public func timeToLive() throws -> Int {
        try option(family == .ipv4 ? .ipTimeToLive : .ipv6HopLimit)
    }

    /// Sets the time-to-live, 0...255. Racket: `udp-set-ttl!`.
    public func setTimeToLive(_ ttl: Int) throws {
        guard (0...255).contains(ttl) else {
            throw NetworkError.invalid("set TTL", shownLocal, "a TTL is a byte, 0...255, not \(ttl)")
        }
        try setOption(family == .ipv4 ? .ipTimeToLive : .ipv6HopLimit, ttl)
    }

    /// Closes the socket, discarding datagrams not yet received (the kernel's and those read ahead). A receive
    /// or send waiting in another task throws at once; one making its system call in another thread finishes
    /// it first (the descriptor is closed when it is done, so the call never reaches a reused number).
    /// Racket: `udp-close`.
    /// - Throws: ``NetworkError`` when already closed, as Racket's `udp-close` raises.
    public func close() throws {
        try status.withLock { status in
            if status.shutDownByCustodian { throw NetworkError(.custodianShutDown, operation: "close") }
            guard !status.closed else {
                throw NetworkError.closed("close", nil, "the UDP socket is already closed")
            }
            status.closed = true
        }
        handle.close()
        inbox.withLock { $0.discard() }
        custodian?.unregister(self)
    }

    // MARK: Waiting

    private nonisolated(nonsending) func wait(_ interest: Interest, _ operation: String) async throws {
        switch await handle.wait(for: interest) {
        case .ready: return
        case .closed:
            try checkOpen(operation)
            throw NetworkError.closed(operation, nil, "the UDP socket is closed")
        case .cancelled: throw CancellationError()
        case .timedOut: throw NetworkError(.timedOut, operation: operation)
        }
    }

    /// Whether a send would not wait now.
    func isReadyToSend() throws -> Bool {
        try checkOpen("wait to send")
        return SystemSocket.isWritable(handle.descriptor)
    }

    /// Whether a receive would not wait now: a datagram was read ahead, or the kernel has one.
    func isReadyToReceive() throws -> Bool {
        try checkOpen("wait to receive")
        return !inbox.withLock(\.isEmpty) || SystemSocket.isReadable(handle.descriptor)
    }

    /// Receives a waiting datagram as an owned value, or returns `nil` at once.
    func tryReceive(maxLength: Int) throws -> Datagram? {
        try takeDatagram(maxLength: max(0, maxLength))
    }

    /// Waits until a send would not block. Racket: `udp-send-ready-evt`, synchronized on.
    public func waitUntilReadyToSend() async throws {
        while true {
            try checkOpen("wait to send")
            if SystemSocket.isWritable(handle.descriptor) { return }
            try await wait(.write, "wait to send")
        }
    }

    /// Waits until a receive would not block. Racket: `udp-receive-ready-evt`, synchronized on.
    public func waitUntilReadyToReceive() async throws {
        while true {
            if try isReadyToReceive() { return }
            try await wait(.read, "wait to receive")
        }
    }

    // MARK: Sending

    private nonisolated func checkRange(_ range: Range<Int>?, count: Int, _ operation: String) throws -> Range<Int> {
        let range = range ?? 0..<count
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw NetworkError.invalid(operation, nil, "range \(range) is outside the buffer's 0..<\(count)")
        }
        return range
    }

    /// Sends `bytes[range]` as one datagram to `host` at `port`, waiting while the outgoing queue is full.
    /// `bytes` is any collection of bytes (`[UInt8]`, a slice such as `bytes[1...]`, …), sent from where it is
    /// when its storage is contiguous; `range` counts from its first byte. The same holds for every send.
    /// An unbound socket is bound to an ephemeral port first. Racket: `udp-send-to` (and
    /// `udp-send-to/enable-break`: either the whole datagram is sent or `CancellationError` is thrown).
    /// - Throws: ``NetworkError`` for a connected or closed socket, a bad range or port (before any system
    ///   call), or the system's refusal (`EMSGSIZE` over 65,507 bytes).
    public func send(_ bytes: some Collection<UInt8>, range: Range<Int>? = nil, to host: String, port: Int)
        async throws
    {
        _ = try await sendTo(bytes, range: range, host: host, port: port, waiting: true)
    }

    /// Sends one datagram to an address, waiting while the outgoing queue is full (the fast form of
    /// ``send(_:range:to:port:)``: no name to resolve). Runs in the caller's isolation: the `sendto` is made on
    /// the caller's thread, and only a full outgoing queue waits for the socket's event loop.
    public nonisolated(nonsending) func send(
        _ bytes: some Collection<UInt8>, range: Range<Int>? = nil, to address: SocketAddress
    ) async throws {
        let range = try checkRange(range, count: bytes.count, "send to")
        try checkUnconnected("send to", address.description)
        _ = try await transmit(bytes, range, to: address, waiting: true, operation: "send to")
    }

    /// Like ``send(_:range:to:port:)`` but never waits: returns `false` when the outgoing queue is full, `true`
    /// when the datagram was queued. Racket: `udp-send-to*`.
    public func trySend(_ bytes: some Collection<UInt8>, range: Range<Int>? = nil, to host: String, port: Int)
        async throws -> Bool
    {
        try await sendTo(bytes, range: range, host: host, port: port, waiting: false)
    }

    /// Sends `bytes[range]` as one datagram to the connected peer, waiting while the outgoing queue is full.
    /// Runs in the caller's isolation, as ``send(_:range:to:)`` does. Racket: `udp-send` (and
    /// `udp-send/enable-break`).
    /// - Throws: ``NetworkError`` for an unconnected or closed socket or a bad range.
    public nonisolated(nonsending) func send(_ bytes: some Collection<UInt8>, range: Range<Int>? = nil) async throws {
        _ = try await sendConnected(bytes, range: range, waiting: true)
    }

    /// Like ``send(_:range:)`` but never waits: returns `false` when the outgoing queue is full.
    /// Racket: `udp-send*`.
    public func trySend(_ bytes: some Collection<UInt8>, range: Range<Int>? = nil) async throws -> Bool {
        try await sendConnected(bytes, range: range, waiting: false)
    }

    private nonisolated func checkUnconnected(_ operation: String, _ shown: @autoclosure () -> String) throws {
        let peer = try status.withLock { status in
            try status.checkOpen(operation)
            return status.peer
        }
        if let peer {
            throw NetworkError.invalid(operation, shown(), "the socket is connected (to \(peer)); use send(_:range:)")
        }
    }

    private func sendTo(_ bytes: some Collection<UInt8>, range: Range<Int>?, host: String, port: Int, waiting: Bool)
        async throws -> Bool
    {
        let shown = Resolver.describe(host: host, service: "\(port)")
        let range = try checkRange(range, count: bytes.count, "send to")
        guard (1...65535).contains(port) else {
            throw NetworkError.invalid("send to", shown, "port \(port) is outside 1...65535")
        }
        try checkUnconnected("send to", shown)
        let address = try await resolve(host: host, port: port, operation: "send to", shown: shown)
        try checkUnconnected("send to", shown)
        return try await transmit(bytes, range, to: address, waiting: waiting, operation: "send to")
    }

    private nonisolated(nonsending) func sendConnected(
        _ bytes: some Collection<UInt8>, range: Range<Int>?, waiting: Bool
    ) async throws -> Bool {
        let range = try checkRange(range, count: bytes.count, "send")
        try checkConnected()
        return try await transmit(bytes, range, to: nil, waiting: waiting, operation: "send")
    }

    private nonisolated func checkConnected() throws {
        try status.withLock { status in
            try status.checkOpen("send")
            guard status.peer != nil else {
                throw NetworkError.invalid("send", nil, "the socket is not connected; use send(_:to:port:)")
            }
        }
    }

    /// One datagram: `sendto` (atomic: all or nothing), waiting for room when `waiting`. `bytes` in contiguous
    /// storage (`[UInt8]`, `ArraySlice<UInt8>`, …) is sent from where it is; any other collection is copied once.
    /// `range` counts from the collection's first byte.
    ///
    /// Runs in the caller's isolation, not the actor's: the state it checks is under ``status``'s lock, and the
    /// `sendto` runs inside ``SocketHandle/withOpenDescriptor(_:)``, so a ``close()`` meanwhile closes the
    /// descriptor only after it (the send then happened before the close), and a send that finds the socket
    /// closing throws "closed" without a system call.
    private nonisolated(nonsending) func transmit(
        _ bytes: some Collection<UInt8>, _ range: Range<Int>, to address: SocketAddress?,
        waiting: Bool, operation: String
    ) async throws -> Bool {
        guard bytes.withContiguousStorageIfAvailable({ _ in true }) == true else {
            return try await transmit(Array(bytes), range, to: address, waiting: waiting, operation: operation)
        }
        while true {
            let wasBound = try status.withLock { status in
                try status.checkOpen(operation)
                return status.bound
            }
            if Task.isCancelled { throw CancellationError() }
            let sent: Result<Int, Errno>? = handle.withOpenDescriptor { descriptor in
                bytes.withContiguousStorageIfAvailable { buffer in
                    let raw = UnsafeRawBufferPointer(buffer)
                    return Result { () throws(Errno) in
                        try SystemSocket.send(descriptor, UnsafeRawBufferPointer(rebasing: raw[range]), to: address)
                    }
                }!
            }
            switch sent {
            case nil:
                // Closed since the check above.
                try checkOpen(operation)
                throw NetworkError.closed(operation, nil, "the UDP socket is closed")
            case .success:
                if !wasBound { status.withLock { $0.bound = true } }
                return true
            case .failure(.wouldBlock):
                guard waiting else { return false }
                try await wait(.write, operation)
            case .failure(let errno):
                // Disconnected by another task between the check and the send: the error a send after the
                // disconnect throws.
                if address == nil, errno.rawValue == EDESTADDRREQ { try checkConnected() }
                throw NetworkError.system(errno, operation, (address ?? peer)?.description)
            }
        }
    }

    // MARK: Receiving

    private nonisolated func checkReceivable(_ operation: String) throws {
        try status.withLock { status in
            try status.checkOpen(operation)
            guard status.bound else {
                throw NetworkError.invalid(operation, nil, "the socket is not bound; bind it (or send from it) first")
            }
        }
    }

    /// Receives the next datagram into `buffer[range]` (all of `buffer` by default), waiting for one. A longer
    /// datagram is cut to the range and the rest discarded. Runs in the caller's isolation. Racket:
    /// `udp-receive!` (and `udp-receive!/enable-break`: either a datagram is received or `CancellationError` is
    /// thrown, and a cancelled receive leaves the datagram for the next).
    /// - Throws: ``NetworkError`` for a range outside the buffer (before any system call), an unbound or closed
    ///   socket.
    public nonisolated(nonsending) func receive(into buffer: inout [UInt8], range: Range<Int>? = nil) async throws
        -> UDPReceipt
    {
        let range = try checkRange(range, count: buffer.count, "receive")
        while true {
            if let receipt = try receiveNow(into: &buffer, range) { return receipt }
            try await wait(.read, "receive")
        }
    }

    /// Like ``receive(into:range:)`` but never waits: `nil` when no datagram is waiting. Racket: `udp-receive!*`.
    public func tryReceive(into buffer: inout [UInt8], range: Range<Int>? = nil) throws -> UDPReceipt? {
        let range = try checkRange(range, count: buffer.count, "receive")
        return try receiveNow(into: &buffer, range)
    }

    /// A datagram read ahead, copied into `buffer[range]`; else one `recvmsg` straight into it.
    private nonisolated func receiveNow(into buffer: inout [UInt8], _ range: Range<Int>) throws -> UDPReceipt? {
        try inbox.withLock { inbox in
            try checkReceivable("receive")
            if Task.isCancelled { throw CancellationError() }
            if let datagram = inbox.pop() {
                let count = min(datagram.bytes.count, range.count)
                buffer.withUnsafeMutableBytes { raw in
                    datagram.bytes.withUnsafeBytes { bytes in
                        UnsafeMutableRawBufferPointer(rebasing: raw[range]).copyMemory(
                            from: UnsafeRawBufferPointer(rebasing: bytes[..<count]))
                    }
                }
                return UDPReceipt(
                    count: count, sender: datagram.address,
                    truncated: datagram.truncated || datagram.bytes.count > count)
            }
            var sender: SocketAddress?
            let received: (count: Int, truncated: Bool)?? = try handle.withOpenDescriptor {
                descriptor throws -> (count: Int, truncated: Bool)? in
                let result = buffer.withUnsafeMutableBytes { raw in
                    Result { () throws(Errno) in
                        try SystemSocket.receive(
                            descriptor, into: UnsafeMutableRawBufferPointer(rebasing: raw[range]), from: &sender)
                    }
                }
                do throws(Errno) {
                    return try result.get()
                } catch .wouldBlock {
                    return nil
                } catch {
                    throw NetworkError.system(error, "receive", describeLocal(descriptor))
                }
            }
            switch received {
            case nil:
                try checkOpen("receive")
                throw NetworkError.closed("receive", nil, "the UDP socket is closed")
            case .some(nil):
                return nil
            case .some(.some(let received)):
                return UDPReceipt(
                    count: received.count, sender: sender ?? .any(family, port: 0), truncated: received.truncated)
            }
        }
    }

    /// The next datagram, cut to `maxLength`: the oldest read ahead, else the first of those waiting in the
    /// kernel, read with up to ``DatagramInbox/readAhead`` more in one `recvmmsg` (those are kept, whole, for
    /// the receives that follow); `nil` when none is waiting.
    nonisolated func takeDatagram(maxLength: Int) throws -> Datagram? {
        try inbox.withLock { inbox in
            try checkReceivable("receive")
            if Task.isCancelled { throw CancellationError() }
            if let datagram = inbox.pop() { return datagram.cut(to: maxLength) }
            guard let batch = try readBatch(&inbox, count: DatagramInbox.readAhead, stride: DatagramInbox.slot),
                let first = batch.first
            else { return nil }
            inbox.append(contentsOf: batch.dropFirst())
            return first.cut(to: maxLength)
        }
    }

    /// One `recvmmsg` of up to `count` datagrams, each cut to `stride` bytes, into the inbox's room; `nil` when
    /// none is waiting. Called with the inbox's lock held.
    private nonisolated func readBatch(_ inbox: inout DatagramInbox, count: Int, stride: Int) throws -> [Datagram]? {
        let room = inbox.room(count * stride)
        let entries: [SystemSocket.BatchEntry]?? = try handle.withOpenDescriptor {
            descriptor throws -> [SystemSocket.BatchEntry]? in
            do throws(Errno) {
                return try SystemSocket.receiveBatch(descriptor, into: room, stride: stride, maxCount: count)
            } catch .wouldBlock {
                return nil
            } catch {
                throw NetworkError.system(error, "receive", describeLocal(descriptor))
            }
        }
        switch entries {
        case nil:
            try checkOpen("receive")
            throw NetworkError.closed("receive", nil, "the UDP socket is closed")
        case .some(nil):
            return nil
        case .some(.some(let entries)):
            return entries.enumerated().map { index, entry in
                Datagram(
                    bytes: Array(UnsafeRawBufferPointer(rebasing: room[(index * stride)...].prefix(entry.count))),
                    address: entry.sender ?? .any(family, port: 0), truncated: entry.truncated)
            }
        }
    }

    /// Receives the next datagram as an owned value (an array of exactly its length), waiting for one.
    /// Datagrams up to `maxLength` bytes (default: the IPv4 maximum, 65,507) arrive whole. Runs in the caller's
    /// isolation; takes the datagrams read ahead first, and reads up to 32 ahead when there are none.
    public nonisolated(nonsending) func receive(maxLength: Int = UDPSocket.maximumDatagramLength) async throws
        -> Datagram
    {
        guard maxLength >= 0 else {
            throw NetworkError.invalid("receive", nil, "maxLength must not be negative, not \(maxLength)")
        }
        while true {
            if let datagram = try takeDatagram(maxLength: maxLength) { return datagram }
            try await wait(.read, "receive")
        }
    }

    /// Receives up to `maxCount` datagrams that are waiting (at least one, waiting for it) in one system call
    /// (`recvmmsg`): for callers that move many datagrams. Datagrams read ahead by other receives come first
    /// (then only those are returned). Runs in the caller's isolation.
    public nonisolated(nonsending) func receiveBatch(
        maxCount: Int = 32, maxLength: Int = UDPSocket.maximumDatagramLength
    ) async throws -> [Datagram] {
        guard (1...64).contains(maxCount), (0...65535).contains(maxLength) else {
            throw NetworkError.invalid("receive", nil, "a batch holds 1...64 datagrams of 0...65535 bytes")
        }
        while true {
            let batch = try inbox.withLock { inbox -> [Datagram]? in
                try checkReceivable("receive")
                if Task.isCancelled { throw CancellationError() }
                if !inbox.isEmpty {
                    var batch: [Datagram] = []
                    while batch.count < maxCount, let datagram = inbox.pop() {
                        batch.append(datagram.cut(to: maxLength))
                    }
                    return batch
                }
                return try readBatch(&inbox, count: maxCount, stride: max(maxLength, 1))
                    .map { $0.map { $0.cut(to: maxLength) } }
            }
            if let batch { return batch }
            try await wait(.read, "receive")
        }
    }

    /// Sends every datagram to its ``Datagram/address``, in order, with as few system calls as it can
    /// (`sendmmsg`, up to 64 a call), waiting while the outgoing queue is full.
    /// - Throws: as ``send(_:range:to:)``. Stopped part-way (by cancellation or an error), it throws a
    ///   ``NetworkError`` whose detail says how many of the datagrams were sent (each whole); cancelled before
    ///   any was sent, `CancellationError`.
    public func sendBatch(_ datagrams: [Datagram]) async throws {
        try checkUnconnected("send to", datagrams.first?.address.description ?? "")
        var next = 0
        func progress() -> String { "\(next) of \(datagrams.count) datagrams were sent" }
        while next < datagrams.count {
            try checkOpen("send to")
            if Task.isCancelled {
                throw next == 0
                    ? CancellationError()
                    : NetworkError(.cancelled, operation: "send to", detail: progress()) as any Error
            }
            let batch = datagrams[next..<min(datagrams.count, next + 64)]
            var payload: [UInt8] = []
            var offsets: [Int] = []
            var lengths: [Int] = []
            for datagram in batch {
                offsets.append(payload.count)
                lengths.append(datagram.bytes.count)
                payload += datagram.bytes
            }
            if payload.isEmpty { payload = [0] }
            do {
                next += try payload.withUnsafeBytes { (bytes) throws(Errno) in
                    try SystemSocket.sendBatch(
                        handle.descriptor, bytes, offsets: offsets, lengths: lengths,
                        to: batch.map(\.address))
                }
                status.withLock { $0.bound = true }
            } catch .wouldBlock {
                do {
                    try await wait(.write, "send to")
                } catch is CancellationError where next > 0 {
                    throw NetworkError(.cancelled, operation: "send to", detail: progress())
                }
            } catch let error as Errno {
                throw NetworkError.system(
                    error, "send to", batch.first?.address.description,
                    detail: next > 0 ? progress() : nil)
            }
        }
    }

    /// The datagrams arriving on the socket, until it is closed or the iterating task is cancelled (then the
    /// sequence ends without error, and the datagrams not yet taken stay for the next receive). Each is received
    /// whole, up to 65,507 bytes, in the iterating task's isolation: datagrams read ahead are taken with no
    /// hop to the socket's event loop (see ``receive(maxLength:)``).
    public nonisolated var datagrams: Datagrams { Datagrams(socket: self) }

    /// The datagrams arriving on a UDP socket, as an `AsyncSequence`.
    public struct Datagrams: AsyncSequence, Sendable {
        public typealias Element = Datagram
        let socket: UDPSocket

        /// Makes the iterator.
        public func makeAsyncIterator() -> Iterator { Iterator(socket: socket) }

        /// Receives the next datagram.
        public struct Iterator: AsyncIteratorProtocol {
            let socket: UDPSocket

            /// The next datagram; `nil` once the socket is closed or the task is cancelled.
            public mutating func next() async throws -> Datagram? {
                try await next(isolation: nil)
            }

            /// The next datagram, waiting in the caller's isolation (no hop off the caller's actor to wait).
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Datagram? {
                do {
                    return try await socket.receive()
                } catch is CancellationError {
                    return nil
                } catch let error as NetworkError where error.code == .closed {
                    return nil
                }
            }
        }
    }
}

extension Datagram {
    /// The datagram cut to `maxLength` bytes (marked truncated when that cut anything).
    func cut(to maxLength: Int) -> Datagram {
        guard bytes.count > maxLength else { return self }
        return Datagram(bytes: Array(bytes[..<maxLength]), address: address, truncated: true)
    }
}

extension UDPSocket: CustodianManaged {
    func shutDownByCustodian() async {
        status.withLock { status in
            status.shutDownByCustodian = true
            status.closed = true
        }
        handle.close()
        inbox.withLock { $0.discard() }
    }
}
#endif
