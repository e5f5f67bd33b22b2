#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Testing

@Suite("TCPConnection: connecting and addresses")
struct ConnectingTests {
    @Test("a refused connect names the address and the system's reason")
    func refused() async throws {
        let refused = try RefusedPort()
        defer { withExtendedLifetime(refused) {} }
        let port = refused.port
        let error =
            await thrownError { _ = try await TCPConnection.connect(host: "127.0.0.1", port: port) } as? NetworkError
        #expect(error?.errno == .connectionRefused)
        #expect(error?.description == "connect to 127.0.0.1:\(port) failed: Connection refused (ECONNREFUSED)")
    }

    @Test("a name with several addresses tries each; the error lists them all")
    func everyAddressTried() async throws {
        let refused = try RefusedPort()
        defer { withExtendedLifetime(refused) {} }
        let port = refused.port
        let addresses = try await Resolver.resolve(host: "localhost", service: "\(port)")
        let error =
            await thrownError { _ = try await TCPConnection.connect(host: "localhost", port: port) } as? NetworkError
        #expect(error?.errno == .connectionRefused)
        for address in addresses where addresses.count > 1 {
            #expect(error?.description.contains("\(address)") == true)
        }
        // And a name whose first address refuses still connects through the next one.
        let v4 = try await TCPListener(port: 0, host: "127.0.0.1")
        let connected = try await TCPConnection.connect(host: "localhost", port: v4.port)
        #expect(connected.remoteAddress.host == "127.0.0.1")
        try await connected.close()
        try await v4.close()
    }

    @Test("bad arguments throw before any system call, with a clear text")
    func badArguments() async throws {
        let zero =
            await thrownError { _ = try await TCPConnection.connect(host: "127.0.0.1", port: 0) } as? NetworkError
        #expect(zero?.code == .invalidArgument)
        #expect(zero?.description == "connect to 127.0.0.1:0 failed: port 0 is outside 1...65535")
        let high =
            await thrownError { _ = try await TCPConnection.connect(host: "127.0.0.1", port: 70000) } as? NetworkError
        #expect(high?.description.contains("port 70000 is outside 1...65535") == true)
        let localHostAlone =
            await thrownError {
                _ = try await TCPConnection.connect(host: "127.0.0.1", port: 80, localHost: "127.0.0.1")
            } as? NetworkError
        #expect(localHostAlone?.description.contains("a local host needs a local port") == true)
        let empty = await thrownError { _ = try await TCPConnection.connect(host: "", port: 80) } as? NetworkError
        #expect(empty?.description.contains("host name is empty") == true)
        let huge =
            await thrownError {
                _ = try await TCPConnection.connect(host: String(repeating: "h", count: 10_240), port: 80)
            } as? NetworkError
        #expect(huge?.code == .invalidArgument)
        let noPort = await thrownError { _ = try await TCPConnection.connect(to: "127.0.0.1") } as? NetworkError
        #expect(noPort?.description.contains("the port is missing") == true)
        let bareV6 = await thrownError { _ = try await TCPConnection.connect(to: "::1:80") } as? NetworkError
        #expect(bareV6?.description.contains("needs brackets") == true)
    }

    @Test("an unknown host fails resolution with the resolver's reason")
    func unknownHost() async throws {
        let error =
            await thrownError {
                _ = try await TCPConnection.connect(host: "no-such-host.invalid", port: 80)
            } as? NetworkError
        guard case .resolution = error?.code else {
            Issue.record("expected a resolution error, got \(String(describing: error))")
            return
        }
        #expect(error?.description.hasPrefix("resolve of no-such-host.invalid:80 failed:") == true)
    }

