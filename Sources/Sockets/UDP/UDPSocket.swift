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
public actor UDPSocket {
    nonisolated let handle: SocketHandle
    /// The protocol family, fixed when the socket was made.
    public nonisolated let family: SocketAddress.Family
    private var closed = false
    private var bound = false
    private var peer: SocketAddress?
    /// The custodian that manages the socket, if any.
    nonisolated let custodian: Custodian?
    private var shutDownByCustodianFlag = false
    /// Room for batched receives, made on first use.
    private var batchStorage: [UInt8] = []

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
            handle = try SocketHandle(descriptor: descriptor)
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

    var shownLocal: String {
        guard !closed, let local = try? SystemSocket.localAddress(handle.descriptor) else { return "a UDP socket" }
        return local.description
    }

    func checkOpen(_ operation: String) throws {
        if shutDownByCustodianFlag { throw NetworkError(.custodianShutDown, operation: operation) }
        if closed { throw NetworkError.closed(operation, nil, "the UDP socket is closed") }
    }

    /// Whether the socket is bound to a local address and port. Racket: `udp-bound?`.
    public var isBound: Bool { bound }

    /// Whether the socket is connected to a peer. Racket: `udp-connected?`.
    public var isConnected: Bool { peer != nil }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { closed }

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
        guard !bound else { throw NetworkError.invalid("bind", shown, "the socket is already bound") }
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
        guard !bound else { throw NetworkError.invalid("bind", shown, "the socket is already bound") }
        do {
            if reuseAddress { try SystemSocket.setOption(handle.descriptor, SOL_SOCKET, SO_REUSEADDR, 1) }
            try SystemSocket.bind(handle.descriptor, to: address)
        } catch {
            throw NetworkError.system(error, "bind", address.description)
        }
        bound = true
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
        peer = address
        bound = true
    }

    /// Disconnects the socket, if connected; it keeps its local binding. Racket: `(udp-connect! socket #f #f)`.
    public func disconnect() throws {
        try checkOpen("disconnect")
        guard peer != nil else { return }
        let local = (try? SystemSocket.localAddress(handle.descriptor)) ?? nil
        SystemSocket.dissolveAssociation(handle.descriptor)
        peer = nil
        // Linux also drops a port the kernel chose (bind to port 0, or the bind of connect itself); Racket's
        // binding does not change, so bind the same address and port again.
        if let local, local.port != 0, (try? SystemSocket.localAddress(handle.descriptor))??.port == 0 {
            do {
                try SystemSocket.bind(handle.descriptor, to: local)
            } catch {
                bound = false
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

    /// Closes the socket, discarding datagrams not yet received. A receive or send waiting in another task
    /// throws at once. Racket: `udp-close`.
    /// - Throws: ``NetworkError`` when already closed, as Racket's `udp-close` raises.
    public func close() throws {
        if shutDownByCustodianFlag { throw NetworkError(.custodianShutDown, operation: "close") }
        guard !closed else { throw NetworkError.closed("close", nil, "the UDP socket is already closed") }
        closed = true
        handle.close()
        custodian?.unregister(self)
    }

    // MARK: Waiting

    private func wait(_ interest: Interest, _ operation: String) async throws {
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

    /// Whether a receive would not wait now.
    func isReadyToReceive() throws -> Bool {
        try checkOpen("wait to receive")
        return SystemSocket.isReadable(handle.descriptor)
    }

    /// Receives a waiting datagram as an owned value, or returns `nil` at once.
    func tryReceive(maxLength: Int) throws -> Datagram? {
        var buffer = Memory.zeroedBytes(count: max(0, maxLength))
        guard let receipt = try tryReceive(into: &buffer) else { return nil }
        buffer.removeLast(buffer.count - receipt.count)
        return Datagram(bytes: buffer, address: receipt.sender, truncated: receipt.truncated)
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
            try checkOpen("wait to receive")
            if SystemSocket.isReadable(handle.descriptor) { return }
            try await wait(.read, "wait to receive")
        }
    }

    // MARK: Sending

    private func checkRange(_ range: Range<Int>?, count: Int, _ operation: String) throws -> Range<Int> {
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
    /// ``send(_:range:to:port:)``: no name to resolve).
    public func send(_ bytes: some Collection<UInt8>, range: Range<Int>? = nil, to address: SocketAddress)
        async throws
    {
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
    /// Racket: `udp-send` (and `udp-send/enable-break`).
    /// - Throws: ``NetworkError`` for an unconnected or closed socket or a bad range.
    public func send(_ bytes: some Collection<UInt8>, range: Range<Int>? = nil) async throws {
        _ = try await sendConnected(bytes, range: range, waiting: true)
    }

    /// Like ``send(_:range:)`` but never waits: returns `false` when the outgoing queue is full.
    /// Racket: `udp-send*`.
    public func trySend(_ bytes: some Collection<UInt8>, range: Range<Int>? = nil) async throws -> Bool {
        try await sendConnected(bytes, range: range, waiting: false)
    }

    private func checkUnconnected(_ operation: String, _ shown: String) throws {
        try checkOpen(operation)
        if let peer {
            throw NetworkError.invalid(operation, shown, "the socket is connected (to \(peer)); use send(_:range:)")
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

    private func sendConnected(_ bytes: some Collection<UInt8>, range: Range<Int>?, waiting: Bool) async throws -> Bool
    {
        let range = try checkRange(range, count: bytes.count, "send")
        try checkOpen("send")
        guard peer != nil else {
            throw NetworkError.invalid("send", nil, "the socket is not connected; use send(_:to:port:)")
        }
        return try await transmit(bytes, range, to: nil, waiting: waiting, operation: "send")
    }

    /// One datagram: `sendto` (atomic: all or nothing), waiting for room when `waiting`. `bytes` in contiguous
    /// storage (`[UInt8]`, `ArraySlice<UInt8>`, …) is sent from where it is; any other collection is copied once.
    /// `range` counts from the collection's first byte.
    private func transmit(
        _ bytes: some Collection<UInt8>, _ range: Range<Int>, to address: SocketAddress?,
        waiting: Bool, operation: String
    ) async throws -> Bool {
        guard bytes.withContiguousStorageIfAvailable({ _ in true }) == true else {
            return try await transmit(Array(bytes), range, to: address, waiting: waiting, operation: operation)
        }
        while true {
            try checkOpen(operation)
            if Task.isCancelled { throw CancellationError() }
            let result: Result<Int, Errno> = bytes.withContiguousStorageIfAvailable { buffer in
                let raw = UnsafeRawBufferPointer(buffer)
                return Result { () throws(Errno) in
                    try SystemSocket.send(handle.descriptor, UnsafeRawBufferPointer(rebasing: raw[range]), to: address)
                }
            }!
            switch result {
            case .success:
                bound = true
                return true
            case .failure(.wouldBlock):
                guard waiting else { return false }
                try await wait(.write, operation)
            case .failure(let errno):
                throw NetworkError.system(errno, operation, (address ?? peer)?.description)
            }
        }
    }

    // MARK: Receiving

    private func checkReceivable(_ operation: String) throws {
        try checkOpen(operation)
        guard bound else {
            throw NetworkError.invalid(operation, nil, "the socket is not bound; bind it (or send from it) first")
        }
    }

    /// Receives the next datagram into `buffer[range]` (all of `buffer` by default), waiting for one. A longer
    /// datagram is cut to the range and the rest discarded. Racket: `udp-receive!` (and
    /// `udp-receive!/enable-break`: either a datagram is received or `CancellationError` is thrown, and a
    /// cancelled receive leaves the datagram for the next).
    /// - Throws: ``NetworkError`` for a range outside the buffer (before any system call), an unbound or closed
    ///   socket.
    public func receive(into buffer: inout [UInt8], range: Range<Int>? = nil) async throws -> UDPReceipt {
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

    private func receiveNow(into buffer: inout [UInt8], _ range: Range<Int>) throws -> UDPReceipt? {
        try checkReceivable("receive")
        if Task.isCancelled { throw CancellationError() }
        var sender: SocketAddress?
        let result: Result<(count: Int, truncated: Bool), Errno> = buffer.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in
                try SystemSocket.receive(
                    handle.descriptor, into: UnsafeMutableRawBufferPointer(rebasing: raw[range]),
                    from: &sender)
            }
        }
        switch result {
        case .success(let received):
            return UDPReceipt(
                count: received.count, sender: sender ?? .any(family, port: 0),
                truncated: received.truncated)
        case .failure(.wouldBlock):
            return nil
        case .failure(let errno):
            throw NetworkError.system(errno, "receive", shownLocal)
        }
    }

    /// Receives the next datagram as an owned value, waiting for one. Datagrams up to `maxLength` bytes
    /// (default: the IPv4 maximum, 65,507) arrive whole.
    public func receive(maxLength: Int = UDPSocket.maximumDatagramLength) async throws -> Datagram {
        guard maxLength >= 0 else {
            throw NetworkError.invalid("receive", nil, "maxLength must not be negative, not \(maxLength)")
        }
        var buffer = Memory.zeroedBytes(count: maxLength)
        let receipt = try await receive(into: &buffer)
        buffer.removeLast(buffer.count - receipt.count)
        return Datagram(bytes: buffer, address: receipt.sender, truncated: receipt.truncated)
    }

    /// Receives up to `maxCount` datagrams that are waiting (at least one, waiting for it) in one system call
    /// (`recvmmsg`): for callers that move many datagrams.
    public func receiveBatch(maxCount: Int = 32, maxLength: Int = UDPSocket.maximumDatagramLength) async throws
        -> [Datagram]
    {
        guard (1...64).contains(maxCount), (0...65535).contains(maxLength) else {
            throw NetworkError.invalid("receive", nil, "a batch holds 1...64 datagrams of 0...65535 bytes")
        }
        let stride = max(maxLength, 1)
        if batchStorage.count < maxCount * stride { batchStorage = Memory.zeroedBytes(count: maxCount * stride) }
        while true {
            try checkReceivable("receive")
            if Task.isCancelled { throw CancellationError() }
            let entries: [SystemSocket.BatchEntry]
            do {
                entries = try batchStorage.withUnsafeMutableBytes { (raw) throws(Errno) in
                    try SystemSocket.receiveBatch(handle.descriptor, into: raw, stride: stride, maxCount: maxCount)
                }
            } catch .wouldBlock {
                try await wait(.read, "receive")
                continue
            } catch let error as Errno {
                throw NetworkError.system(error, "receive", shownLocal)
            }
            return entries.enumerated().map { index, entry in
                let start = index * stride
                return Datagram(
                    bytes: Array(batchStorage[start..<(start + min(entry.count, maxLength))]),
                    address: entry.sender ?? .any(family, port: 0), truncated: entry.truncated)
            }
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
                bound = true
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
    /// sequence ends without error). Each is received whole, up to 65,507 bytes.
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

extension UDPSocket: CustodianManaged {
    func shutDownByCustodian() async {
        shutDownByCustodianFlag = true
        closed = true
        handle.close()
    }
}
#endif
