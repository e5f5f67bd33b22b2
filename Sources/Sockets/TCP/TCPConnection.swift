#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// A TCP connection: Racket's pair of an input port and an output port, as one actor with two halves.
///
/// Make one with ``connect(host:port:localHost:localPort:timeout:strategy:)`` (Racket: `tcp-connect`) or accept one with
/// ``TCPListener/accept()`` (Racket: `tcp-accept`).
///
/// A Unix-domain stream connection is a `TCPConnection` too, with the same two halves, events and guarantees:
/// ``connect(unixPath:timeout:)`` (Racket: `unix-socket-connect`) or ``UnixListener/accept()`` (Racket:
/// `unix-socket-accept`). On one, ``unixPath`` names the socket, ``peerCredentials()`` tells who is at the
/// other end, and what is IP-only (``addresses()``, ``SocketOption/noDelay``) throws a ``NetworkError``.
///
/// - **Input half**: ``read(upTo:)``, ``read(exactly:)``, ``read(into:range:)``, ``readLine(ending:maxLength:)``,
///   ``lines``, ``bytes``; end-of-file is `nil`. ``closeInput()`` closes it (Racket: `close-input-port`).
/// - **Output half**: ``write(_:)-(ArraySlice<UInt8>)``, ``writeLine(_:ending:)``, ``flush()``, buffered by
///   ``bufferMode`` (block-buffered by default, as in Racket). ``closeOutput()`` flushes and sends FIN, so the
///   peer reads end-of-file while this side keeps reading (Racket: `close-output-port`); ``abandonOutput()``
///   sends no FIN until the input is closed too (Racket: `tcp-abandon-port`).
/// - Closing both halves, or ``close()``, closes the descriptor.
///
/// Reading and writing may run at the same time from two tasks. Concurrent writes are sent one after the
/// other, never interleaved.
///
/// **Cancellation** is Racket's break: a cancelled read or write throws `CancellationError` and has no
/// effect. Bytes a cancelled ``readLine(ending:maxLength:)`` or ``read(exactly:)`` had already received stay buffered
/// for the next read; a write cancelled part-way throws a ``NetworkError`` with code
/// ``NetworkError/Code/cancelled`` whose ``NetworkError/bytesTransferred`` says how many bytes went out.
///
/// ```swift
/// let connection = try await TCPConnection.connect(host: "example.org", port: 80)
/// try await connection.write("HEAD / HTTP/1.0\r\n\r\n")
/// try await connection.flush()
/// while let line = try await connection.readLine() { print(line) }
/// try await connection.close()
/// ```
public actor TCPConnection {
    nonisolated let handle: SocketHandle
    /// This side's address. Racket: `tcp-addresses` (first results); CHICKEN: `tcp-port-numbers`.
    public nonisolated let localAddress: SocketAddress
    /// The peer's address. Racket: `tcp-addresses` (last results).
    public nonisolated let remoteAddress: SocketAddress
    /// For a Unix-domain connection, the socket's path or abstract name (see `TCPConnection+Unix.swift`).
    nonisolated let unixSocketPath: UnixSocketPath?

    /// The connection runs on its event loop's queue: its system calls and its readiness events share it.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        handle.loop.executor.asUnownedSerialExecutor()
    }

    /// The event loop the connection is registered with. Run a connection's handler with
    /// ``EventLoop/withExecutorPreference(isolation:_:)`` on it to keep every resumed read on one thread.
    public nonisolated var eventLoop: EventLoop { handle.loop }

    /// The descriptor (CHICKEN exposes the listener's; this is the connection's). Valid until closed.
    public nonisolated var fileDescriptor: Int32 { handle.descriptor }

    private var input = InputBuffer()
    /// A line longer than its limit was cut short: the next line read skips the rest of it (up to and including
    /// its ending, as this ending defines it). A read of bytes takes the bytes as they come, and ends the skip.
    private var skippingLine: LineEnding?
    private var reachedEndOfFile = false
    private var inputClosed = false
    private var outputClosed = false
    /// How many receives of ``read(upTo:)`` in a row filled less than half their room (up to 2): at 2, the next
    /// receives through the loop's scratch, not straight into its result (see `receiveArray(upTo:)`).
    private var shortReceives: UInt8 = 0
    private var output: [UInt8] = []

    /// How output is buffered. Default: ``BufferMode/current`` when the connection was made (`.block(4096)`).
    public private(set) var bufferMode: BufferMode
    /// The read timeout; `nil` for none. Default: ``TCPTimeouts/current`` when the connection was made.
    public private(set) var readTimeout: Duration?
    /// The write timeout; `nil` for none.
    public private(set) var writeTimeout: Duration?

    /// Held while bytes are being sent, so concurrent writes go out one after the other.
    private nonisolated let writeLock = AsyncSemaphore(limit: 1)
    private var writerBusy: Bool { writeLock.taken > 0 }
    /// The custodian that manages the connection, if any.
    nonisolated let custodian: Custodian?
    private var shutDownByCustodianFlag = false

    init(
        handle: SocketHandle, local: SocketAddress, remote: SocketAddress, custodian: Custodian?,
        unixPath: UnixSocketPath? = nil
    ) {
        self.handle = handle
        self.unixSocketPath = unixPath
        self.custodian = custodian
        self.localAddress = local
        self.remoteAddress = remote
        self.bufferMode = BufferMode.current.normalized
        let timeouts = TCPTimeouts.current
        self.readTimeout = timeouts.read
        self.writeTimeout = timeouts.write
    }

    /// A connection dropped without ``close()`` sends what it had buffered, as far as the kernel takes it
    /// without waiting, and closes its descriptor.
    deinit {
        if !outputClosed, !output.isEmpty, !handle.isClosed {
            _ = output.withUnsafeBytes { Self.sendWithoutWaiting($0, on: handle.descriptor) }
        }
        handle.close()
    }

    /// Sends as much of `bytes` as the kernel takes at once; returns how many went out.
    private static func sendWithoutWaiting(_ bytes: UnsafeRawBufferPointer, on descriptor: Int32) -> Int {
        var sent = 0
        while sent < bytes.count {
            guard let count = try? SystemSocket.send(descriptor, UnsafeRawBufferPointer(rebasing: bytes[sent...]))
            else {
                break
            }
            sent += count
        }
        return sent
    }

    /// Wraps a connected descriptor: registers it with an event loop, turns Nagle's algorithm off.
    /// Closes `descriptor` and throws when it cannot.
    static func adopt(
        descriptor: Int32, peer: SocketAddress?, operation: String, custodian: Custodian?,
        loop: EventLoop = .next()
    ) throws -> TCPConnection {
        let handle: SocketHandle
        do {
            handle = try SocketHandle(descriptor: descriptor, loop: loop)
        } catch {
            throw NetworkError.system(error, operation, peer?.description)
        }
        return try adopt(handle: handle, peer: peer, operation: operation, custodian: custodian)
    }

    /// Wraps a connected socket's handle: turns Nagle's algorithm off and registers the connection with
    /// `custodian` (closed, and ``NetworkError/Code/custodianShutDown`` thrown, when it is shut down).
    static func adopt(
        handle: SocketHandle, peer: SocketAddress?, operation: String,
        custodian: Custodian?
    ) throws -> TCPConnection {
        let descriptor = handle.descriptor
        try? SystemSocket.setOption(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        let local = (try? SystemSocket.localAddress(descriptor)) ?? nil
        let remote = peer ?? ((try? SystemSocket.peerAddress(descriptor)) ?? nil)
        let unknown = SocketAddress.any(remote?.family ?? .ipv4, port: 0)
        return try TCPConnection(
            handle: handle, local: local ?? unknown, remote: remote ?? unknown, custodian: custodian
        )
        .registered(operation)
    }

    /// Registers the new connection with its custodian; closes it and throws when the custodian is shut down.
    nonisolated func registered(_ operation: String) throws -> TCPConnection {
        guard let custodian, !custodian.register(self) else { return self }
        handle.close()
        throw NetworkError(.custodianShutDown, operation: operation, address: shownPeer)
    }

    // MARK: Addresses and options

    /// The local and remote hosts and ports. Racket: `tcp-addresses` (with and without port numbers);
    /// CHICKEN: `tcp-addresses` and `tcp-port-numbers`.
    /// - Throws: ``NetworkError`` (``NetworkError/Code/closed``) once both halves are closed;
    ///   ``NetworkError/Code/invalidArgument`` on a Unix-domain connection, which has no hosts and ports (see
    ///   ``unixPath``).
    public func addresses() throws -> TCPAddresses {
        try checkOpen("addresses")
        try checkNotUnix("addresses")
        return SocketAddresses(local: localAddress, remote: remoteAddress)
    }

    /// Sets a socket option, such as ``SocketOption/noDelay`` or ``SocketOption/keepAlive``.
    public func setOption<Value>(_ option: SocketOption<Value>, _ value: Value) throws {
        try checkOpen("set \(option.label)")
        do {
            try SystemSocket.setOption(handle.descriptor, option.level, option.name, option.encode(value))
        } catch {
            throw NetworkError.system(error, "set \(option.label)", shownPeer)
        }
    }

    /// Reads a socket option.
    public func option<Value>(_ option: SocketOption<Value>) throws -> Value {
        try checkOpen("get \(option.label)")
        do {
            return option.decode(try SystemSocket.getOption(handle.descriptor, option.level, option.name))
        } catch {
            throw NetworkError.system(error, "get \(option.label)", shownPeer)
        }
    }

    /// Changes how output is buffered. Switching to ``BufferMode/none`` sends what is buffered.
    public func setBufferMode(_ mode: BufferMode) async throws {
        if case .block(let size) = mode, size < 1 {
            throw NetworkError.invalid(
                "set buffer mode", shownPeer,
                "a block buffer needs at least 1 byte, not \(size)")
        }
        bufferMode = mode
        if mode == .none, !output.isEmpty { try await flush() }
    }

    /// Changes this connection's read and write timeouts (`nil`: none).
    public func setTimeouts(read: Duration?, write: Duration?) {
        readTimeout = read
        writeTimeout = write
    }

    func checkOpen(_ operation: String) throws {
        if handle.isClosed { throw closedError(operation, .read) }
    }

    // MARK: Waiting

    /// Waits for readiness; returns normally when the system call should be retried.
    /// `transferred` is what the calling operation has moved so far (for the error of a partial write).
    ///
    /// No thread hop on resume: the epoll handler resumes this continuation on the loop's serial queue, and the
    /// actor's executor is that same queue, so the retried `recv`/`send` runs right there. A caller that runs
    /// with ``EventLoop/withExecutorPreference(isolation:_:)`` (as `serve` and `echo-server` do) continues on the loop too;
    /// without it, the caller's own code resumes on the cooperative pool after the read returns.
    ///
    /// A read that has to wait first sends what the output holds, as far as the kernel takes it at once: a
    /// request written without `flush()` must not leave both sides waiting for each other (see
    /// ``BufferMode``).
    private func waitUntil(_ interest: Interest, _ operation: String, transferred: Int = 0) async throws {
        if interest == .read {
            if !output.isEmpty, !outputClosed, !writerBusy { sendBufferedWithoutWaiting() }
            input.releaseIfEmpty()
            if output.isEmpty, output.capacity > 0 { output = [] }
        }
        let timeout = interest == .read ? readTimeout : writeTimeout
        let outcome = await handle.wait(for: interest, deadline: timeout?.deadlineFromNow)
        if outcome != .ready { throw waitError(outcome, interest, operation, transferred: transferred) }
    }

    /// The error a wait that did not end ready throws. Not inlined: the errors' texts would otherwise take room
    /// in ``waitUntil(_:_:transferred:)``'s async frame, which every idle connection's task holds.
    @inline(never)
    private func waitError(_ outcome: WaitOutcome, _ interest: Interest, _ operation: String, transferred: Int)
        -> any Error
    {
        switch outcome {
        case .ready, .closed:
            return closedError(operation, interest, transferred: transferred)
        case .timedOut:
            let timeout = interest == .read ? readTimeout : writeTimeout
            return NetworkError(
                .timedOut, operation: operation, address: shownPeer,
                detail: "nothing \(interest == .read ? "arrived" : "could be sent") within "
                    + (timeout?.shortDescription ?? "the timeout"),
                bytesTransferred: transferred > 0 ? transferred : nil)
        case .cancelled:
            return cancellation(operation, transferred: transferred)
        }
    }

    private func cancellation(_ operation: String, transferred: Int) -> any Error {
        guard transferred > 0 else { return CancellationError() }
        return NetworkError(
            .cancelled, operation: operation, address: shownPeer,
            bytesTransferred: transferred)
    }

    private func closedError(_ operation: String, _ interest: Interest, transferred: Int = 0) -> NetworkError {
        if shutDownByCustodianFlag {
            return NetworkError(.custodianShutDown, operation: operation, address: shownPeer)
        }
        let what: String
        if handle.isClosed {
            what = "the connection is closed"
        } else {
            what = interest == .read ? "the input is closed" : "the output is closed"
        }
        var error = NetworkError.closed(operation, shownPeer, what)
        if transferred > 0 { error.bytesTransferred = transferred }
        return error
    }

    // MARK: Reading

    /// Every read of bytes (not lines) starts here: it takes the input as it comes, so it ends the skip of the
    /// rest of an over-long line.
    private func checkBytesReadable() throws {
        try checkReadable("read")
        skippingLine = nil
    }

    /// Every read of the input starts here: it settles the lease out to a `bytes` or `lines` iterator, if any,
    /// so the bytes that iterator took are gone and the rest are this read's.
    private func checkReadable(_ operation: String) throws {
        settleLease()
        if inputClosed { throw closedError(operation, .read) }
    }

    /// Receives more bytes into the input buffer. Returns `false` at end-of-file.
    private func fill(_ operation: String) async throws -> Bool {
        while true {
            try checkReadable(operation)
            if reachedEndOfFile { return false }
            // Cancellation is checked only before the system call that commits: bytes it returns are kept.
            if Task.isCancelled { throw CancellationError() }
            if try fillWithoutWaiting(operation) { return true }
            if reachedEndOfFile { return false }
            try await waitUntil(.read, operation)
        }
    }

    /// Reads what is available, up to `maxLength` bytes, waiting for at least one. Returns `nil` at
    /// end-of-file. Racket: `read-bytes-avail!`.
    public func read(upTo maxLength: Int = 65536) async throws -> [UInt8]? {
        try checkReadLength(maxLength)
        try checkBytesReadable()
        while input.isEmpty {
            if reachedEndOfFile { return nil }
            if Task.isCancelled { throw CancellationError() }
            if let bytes = try receiveArray(upTo: maxLength) {
                return bytes.isEmpty ? nil : bytes
            }
            try await waitUntil(.read, "read")
            try checkReadable("read")
        }
        return input.take(min(maxLength, input.count))
    }

    /// Throws unless `maxLength` is at least 1. Not inlined: the error's text would otherwise take room in
    /// ``read(upTo:)``'s async frame, which every idle connection's task holds.
    @inline(never)
    private func checkReadLength(_ maxLength: Int) throws {
        guard maxLength > 0 else {
            throw NetworkError.invalid("read", shownPeer, "maxLength must be at least 1, not \(maxLength)")
        }
    }

    /// The largest receive ``read(upTo:)`` makes at once; a larger `maxLength` returns what one receive brings.
    private static let largestArrayReceive = LoopScratch.size

    /// Receives into a new array, without waiting, as much as the caller asked for in one system call. Empty at
    /// end-of-file; `nil` when nothing waits.
    ///
    /// Where it receives follows the last receives. After two in a row that filled less than half their room
    /// (requests), it receives into the loop's scratch and copies out what came: one allocation of the result's
    /// size, none when nothing came (the receive after each request), where the whole room cost an allocation
    /// and a short read a second one. Otherwise (a stream) it receives straight into an array of the whole
    /// room: no copy, and an array that comes back less than half full is copied to its size, so that a short
    /// read does not hold a large allocation. One short read is not enough: a stream's bursts end with one,
    /// and switching on it copied the first receive of every burst (stream8, A/B of 4 rounds: 0.79 of the
    /// rate before the scratch, with 25% more CPU per MB; 0.94 with two; rr64's allocations per round trip
    /// 3.05 → 1.10 either way).
    @inline(never)  // keeps its temporaries out of read(upTo:)'s async frame, which an idle connection holds
    private func receiveArray(upTo maxLength: Int) throws -> [UInt8]? {
        let room = min(maxLength, Self.largestArrayReceive)
        var failure: Errno?
        var bytes: [UInt8]
        if shortReceives < 2 {
            bytes = [UInt8](unsafeUninitializedCapacity: room) { raw, count in
                do throws(Errno) {
                    count = try SystemSocket.receive(handle.descriptor, into: UnsafeMutableRawBufferPointer(raw))
                } catch {
                    failure = error
                    count = 0
                }
            }
            if bytes.count < room / 2 { bytes = bytes.withUnsafeBufferPointer { Array($0) } }
        } else {
            // This actor runs on the loop's executor, and nothing here suspends: the scratch is this job's.
            assert(isOnLoopQueue())
            let scratch = UnsafeMutableRawBufferPointer(rebasing: handle.loop.scratch.bytes[..<room])
            var received = 0
            do throws(Errno) {
                received = try SystemSocket.receive(handle.descriptor, into: scratch)
            } catch {
                failure = error
            }
            bytes = [UInt8](unsafeUninitializedCapacity: received) { raw, count in
                UnsafeMutableRawBufferPointer(raw).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: scratch[..<received]))
                count = received
            }
        }
        switch failure {
        case nil:
            if bytes.isEmpty { reachedEndOfFile = true }
            shortReceives = bytes.count >= room / 2 && room > 1 ? 0 : min(shortReceives + 1, 2)
            return bytes
        case .wouldBlock?:
            return nil
        case let errno?:
            throw NetworkError.system(errno, "read", shownPeer)
        }
    }

    /// For an assertion: the actor's jobs run on its loop's queue.
    private func isOnLoopQueue() -> Bool {
        handle.loop.executor.checkIsolated()
        return true
    }

    /// Reads exactly `count` bytes, waiting as long as it takes. Racket: `read-bytes`.
    ///
    /// - Throws: ``NetworkError`` with code ``NetworkError/Code/endOfFile`` when the input ends first; the bytes
    ///   received stay buffered for the next read, as they do when the task is cancelled.
    public func read(exactly count: Int) async throws -> [UInt8] {
        guard count >= 0 else {
            throw NetworkError.invalid("read", shownPeer, "count must not be negative, not \(count)")
        }
        try checkBytesReadable()
        while input.count < count {
            if try await !fill("read") {
                throw NetworkError(
                    .endOfFile, operation: "read", address: shownPeer,
                    detail: "\(input.count) of \(count) bytes arrived; they stay buffered")
            }
        }
        return input.take(count)
    }

    /// Reads into `buffer[range]` (all of `buffer` by default) what is available, waiting for at least one
    /// byte; returns how many bytes it wrote, or `nil` at end-of-file. Racket: `read-bytes-avail!`.
    ///
    /// The fastest read: when nothing is buffered, the system call writes straight into `buffer`.
    ///
    /// ```swift
    /// var buffer = [UInt8](repeating: 0, count: 65536)
    /// while let count = try await connection.read(into: &buffer) {
    ///     try await connection.write(buffer[..<count])
    /// }
    /// ```
    /// - Throws: ``NetworkError`` (``NetworkError/Code/invalidArgument``) for a range outside the buffer,
    ///   before any system call.
    public func read(into buffer: inout [UInt8], range: Range<Int>? = nil) async throws -> Int? {
        let range = range ?? 0..<buffer.count
        guard range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw NetworkError.invalid(
                "read", shownPeer,
                "range \(range) is outside the buffer's 0..<\(buffer.count)")
        }
        try checkBytesReadable()
        if range.isEmpty { return 0 }
        while true {
            if !input.isEmpty {
                return buffer.withUnsafeMutableBytes { raw in
                    input.take(into: UnsafeMutableRawBufferPointer(rebasing: raw[range]))
                }
            }
            if reachedEndOfFile { return nil }
            if Task.isCancelled { throw CancellationError() }
            let received: Result<Int, Errno> = buffer.withUnsafeMutableBytes { raw in
                Result { () throws(Errno) in
                    try SystemSocket.receive(
                        handle.descriptor, into: UnsafeMutableRawBufferPointer(rebasing: raw[range]))
                }
            }
            switch received {
            case .success(0):
                reachedEndOfFile = true
                return nil
            case .success(let count):
                return count
            case .failure(.wouldBlock):
                try await waitUntil(.read, "read")
                try checkReadable("read")
            case .failure(let errno):
                throw NetworkError.system(errno, "read", shownPeer)
            }
        }
    }

    /// Reads one byte; `nil` at end-of-file. Racket: `read-byte`.
    public func readByte() async throws -> UInt8? {
        try checkBytesReadable()
        if input.isEmpty, try await !fill("read") { return nil }
        return input.take(1)[0]
    }

    /// The longest line ``readLine(ending:maxLength:)``, ``lines(ending:maxLength:)`` and
    /// ``readLineEvent(ending:maxLength:)`` return by default: 65,536 bytes, not counting the ending.
    ///
    /// A line reader without a limit lets any peer grow the server's memory without bound by sending bytes
    /// without a newline. 64 KiB is the limit Python's `asyncio` streams and Go's `bufio.Scanner` use by
    /// default: far above the lines of line-based protocols (SMTP allows 1,000 bytes; HTTP servers refuse
    /// header lines past 8 KiB), and small enough that 10,000 connections each holding a full line need
    /// under 1.3 GB. Pass a larger `maxLength` (or `.max`, for no limit) when lines may really be longer.
    public static let defaultMaximumLineLength = 65_536

    /// Reads a line and returns it without its ending; `nil` at end-of-file. A last line without an ending is
    /// returned as it is. Bytes are decoded as UTF-8 (invalid sequences become U+FFFD). Racket: `read-line`
    /// (CHICKEN's `read-line` takes a limit too).
    ///
    /// - Parameters:
    ///   - ending: which bytes end a line: ``LineEnding/any`` (LF or CR-LF, the default),
    ///     ``LineEnding/linefeed`` or ``LineEnding/returnLinefeed``.
    ///   - maxLength: the longest line accepted, in bytes without its ending
    ///     (``defaultMaximumLineLength`` by default; `.max` for no limit).
    /// - Throws: ``NetworkError`` with code ``NetworkError/Code/lineTooLong`` as soon as more than `maxLength`
    ///   bytes have arrived without a line ending. The line is discarded: the bytes received so far at once,
    ///   the rest of it (through its ending) by the next line read, which returns the line after it; memory
    ///   stays bounded by about twice `maxLength` however long the line is. A read of bytes
    ///   (``read(upTo:)``, say) after the error takes the rest of the line as it comes instead.
    public func readLine(
        ending: LineEnding = .any,
        maxLength: Int = TCPConnection.defaultMaximumLineLength
    ) async throws -> String? {
        guard let bytes = try await readLineBytes(ending: ending, maxLength: maxLength) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Like ``readLine(ending:maxLength:)`` but returns the line's bytes, undecoded.
    public func readLineBytes(
        ending: LineEnding = .any,
        maxLength: Int = TCPConnection.defaultMaximumLineLength
    ) async throws -> [UInt8]? {
        try checkLineLimit(maxLength)
        try checkReadable("read")
        var scanned = 0
        while true {
            if let line = try takeLine(ending, maxLength, scanned: &scanned) { return line }
            let generation = input.generation
            if try await !fill("read") { return takeLastLine() }
            if generation != input.generation { scanned = 0 }
        }
    }

    private func checkLineLimit(_ maxLength: Int) throws {
        guard maxLength >= 0 else {
            throw NetworkError.invalid(
                "read", shownPeer,
                "maxLength must not be negative, not \(maxLength)")
        }
    }

    /// One step of reading a line, without waiting: skips what is left of an over-long line, then takes a
    /// complete line, or returns `nil` when more bytes are needed. `scanned`: how much of the buffer is known to
    /// hold no line ending.
    private func takeLine(_ ending: LineEnding, _ maxLength: Int, scanned: inout Int) throws -> [UInt8]? {
        if let skipping = skippingLine {
            guard let (end, terminator) = input.withUnreadBytes({ skipping.findEnd(in: $0, from: 0) }) else {
                discardUnreadLine()
                return nil
            }
            input.drop(end + terminator)
            skippingLine = nil
            scanned = 0
        }
        if let (end, terminator) = input.withUnreadBytes({ ending.findEnd(in: $0, from: scanned) }) {
            scanned = 0
            guard end <= maxLength else {
                input.drop(end + terminator)
                throw lineTooLong(maxLength)
            }
            let line = input.take(end)
            input.drop(terminator)
            return line
        }
        // A CR at the end may begin a CR-LF: look at it again once more bytes arrive.
        let pendingReturn = ending != .linefeed && input.withUnreadBytes { $0.last == 13 }
        if input.count - (pendingReturn ? 1 : 0) > maxLength {
            skippingLine = ending
            discardUnreadLine()
            scanned = 0
            throw lineTooLong(maxLength)
        }
        scanned = max(0, input.count - 1)
        return nil
    }

    /// Drops the buffered part of a line being skipped, but a last CR, which may begin its CR-LF ending.
    private func discardUnreadLine() {
        let pendingReturn = input.withUnreadBytes { $0.last == 13 }
        input.drop(input.count - (pendingReturn ? 1 : 0))
    }

    /// At end-of-file: the last line, without an ending (`nil` when there is none, or only the tail of a line
    /// being skipped).
    private func takeLastLine() -> [UInt8]? {
        if skippingLine != nil {
            skippingLine = nil
            input.drop(input.count)
            return nil
        }
        return input.isEmpty ? nil : input.take(input.count)
    }

    private func lineTooLong(_ maxLength: Int) -> NetworkError {
        NetworkError(
            .lineTooLong, operation: "read", address: shownPeer,
            detail: "a line is longer than the limit of \(maxLength) bytes (maxLength); it is discarded "
                + "through its ending")
    }

    /// Receives what the kernel holds, without waiting. Returns `false` when nothing waits or at end-of-file.
    private func fillWithoutWaiting(_ operation: String) throws -> Bool {
        if reachedEndOfFile { return false }
        do {
            let count = try input.append { (room) throws(Errno) in
                try SystemSocket.receive(handle.descriptor, into: room)
            }
            if count == 0 { reachedEndOfFile = true }
            return count > 0
        } catch .wouldBlock {
            return false
        } catch {
            throw NetworkError.system(error, operation, shownPeer)
        }
    }

    /// A line if one is complete (the value is `.some(nil)` at end-of-file), or `nil` without waiting when none
    /// is: bytes received meanwhile stay buffered. The attempt of ``readLineEvent(ending:maxLength:)``.
    func tryReadLineBytes(ending: LineEnding, maxLength: Int) throws -> [UInt8]?? {
        try checkLineLimit(maxLength)
        try checkReadable("read")
        var scanned = 0
        while true {
            if let line = try takeLine(ending, maxLength, scanned: &scanned) { return .some(line) }
            if try !fillWithoutWaiting("read") {
                guard reachedEndOfFile else { return nil }
                return .some(takeLastLine())
            }
        }
    }

    /// Bytes if some are buffered or waiting (`.some(nil)` at end-of-file), or `nil` without waiting.
    /// The attempt of ``readEvent(upTo:)``.
    func tryRead(upTo maxLength: Int) throws -> [UInt8]?? {
        try checkBytesReadable()
        if input.isEmpty, try !fillWithoutWaiting("read") {
            return reachedEndOfFile ? .some(nil) : nil
        }
        return .some(input.take(min(maxLength, input.count)))
    }

    /// Whether a read would not wait: bytes are buffered, the input ended, or the socket is readable.
    /// Racket: `byte-ready?` / `char-ready?` on the input port.
    public func isReadable() throws -> Bool {
        try checkReadable("read")
        return !input.isEmpty || reachedEndOfFile || SystemSocket.isReadable(handle.descriptor)
    }

    /// Both halves are closed: close the descriptor and leave the custodian.
    private func closeDescriptor() {
        handle.close()
        custodian?.unregister(self)
    }

    /// Closes the input half. Buffered bytes are discarded; a read waiting in another task throws at once.
    /// When the output half is closed or abandoned too, the descriptor closes. Racket: `close-input-port`
    /// (and `tcp-abandon-port` on an input port). Closing it again does nothing.
    public func closeInput() {
        guard !inputClosed else { return }
        inputClosed = true
        settleLease()
        input.removeAll()
        handle.interrupt(.read)
        if outputClosed { closeDescriptor() }
    }

    // MARK: Writing

    /// Writes bytes, buffered according to ``bufferMode``. Racket: `write-bytes`.
    ///
    /// - Throws: ``NetworkError``: the output is closed; the peer has gone (`EPIPE`, `ECONNRESET`; never
    ///   `SIGPIPE`); the write timeout passed; or the task was cancelled part-way
    ///   (``NetworkError/Code/cancelled``) — each with ``NetworkError/bytesTransferred`` set when some bytes went
    ///   out. `CancellationError` when the task was cancelled before any byte went out.
    public func write(_ bytes: ArraySlice<UInt8>) async throws {
        try await writeSlice(bytes)
    }

    /// Writes bytes, buffered according to ``bufferMode``.
    public func write(_ bytes: [UInt8]) async throws {
        try await writeSlice(bytes[...])
    }

    /// The two `write`s above. Inlined into each: a call from one actor method to another still switches
    /// executors on entry, and each switch looks up the task's executor preference under its status lock.
    @inline(__always)
    private func writeSlice(_ bytes: ArraySlice<UInt8>) async throws {
        try checkWritable("write")
        let threshold = bufferMode.threshold
        // Sent now (every write without buffering; with it, one at least as large as the buffer): at once when
        // nothing is buffered and no other writer is under way, otherwise behind them.
        if output.isEmpty, bytes.count >= threshold, !writerBusy {
            let sent = try sendAtOnce(bytes, "write")
            if sent < bytes.count { try await send(bytes, operation: "write", from: sent) }
            return
        }
        if bufferMode == .none {
            try await send(bytes, operation: "write")
            return
        }
        // Cancelled: no effect. Once buffered, the write has happened: a flush cancelled before it sent
        // anything leaves the bytes buffered for the next flush, and the write returns normally.
        if Task.isCancelled { throw CancellationError() }
        output.append(contentsOf: bytes)
        if output.count >= threshold || (bufferMode == .line && bytes.contains(10)) {
            do {
                try await flush()
            } catch is CancellationError {
                return
            }
        }
    }

    /// Writes any collection of bytes, buffered according to ``bufferMode``. `[UInt8]` and `ArraySlice<UInt8>`
    /// take the overloads above, with no copy; other collections are copied once.
    public func write(_ bytes: some Collection<UInt8>) async throws {
        try await write(ArraySlice(bytes))
    }

    /// Writes a string as UTF-8, buffered according to ``bufferMode``. Racket: `write-string`.
    public func write(_ string: String) async throws {
        try await write(Array(string.utf8)[...])
    }

    /// Writes a string and a line ending: LF, or CR-LF with `ending: .returnLinefeed` (MIT Scheme's line
    /// translation; CHICKEN: `write-line`). Sent as one piece, never split from its ending.
    public func writeLine(_ string: String, ending: LineEnding = .linefeed) async throws {
        try await write((Array(string.utf8) + ending.terminator)[...])
    }

    /// Sends everything buffered. Racket: `flush-output`.
    public func flush() async throws {
        try checkWritable("flush")
        guard !output.isEmpty || writerBusy else { return }
        var sent = 0
        defer { output.removeFirst(min(sent, output.count)) }
        // The common case without a suspension: no other writer is under way and the kernel takes it all.
        if !writerBusy {
            if Task.isCancelled { throw CancellationError() }
            try output.withUnsafeBytes { try sendAvailable($0, &sent, "flush") }
            if sent == output.count { return }
        }
        try await writeLock.acquire()
        defer { writeLock.release() }
        var wouldBlock = sent > 0
        while sent < output.count {
            if wouldBlock { try await waitUntil(.write, "flush", transferred: sent) }
            try checkWritable("flush", transferred: sent)
            if Task.isCancelled { throw cancellation("flush", transferred: sent) }
            try output.withUnsafeBytes { try sendAvailable($0, &sent, "flush") }
            wouldBlock = true
        }
    }

    private func checkWritable(_ operation: String, transferred: Int = 0) throws {
        if outputClosed { throw closedError(operation, .write, transferred: transferred) }
    }

    /// Sends `bytes` from `start` on (what ``sendAtOnce(_:_:)`` sent is not sent again), after anything
    /// buffered, holding the writer lock so that writes never interleave.
    private func send(_ bytes: ArraySlice<UInt8>, operation: String, from start: Int = 0) async throws {
        if !output.isEmpty || writerBusy { try await flush() }
        try await writeLock.acquire()
        defer { writeLock.release() }
        var sent = start
        // A start past 0 means the kernel took no more at once: wait before trying again.
        var wouldBlock = start > 0
        while sent < bytes.count {
            if wouldBlock { try await waitUntil(.write, operation, transferred: sent) }
            try checkWritable(operation, transferred: sent)
            if Task.isCancelled { throw cancellation(operation, transferred: sent) }
            try bytes.withUnsafeBytes { try sendAvailable($0, &sent, operation) }
            wouldBlock = true
        }
    }

    /// The start of a write without a suspension (no executor switch into ``send(_:operation:from:)``, no writer
    /// lock): sends what the kernel takes of `bytes` at once. Returns how many bytes went out. Only when nothing
    /// is buffered and no other writer is under way (the caller has looked).
    private func sendAtOnce(_ bytes: ArraySlice<UInt8>, _ operation: String) throws -> Int {
        if Task.isCancelled { throw CancellationError() }
        var sent = 0
        try bytes.withUnsafeBytes { try sendAvailable($0, &sent, operation) }
        return sent
    }

    /// Sends `bytes` from `sent` on, as far as the kernel takes them without waiting, advancing `sent`; stops at
    /// `EAGAIN`. Throws the system's error, with the bytes sent so far (`EPIPE`, `ECONNRESET`: never `SIGPIPE`).
    @inline(never)
    private func sendAvailable(_ bytes: UnsafeRawBufferPointer, _ sent: inout Int, _ operation: String) throws {
        while sent < bytes.count {
            do {
                sent += try SystemSocket.send(handle.descriptor, UnsafeRawBufferPointer(rebasing: bytes[sent...]))
            } catch .wouldBlock {
                return
            } catch {
                throw NetworkError.system(error, operation, shownPeer, bytes: sent > 0 ? sent : nil)
            }
        }
    }

    /// Whether a write would not wait for the peer right now. Racket: `sync` on the output port.
    public func isWritable() throws -> Bool {
        try checkWritable("write")
        return SystemSocket.isWritable(handle.descriptor)
    }

    /// Flushes, then sends FIN: the peer reads end-of-file while this side keeps reading. When the input half
    /// is closed too, the descriptor closes. Racket: `close-output-port`. Closing it again does nothing.
    ///
    /// In a cancelled task the flush sends only what the kernel takes at once, and drops the rest.
    ///
    /// A write in progress in another task is not waited for: it ends at once with ``NetworkError/Code/closed``
    /// ("the output is closed"), its ``NetworkError/bytesTransferred`` saying how many of its bytes went out;
    /// what was buffered behind it is dropped, and the FIN follows the bytes the kernel already took. So
    /// `closeOutput()` never hangs on a peer that does not read, except for its own flush when no write is in
    /// progress (bounded by the write timeout, if one is set).
    ///
    /// - Throws: the flush's error; the output is closed all the same.
    public func closeOutput() async throws {
        guard !outputClosed else { return }
        defer {
            outputClosed = true
            output = []
            handle.interrupt(.write)
            if !handle.isClosed {
                try? SystemSocket.shutdown(handle.descriptor, writing: true)
                if inputClosed { closeDescriptor() }
            }
        }
        try await flushForClose()
    }

    /// The flush before a close.
    ///
    /// - A write or flush in progress in another task (waiting for a peer that does not read, say) is not
    ///   waited for: the close ends it with ``NetworkError/Code/closed`` (its ``NetworkError/bytesTransferred``
    ///   exact), and what was buffered behind it is dropped. Flushing first would queue behind that write, and
    ///   hang for as long as the peer does not read.
    /// - In a cancelled task it sends what the kernel takes without waiting (a server shutting down must not
    ///   hang on a peer that stopped reading) and drops the rest.
    private func flushForClose() async throws {
        if writerBusy { return }
        guard Task.isCancelled else { return try await flush() }
        sendBufferedWithoutWaiting()
    }

    /// Sends what the output holds, as far as the kernel takes it at once; the rest stays buffered.
    private func sendBufferedWithoutWaiting() {
        let sent = output.withUnsafeBytes { Self.sendWithoutWaiting($0, on: handle.descriptor) }
        output.removeFirst(sent)
    }

    /// Flushes and closes the output half without sending FIN: the peer sees the connection end only when
    /// the input half is closed too. Racket and CHICKEN: `tcp-abandon-port` on an output port.
    public func abandonOutput() async throws {
        guard !outputClosed else { return }
        defer {
            outputClosed = true
            output = []
            handle.interrupt(.write)
            if inputClosed { closeDescriptor() }
        }
        try await flushForClose()
    }

    /// Flushes the output and closes both halves and the descriptor. A read or write waiting in another task
    /// throws ``NetworkError/Code/closed`` at once. Closing again does nothing.
    ///
    /// In a cancelled task the flush sends only what the kernel takes at once, and drops the rest, so that a
    /// server shutting down never hangs on a peer that stopped reading. When a write is in progress in another
    /// task, there is no flush: that write ends at once (its ``NetworkError/bytesTransferred`` says how many of
    /// its bytes went out) and what was buffered behind it is dropped.
    ///
    /// - Throws: the flush's error; the connection is closed all the same.
    public func close() async throws {
        defer {
            inputClosed = true
            outputClosed = true
            settleLease()
            input.removeAll()
            output = []
            closeDescriptor()
        }
        if !outputClosed, !handle.isClosed { try await flushForClose() }
    }

    // MARK: Lending input to the sequences

    /// Buffered input lent to a ``bytes`` or ``lines`` iterator (see `ReadLease`).
    @usableFromInline nonisolated let lease = ReadLease()
    /// The number of the lease out; 0 when none is.
    private var leaseNumber: UInt32 = 0
    private var lastLeaseNumber: UInt32 = 0

    /// Ends the lease out, if any: drops the bytes its iterator took, and revokes the rest.
    private func settleLease() {
        guard leaseNumber != 0 else { return }
        input.drop(lease.settle(leaseNumber))
        leaseNumber = 0
    }

    /// Lends the first buffered bytes, at most `maxCount`, to an iterator; they stay buffered.
    private func lend(upTo maxCount: Int) -> ReadLease.Loan {
        settleLease()
        lastLeaseNumber = lastLeaseNumber == .max ? 1 : lastLeaseNumber + 1
        leaseNumber = lastLeaseNumber
        lease.start(leaseNumber)
        return ReadLease.Loan(number: leaseNumber, bytes: input.peek(min(maxCount, input.count)))
    }

    /// For ``Bytes``: lends up to `maxCount` bytes, waiting for at least one; `nil` at end-of-file.
    func lendBytes(upTo maxCount: Int) async throws -> ReadLease.Loan? {
        try checkBytesReadable()
        if input.isEmpty, try await !fill("read") { return nil }
        return lend(upTo: maxCount)
    }

    /// For ``Lines``: reads a line as ``readLineBytes(ending:maxLength:)`` does, and lends what is buffered
    /// after it (up to 64 KiB).
    func readLineAndLend(ending: LineEnding, maxLength: Int) async throws -> (line: [UInt8]?, loan: ReadLease.Loan?) {
        let line = try await readLineBytes(ending: ending, maxLength: maxLength)
        return (line, line == nil || input.isEmpty ? nil : lend(upTo: 65536))
    }
}

extension TCPConnection: CustodianManaged {
    func shutDownByCustodian() async {
        shutDownByCustodianFlag = true
        if !outputClosed, !output.isEmpty, !handle.isClosed { sendBufferedWithoutWaiting() }
        inputClosed = true
        outputClosed = true
        settleLease()
        input.removeAll()
        output = []
        handle.close()
    }
}
#endif