    @Test("host:port strings and service names, as CHICKEN and MIT Scheme take them")
    func endpointsAndServices() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let client = try await TCPConnection.connect(to: "127.0.0.1:\(listener.port)")
        _ = try await listener.accept()
        #expect(client.remoteAddress.port == listener.port)
        let byService = try await TCPConnection.connect(host: "localhost", service: "\(listener.port)")
        _ = try await listener.accept()
        #expect(byService.remoteAddress.port == listener.port)
        #expect(try await Resolver.resolve(host: "127.0.0.1", service: "http").first?.port == 80)
        #expect(try await Resolver.resolve(host: "127.0.0.1", service: "www").first?.port == 80)
        #expect(try Endpoint(parsing: "example.org:http") == Endpoint(host: "example.org", service: "http"))
        #expect(try Endpoint(parsing: "[::1]:8080") == Endpoint(host: "::1", service: "8080"))
        let unknownService =
            await thrownError {
                _ = try await TCPConnection.connect(to: "127.0.0.1:no-such-service")
            } as? NetworkError
        #expect(unknownService?.description.contains("127.0.0.1:no-such-service") == true)
        try await client.close()
        try await byService.close()
        try await listener.close()
    }

    @Test("connect from a chosen local port")
    func localPort() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        // A local port that is free: take one from a throwaway listener.
        let spare = try await TCPListener(port: 0, host: "127.0.0.1")
        let localPort = spare.port
        try await spare.close()
        let client = try await TCPConnection.connect(
            host: "127.0.0.1", port: listener.port,
            localHost: "127.0.0.1", localPort: localPort)
        let server = try await listener.accept()
        #expect(client.localAddress.port == localPort)
        #expect(try await server.addresses().remotePort == localPort)
        try await client.close()
        try await listener.close()
    }

    @Test("the connect timeout throws a timeout error when the server's queue is full")
    func connectTimeout() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1", backlog: 0)
        // Fill the accept queue (never accepted) until a connect hangs on a dropped SYN.
        var held: [TCPConnection] = []
        var timedOut: NetworkError?
        for _ in 0..<64 where timedOut == nil {
            do {
                held.append(
                    try await TCPConnection.connect(
                        host: "127.0.0.1", port: listener.port,
                        timeout: .milliseconds(200)))
            } catch let error as NetworkError {
                timedOut = error
            }
        }
        let error = try #require(timedOut)
        #expect(error.code == .timedOut)
        #expect(
            error.description == "connect to 127.0.0.1:\(listener.port) failed: timed out: no connection within 0.2 s")
        for connection in held { try await connection.close() }
        try await listener.close()
    }

    @Test("addresses: both ends agree, and asking after close throws")
    func addresses() async throws {
        let pair = try await LoopbackPair.make()
        let client = try await pair.client.addresses()
        let server = try await pair.server.addresses()
        #expect(client.localPort == server.remotePort)
        #expect(client.remotePort == server.localPort)
        #expect(client.localHost == "127.0.0.1" && client.remoteHost == "127.0.0.1")
        try await pair.client.close()
        let error = await thrownError { _ = try await pair.client.addresses() } as? NetworkError
        #expect(error?.code == .closed)
        await pair.close()
    }

    @Test("socket options: no-delay is on by default, keep-alive and buffer sizes can be set")
    func options() async throws {
        let pair = try await LoopbackPair.make()
        #expect(try await pair.client.option(.noDelay) == true)
        #expect(try await pair.server.option(.noDelay) == true)
        try await pair.client.setOption(.keepAlive, true)
        #expect(try await pair.client.option(.keepAlive) == true)
        try await pair.client.setOption(.receiveBufferSize, 65536)
        #expect(try await pair.client.option(.receiveBufferSize) >= 65536)
        try await pair.client.setOption(.noDelay, false)
        #expect(try await pair.client.option(.noDelay) == false)
        await pair.close()
    }
}

@Suite("TCPConnection: reading and writing")
struct ReadWriteTests {
    @Test("block mode (the default) sends nothing before flush; flush sends it all")
    func blockBuffering() async throws {
        let pair = try await LoopbackPair.make(bufferMode: BufferMode.current)
        #expect(await pair.client.bufferMode == .block(4096))
        try await pair.client.write("held back")
        await pair.server.setTimeouts(read: .milliseconds(100), write: nil)
        let early = await thrownError { _ = try await pair.server.read() } as? NetworkError
        #expect(early?.code == .timedOut)
        try await pair.client.flush()
        #expect(try await pair.server.read(exactly: 9) == Array("held back".utf8))
        // A full block goes out without a flush.
        try await pair.client.write([UInt8](repeating: 7, count: 5000))
        #expect(try await pair.server.read(exactly: 5000).count == 5000)
        await pair.close()
    }

    @Test("line mode sends at a newline; none mode sends every write")
    func lineAndNoBuffering() async throws {
        let pair = try await LoopbackPair.make(bufferMode: .line)
        await pair.server.setTimeouts(read: .milliseconds(100), write: nil)
        try await pair.client.write("partial ")
        #expect((await thrownError { _ = try await pair.server.read() } as? NetworkError)?.code == .timedOut)
        try await pair.client.write("line\nrest")
        #expect(try await pair.server.readLine() == "partial line")
        try await pair.client.setBufferMode(.none)
        #expect(try await pair.server.read(exactly: 4) == Array("rest".utf8))
        try await pair.client.write("x")
        #expect(try await pair.server.read(exactly: 1) == [UInt8(ascii: "x")])
        await pair.close()
    }

    @Test("lines: LF, CR-LF, empty lines, a 100 KB line and a last line without an ending")
    func lines() async throws {
        let pair = try await LoopbackPair.make()
        let long = String(repeating: "abcdefghij", count: 10_000)
        try await pair.client.write("one\r\ntwo\n\n\r\n" + long + "\nthree\rstill three\nlast")
        try await pair.client.closeOutput()
        var lines: [String] = []
        for try await line in pair.server.lines(maxLength: 200_000) { lines.append(line) }
        #expect(lines == ["one", "two", "", "", long, "three\rstill three", "last"])
        #expect(try await pair.server.readLine() == nil)
        await pair.close()
    }

    @Test("line endings: linefeed keeps the CR, returnLinefeed needs CR-LF; writeLine translates")
    func lineEndings() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.writeLine("crlf", ending: .returnLinefeed)
        try await pair.client.writeLine("lf")
        #expect(try await pair.server.readLine(ending: .linefeed) == "crlf\r")
        try await pair.client.write("a\r\nb\r\n")
        #expect(try await pair.server.readLine(ending: .returnLinefeed) == "lf\na")
        #expect(try await pair.server.readLine(ending: .returnLinefeed) == "b")
        await pair.close()
    }

    @Test("read(exactly:) at end-of-file throws and keeps the bytes for the next read")
    func readExactlyAtEndOfFile() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write("abc")
        try await pair.client.closeOutput()
        let error = await thrownError { _ = try await pair.server.read(exactly: 5) } as? NetworkError
        #expect(error?.code == .endOfFile)
        #expect(error?.description.contains("3 of 5 bytes arrived") == true)
        #expect(try await pair.server.read() == Array("abc".utf8))
        #expect(try await pair.server.read() == nil)
        await pair.close()
    }

    @Test("read(into:) fills a range of the caller's buffer; a range outside it throws first")
    func readIntoRange() async throws {
        let pair = try await LoopbackPair.make()
        var buffer = [UInt8](repeating: 0, count: 8)
        let error = await thrownError { _ = try await pair.server.read(into: &buffer, range: 4..<12) } as? NetworkError
        #expect(error?.code == .invalidArgument)
        #expect(error?.description.contains("range 4..<12 is outside the buffer's 0..<8") == true)
        try await pair.client.write("xyz")
        let count = try await pair.server.read(into: &buffer, range: 2..<8)
        #expect(count == 3)
        #expect(buffer == [0, 0, 120, 121, 122, 0, 0, 0])
        #expect(try await pair.server.read(into: &buffer, range: 3..<3) == 0)
        await #expect(throws: NetworkError.self) { _ = try await pair.server.read(upTo: 0) }
        await pair.close()
    }

    @Test(
        "read(upTo:) returns exactly what was sent while its receives switch between the loop's scratch and a whole-room array, on two connections of one loop at once"
    )
    func readUpToSwitchesReceives() async throws {
        // Two short reads in a row send the next receive through the scratch (a burst then goes through it
        // once, copied); a read that fills half its room sends the next straight into its array. Each chunk is
        // written once the reader has the one before, so each is a read of its own: every switch, both ways, on
        // two connections whose reads interleave on the same loop.
        let sizes = [1, 2, 70_000, 5, 6, 300_000, 300, 301, 65_536, 2, 3, 40_000, 7, 131_072, 1, 8]
        let pairs = try await [LoopbackPair.make(), LoopbackPair.make()]
        try await withinTimeLimit(30) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, pair) in pairs.enumerated() {
                    let chunks = sizes.enumerated().map { patternBytes($0.element, seed: $0.offset + 17 * index) }
                    let (progress, reader) = AsyncStream.makeStream(of: Int.self)
                    group.addTask {
                        var received = 0
                        var updates = progress.makeAsyncIterator()
                        for chunk in chunks {
                            let target = received + chunk.count
                            try await pair.client.write(chunk)
                            while received < target, let count = await updates.next() { received = count }
                        }
                        try await pair.client.closeOutput()
                    }
                    group.addTask {
                        var received: [UInt8] = []
                        var reads = 0
                        while reads < 100_000, let bytes = try await pair.server.read(upTo: 65_536) {
                            #expect(!bytes.isEmpty && bytes.count <= 65_536)
                            received += bytes
                            reads += 1
                            reader.yield(received.count)
                        }
                        reader.finish()
                        #expect(received.count == sizes.reduce(0, +))
                        #expect(received == chunks.flatMap { $0 }, "connection \(index): the bytes differ")
                    }
                }
                try await group.waitForAll()
            }
        }
        for pair in pairs { await pair.close() }
    }

    @Test("bytes: a byte sequence that leaves the rest for the next read")
    func byteSequence() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write("hello world")
        var first: [UInt8] = []
        for try await byte in pair.server.bytes {
            first.append(byte)
            if first.count == 5 { break }
        }
        #expect(first == Array("hello".utf8))
        #expect(try await pair.server.read(exactly: 6) == Array(" world".utf8))
        await pair.close()
    }

    @Test("half-close: closing the output sends end-of-file while this side keeps reading, both ways")
    func halfClose() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write("request")
        try await pair.client.closeOutput()
        #expect(try await pair.server.read(exactly: 7) == Array("request".utf8))
        #expect(try await pair.server.read() == nil)
        let big = patternBytes(300_000)
        try await pair.server.write(big)
        try await pair.server.closeOutput()
        #expect(try await pair.client.read(exactly: big.count) == big)
        #expect(try await pair.client.read() == nil)
        let error = await thrownError { try await pair.client.write("more") } as? NetworkError
        #expect(error?.code == .closed)
        #expect(error?.description.contains("the output is closed") == true)
        await pair.close()
    }

    @Test("abandon: no end-of-file reaches the peer until the input is closed too")
    func abandon() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write("data")
        try await pair.client.abandonOutput()
        #expect(try await pair.server.read(exactly: 4) == Array("data".utf8))
        await pair.server.setTimeouts(read: .milliseconds(100), write: nil)
        let stillOpen = await thrownError { _ = try await pair.server.read() } as? NetworkError
        #expect(stillOpen?.code == .timedOut)
        // The abandoned side still reads.
        try await pair.server.write("reply")
        #expect(try await pair.client.read(exactly: 5) == Array("reply".utf8))
        await pair.client.closeInput()
        await pair.server.setTimeouts(read: .seconds(5), write: nil)
        #expect(try await pair.server.read() == nil)
        await pair.close()
    }

    @Test("closing the input makes reads throw while writing goes on")
    func closeInput() async throws {
        let pair = try await LoopbackPair.make()
        await pair.client.closeInput()
        let error = await thrownError { _ = try await pair.client.read() } as? NetworkError
        #expect(error?.description.contains("the input is closed") == true)
        try await pair.client.write("still writing")
        #expect(try await pair.server.read(exactly: 13) == Array("still writing".utf8))
        await pair.close()
    }

    @Test("a read waiting when the connection closes throws promptly")
    func closeWhileReading() async throws {
        let pair = try await LoopbackPair.make()
        let reader = Task { try await pair.server.readLine() }
        try await pair.server.close()
        let result = try await withinTimeLimit(5) { await reader.result }
        guard case .failure(let error) = result else {
            Issue.record("the read returned after close")
            return
        }
        #expect((error as? NetworkError)?.code == .closed)
        await pair.close()
    }

    /// Starts a 64 MB write on `pair.server` (unbuffered) to a peer that does not read, and returns once the
    /// write is waiting for the peer (the kernel's buffers are full).
    private func startStuckWrite(_ pair: LoopbackPair) async throws -> Task<Void, any Error> {
        let writer = Task { try await pair.server.write([UInt8](repeating: 7, count: 64 << 20)) }
        let deadline = ContinuousClock.now + .seconds(10)
        while try await pair.server.isWritable() {
            try #require(ContinuousClock.now < deadline, "the write never filled the kernel's buffers")
            await Task.yield()
        }
        return writer
    }

    /// Reads `connection` to end-of-file and counts the bytes.
    private func countToEndOfFile(_ connection: TCPConnection) async throws -> Int {
        var count = 0
        while let bytes = try await connection.read(upTo: 1 << 20) { count += bytes.count }
        return count
    }

    @Test("close() from another task ends a write waiting for the peer with .closed and its exact byte count")
    func closeEndsWaitingWrite() async throws {
        let pair = try await LoopbackPair.make(bufferMode: .none)
        let writer = try await startStuckWrite(pair)
        // Not a cancelled task: close must neither flush behind the stuck write nor wait for it.
        try await withinTimeLimit(5) { try await pair.server.close() }
        let result = try await withinTimeLimit(5) { await writer.result }
        let error = try #require(result.failure as? NetworkError)
        #expect(error.code == .closed)
        let sent = try #require(error.bytesTransferred)
        // What the kernel took before the close still reaches the peer, then end-of-file: exactly `sent` bytes.
        #expect(try await withinTimeLimit(20) { try await countToEndOfFile(pair.client) } == sent)
        await pair.close()
    }

    @Test("closeOutput() from another task ends a waiting write, sends end-of-file, and reading goes on")
    func closeOutputEndsWaitingWrite() async throws {
        let pair = try await LoopbackPair.make(bufferMode: .none)
        let writer = try await startStuckWrite(pair)
        try await withinTimeLimit(5) { try await pair.server.closeOutput() }
        let result = try await withinTimeLimit(5) { await writer.result }
        let error = try #require(result.failure as? NetworkError)
        #expect(error.code == .closed)
        #expect(error.description.contains("the output is closed"))
        let sent = try #require(error.bytesTransferred)
        #expect(try await withinTimeLimit(20) { try await countToEndOfFile(pair.client) } == sent)
        // The input half is untouched.
        try await pair.client.writeLine("still reading")
        #expect(try await pair.server.readLine() == "still reading")
        await pair.close()
    }

    @Test("the read timeout throws a timeout error and the connection stays usable")
    func readTimeout() async throws {
        let pair = try await LoopbackPair.make()
        await pair.server.setTimeouts(read: .milliseconds(50), write: nil)
        let error = await thrownError { _ = try await pair.server.readLine() } as? NetworkError
        #expect(error?.code == .timedOut)
        #expect(error?.description.hasPrefix("read from 127.0.0.1:") == true)
        #expect(error?.description.contains("timed out: nothing arrived within 0.05 s") == true)
        try await pair.client.writeLine("late")
        #expect(try await pair.server.readLine() == "late")
        await pair.close()
    }

    @Test("the task's default timeouts are captured by connections made in it")
    func taskTimeouts() async throws {
        let timeouts = TCPTimeouts(read: .milliseconds(30), write: .seconds(2))
        let pair = try await TCPTimeouts.withValue(timeouts) { try await LoopbackPair.make() }
        #expect(await pair.client.readTimeout == .milliseconds(30))
        #expect(await pair.server.writeTimeout == .seconds(2))
        #expect((await thrownError { _ = try await pair.client.read() } as? NetworkError)?.code == .timedOut)
        #expect(TCPTimeouts.current == .none)
        #expect(TCPTimeouts.chicken.read == .seconds(60))
        await pair.close()
    }

    @Test("the write timeout throws with how many bytes went out when the peer does not read")
    func writeTimeout() async throws {
        let pair = try await LoopbackPair.make()
        await pair.client.setTimeouts(read: nil, write: .milliseconds(100))
        let error =
            await thrownError { try await pair.client.write([UInt8](repeating: 1, count: 50_000_000)) } as? NetworkError
        #expect(error?.code == .timedOut)
        let sent = try #require(error?.bytesTransferred)
        #expect(sent > 0 && sent < 50_000_000)
        #expect(error?.description.contains("(after \(sent) bytes)") == true)
        await pair.close()
    }

    @Test("writing to a peer that has gone throws EPIPE or ECONNRESET, never SIGPIPE")
    func writeToClosedPeer() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.server.close()
        var failure: NetworkError?
        for _ in 0..<100 where failure == nil {
            do {
                try await pair.client.write(patternBytes(65536))
            } catch let error as NetworkError {
                failure = error
            }
        }
        let error = try #require(failure)
        #expect(error.errno == .brokenPipe || error.errno == .connectionReset)
        await pair.close()
    }

    @Test("a connection dropped without close sends what it buffered and closes its descriptor")
    func droppedConnection() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
        var server: TCPConnection? = try await listener.accept()
        let descriptor = try #require(server?.fileDescriptor)
        let inode = inodeOfDescriptor(descriptor)
        try await server?.write("buffered, never flushed")
        server = nil
        #expect(try await client.read(exactly: 23) == Array("buffered, never flushed".utf8))
        #expect(try await client.read() == nil)
        #expect(inodeOfDescriptor(descriptor) != inode)
        try await client.close()
        try await listener.close()
    }

    @Test("in a cancelled task a buffered write has no effect, and close still sends what was buffered")
    func closeInCancelledTask() async throws {
        let pair = try await LoopbackPair.make(bufferMode: .block(4096))
        let closer = Task {
            try await pair.client.write("last words")
            withUnsafeCurrentTask { $0?.cancel() }
            let late = await thrownError { try await pair.client.write(" and more") }
            #expect(late is CancellationError)
            try await pair.client.close()
        }
        try await closer.value
        #expect(try await pair.server.read(exactly: 10) == Array("last words".utf8))
        #expect(try await pair.server.read() == nil)
        await pair.close()
    }

    @Test("two tasks writing at once never interleave their writes")
    func concurrentWriters() async throws {
        let pair = try await LoopbackPair.make()
        let block = 100_000
        let writers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for letter in [UInt8(ascii: "A"), UInt8(ascii: "B")] {
                    group.addTask {
                        for _ in 0..<10 { try await pair.client.write([UInt8](repeating: letter, count: block)) }
                    }
                }
                try await group.waitForAll()
            }
            try await pair.client.closeOutput()
        }
        var received: [UInt8] = []
        while let bytes = try await pair.server.read() { received += bytes }
        try await writers.value
        #expect(received.count == 20 * block)
        for start in stride(from: 0, to: received.count, by: block) {
            let chunk = received[start..<(start + block)]
            #expect(chunk.allSatisfy { $0 == chunk.first })
        }
        await pair.close()
    }

    @Test("reading and writing at the same time from two tasks (full duplex)")
    func fullDuplex() async throws {
        let pair = try await LoopbackPair.make()
        let payload = patternBytes(2_000_000)
        // The server echoes; the client writes everything while another task reads the echo.
        let echo = Task {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while let count = try await pair.server.read(into: &buffer) {
                try await pair.server.write(buffer[..<count])
            }
            try await pair.server.closeOutput()
        }
        let reader = Task {
            var echoed: [UInt8] = []
            while let bytes = try await pair.client.read() { echoed += bytes }
            return echoed
        }
        try await pair.client.write(payload)
        try await pair.client.closeOutput()
        let echoed = try await withinTimeLimit(30) { try await reader.value }
        try await echo.value
        #expect(echoed == payload)
        await pair.close()
    }
}

@Suite("The unflushed request")
struct UnflushedRequestTests {
    @Test(
        "the README's client and server without their flush() lines: a read that has to wait sends the buffered output first"
    )
    func readmeClientWithoutFlush() async throws {
        let listener = try await TCPListener(port: 0, host: "127.0.0.1")
        let server = Task {
            try await serve(listener, maxConnections: 1000, gracePeriod: .seconds(5)) { connection in
                for try await line in connection.lines {  // ends at the client's end-of-file
                    try await connection.writeLine(line.uppercased())
                }
            }
        }
        let reply = try await withinTimeLimit(30) {
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
            #expect(await connection.bufferMode == .block(4096))
            try await connection.writeLine("hello")
            let reply = try await connection.readLine()  // nil at end-of-file
            try await connection.writeLine("again")
            let second = try await connection.readLine()
            try await connection.close()
            return [reply, second]
        }
        #expect(reply == ["HELLO", "AGAIN"])
        try await listener.close()
        try await server.value
    }
}
