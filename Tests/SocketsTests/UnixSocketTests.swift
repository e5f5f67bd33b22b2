// Unix-domain stream sockets (issue 13): UnixListener, TCPConnection.connect(unixPath:), abstract names, the
// socket file's life, peer credentials, and the errors of bad paths.
//
// Each test makes its own directory (mkdtemp) and removes it; abstract names carry the process ID and a counter.
// Nothing sleeps to synchronise; every loop is bounded.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Sockets
import Synchronization
import Testing

/// A fresh directory under /tmp, removed with everything in it when the value goes.
final class TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        var template = Array("/tmp/sockets-unix-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ExternalProcess.Failure(description: "mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        path = String(cString: made)
    }

    /// A path in the directory.
    func file(_ name: String) -> String { path + "/" + name }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// An abstract socket name no other test uses.
func uniqueAbstractName(_ label: String) -> UnixSocketPath {
    .abstract(
        Array("sockets-test-\(getpid())-\(abstractNameCounter.add(1, ordering: .relaxed).newValue)-\(label)".utf8))
}
let abstractNameCounter = Atomic<Int>(0)

/// Whether a file (of any kind) is at `path`.
func fileExists(_ path: String) -> Bool {
    var status = stat()
    return lstat(path, &status) == 0
}

@Suite("Unix-domain sockets")
struct UnixSocketTests {
    /// Every wait in these tests ends within 20 s.
    static let timeouts = TCPTimeouts(
        read: .seconds(20), write: .seconds(20), connect: .seconds(20), accept: .seconds(20))

    /// A Unix listener and one client, accepted.
    static func pair(_ path: UnixSocketPath) async throws -> (UnixListener, TCPConnection, TCPConnection) {
        try await BufferMode.$current.withValue(.none) {
            let listener = try await UnixListener(path: path)
            async let accepted = listener.accept()
            let client = try await TCPConnection.connect(unixPath: path)
            return (listener, client, try await accepted)
        }
    }

    /// Lines both ways over `path`; the connections name it.
    static func echo(over path: UnixSocketPath) async throws {
        try await TCPTimeouts.withValue(timeouts) {
            let (listener, client, server) = try await pair(path)
            #expect(client.unixPath == path)
            #expect(server.unixPath == path)
            try await client.writeLine("ping")
            #expect(try await server.readLine() == "ping")
            try await server.writeLine("pong")
            #expect(try await client.readLine() == "pong")
            let data = patternBytes(300_000)
            async let written: Void = client.write(data)
            #expect(try await server.read(exactly: data.count) == data)
            try await written
            try await client.close()
            #expect(try await server.readLine() == nil)
            try await server.close()
            try await listener.close()
        }
    }

    @Test("echo over a path: lines and 300 KB both ways; the socket file stays after close, as in Racket")
    func echoOverPath() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.file("echo.sock")
        try await Self.echo(over: .path(file))
        #expect(SystemSocketProbe.isSocket(file), "closing the listener does not delete the socket file")
    }

    @Test("echo over an abstract name (with a NUL inside): no file; the name is free again once closed")
    func echoOverAbstractName() async throws {
        let name = uniqueAbstractName("echo\0x")
        try await Self.echo(over: name)
        #expect(name.description.hasPrefix("@sockets-test-") && name.description.hasSuffix("-echo\\0x"))
        // Abstract names vanish with their socket: listening again needs no clean-up.
        let again = try await UnixListener(path: name)
        try await again.close()
        // "abc" and "abc\0" are different names.
        let plain = uniqueAbstractName("n")
        guard case .abstract(let bytes) = plain else { return }
        let first = try await UnixListener(path: plain)
        let second = try await UnixListener(path: .abstract(bytes + [0]))
        try await first.close()
        try await second.close()
    }

    @Test("half-close: the client's closeOutput() is the server's end-of-file, and the server still answers")
    func halfClose() async throws {
        let directory = try TemporaryDirectory()
        try await TCPTimeouts.withValue(Self.timeouts) {
            let (listener, client, server) = try await Self.pair(.path(directory.file("half.sock")))
            try await client.writeLine("one")
            try await client.writeLine("two")
            try await client.closeOutput()
            #expect(try await server.readLine() == "one")
            #expect(try await server.readLine() == "two")
            #expect(try await server.readLine() == nil, "end-of-file after the client's closeOutput()")
            try await server.writeLine("after your eof")
            try await server.close()
            #expect(try await client.readLine() == "after your eof")
            #expect(try await client.readLine() == nil)
            try await client.close()
            try await listener.close()
        }
    }

    @Test("500 accepts cancelled while 100 clients connect: every client is accepted exactly once")
    func cancelledAccepts() async throws {
        let directory = try TemporaryDirectory()
        let path = UnixSocketPath.path(directory.file("accept.sock"))
        let listener = try await UnixListener(path: path, backlog: 256)
        let clientCount = 100
        let clients = Task {
            var connections: [TCPConnection] = []
            for index in 0..<clientCount {
                let connection = try await TCPConnection.connect(unixPath: path)
                try await connection.writeLine("\(index)")
                try await connection.flush()
                connections.append(connection)
            }
            return connections
        }
        var accepted: [TCPConnection] = []
        var cancelled = 0
        for round in 0..<500 {
            let attempt = Task { try await listener.accept() }
            if round % 3 != 0 { await Task.yield() }
            attempt.cancel()
            switch await attempt.result {
            case .success(let connection): accepted.append(connection)
            case .failure(let error):
                #expect(error is CancellationError)
                cancelled += 1
            }
        }
        try await withinTimeLimit(30) { [accepted] in
            var all = accepted
            while all.count < clientCount { all.append(try await listener.accept()) }
            var indices: [Int] = []
            for connection in all { indices.append(Int(try await connection.readLine() ?? "") ?? -1) }
            #expect(indices.sorted() == Array(0..<clientCount))
            #expect(try await listener.tryAccept() == nil)
            for connection in all { try await connection.close() }
        }
        #expect(cancelled > 0)
        for connection in try await clients.value { try await connection.close() }
        try await listener.close()
    }

    @Test(
        "sync: the accept event accepts when chosen; the listener is ready as an event; a cancelled sync commits nothing"
    )
    func syncOnAcceptEvent() async throws {
        let directory = try TemporaryDirectory()
        let path = UnixSocketPath.path(directory.file("sync.sock"))
        try await TCPTimeouts.withValue(Self.timeouts) {
            let listener = try await UnixListener(path: path)
            #expect(try await listener.isAcceptReady() == false)
            #expect(try await sync(timeout: .zero, listener.readyEvent()) == nil)

            let waiting = Task { try await sync(listener.acceptEvent(), Event<TCPConnection>.never) }
            waiting.cancel()
            #expect(await waiting.result.failure is CancellationError)

            let client = try await TCPConnection.connect(unixPath: path)
            let ready = try await sync(listener.readyEvent())
            #expect(ready === listener)
            #expect(try await listener.isAcceptReady())
            let accepted = try await sync(listener.acceptEvent(), Event<TCPConnection>.never)
            try await client.writeLine("through sync")
            try await client.flush()
            #expect(try await accepted.readLine() == "through sync")
            #expect(try await listener.tryAccept() == nil, "exactly one client, accepted once")
            try await client.close()
            try await accepted.close()
            try await listener.close()
        }
    }

    @Test("a custodian closes the listener and its connections; removesPathOnClose removes the file then too")
    func custodianClosesEverything() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.file("custodian.sock")
        let (listener, client, server, sampled) = try await withCustodian { custodian in
            let listener = try await UnixListener(path: .path(file), removesPathOnClose: true)
            let client = try await TCPConnection.connect(unixPath: .path(file))
            let server = try await listener.accept()
            #expect(custodian.managedCount == 3)
            let sampled = [listener.fileDescriptor, client.fileDescriptor, server.fileDescriptor].map {
                ($0, inodeOfDescriptor($0))
            }
            return (listener, client, server, sampled)
        }
        let accept = await thrownError { _ = try await listener.accept() } as? NetworkError
        #expect(accept?.code == .custodianShutDown)
        #expect(accept?.description == "accept on \(file) failed: its custodian has been shut down")
        let read = await thrownError { _ = try await client.read() } as? NetworkError
        #expect(read?.code == .custodianShutDown)
        #expect(read?.address == file)
        let write = await thrownError { try await server.write("x") } as? NetworkError
        #expect(write?.code == .custodianShutDown)
        for (descriptor, inode) in sampled {
            #expect(inode != nil)
            #expect(inodeOfDescriptor(descriptor) != inode)
        }
        #expect(!fileExists(file), "removesPathOnClose: the custodian's shutdown removed the socket file")
    }

    @Test("serve over a Unix listener: three clients echoed at once; closing the listener ends serve")
    func serveOverUnixListener() async throws {
        let directory = try TemporaryDirectory()
        let path = UnixSocketPath.path(directory.file("serve.sock"))
        try await TCPTimeouts.withValue(Self.timeouts) {
            let listener = try await UnixListener(path: path)
            let served = Task {
                try await serve(listener, gracePeriod: .seconds(5)) { connection in
                    try await connection.setBufferMode(.none)
                    for try await line in connection.lines { try await connection.writeLine("echo: " + line) }
                }
            }
            var clients: [TCPConnection] = []
            for index in 0..<3 {
                let client = try await TCPConnection.connect(unixPath: path)
                try await client.writeLine("hello \(index)")
                try await client.flush()
                clients.append(client)
            }
            for (index, client) in clients.enumerated() {
                #expect(try await client.readLine() == "echo: hello \(index)")
            }
            for client in clients {
                try await client.closeOutput()
                #expect(try await client.readLine() == nil)
                try await client.close()
            }
            try await listener.close()
            try await withinTimeLimit(20) { try await served.value }
        }
    }

    @Test("peer credentials: each side sees this process's pid, uid and gid; TCP-only calls say why they fail")
    func peerCredentials() async throws {
        let (listener, client, server) = try await Self.pair(uniqueAbstractName("credentials"))
        let expected = PeerCredentials(processID: getpid(), userID: getuid(), groupID: getgid())
        #expect(try await server.peerCredentials() == expected, "the accepting side sees the client")
        #expect(try await client.peerCredentials() == expected, "the connecting side sees the server")

        let addresses = await thrownError { _ = try await client.addresses() } as? NetworkError
        #expect(addresses?.code == .invalidArgument)
        #expect(addresses?.description.contains("a Unix-domain connection has no IP addresses or ports") == true)
        let noDelay = await thrownError { try await client.setOption(.noDelay, true) } as? NetworkError
        #expect(noDelay?.errno == Errno(rawValue: EOPNOTSUPP), "\(String(describing: noDelay))")
        // Options that are not IP's work.
        try await client.setOption(.sendBufferSize, 65536)
        #expect(try await client.option(.sendBufferSize) > 0)

        let tcp = try await LoopbackPair.make()
        let onTCP = await thrownError { _ = try await tcp.server.peerCredentials() } as? NetworkError
        #expect(onTCP?.code == .invalidArgument)
        #expect(onTCP?.description.contains("Unix-domain connections only") == true)
        #expect(tcp.server.unixPath == nil)
        await tcp.close()

        try await client.close()
        let closed = await thrownError { _ = try await client.peerCredentials() } as? NetworkError
        #expect(closed?.code == .closed)
        try await server.close()
        try await listener.close()
    }

    @Test("unix-socket-path?: lengths, NUL bytes and emptiness, checked before any system call")
    func pathValidity() async throws {
        let directory = try TemporaryDirectory()
        #expect(UnixSocketPath.isAvailable)
        // The longest path that fits: 107 bytes, and it works.
        let longest = directory.path + "/" + String(repeating: "a", count: 106 - directory.path.utf8.count)
        #expect(longest.utf8.count == 107)
        #expect(UnixSocketPath.path(longest).isValid)
        let listener = try await UnixListener(path: .path(longest))
        let client = try await TCPConnection.connect(unixPath: .path(longest))
        try await client.close()
        try await listener.close()

        let tooLong = longest + "b"
        #expect(!UnixSocketPath.path(tooLong).isValid)
        let listenError = await thrownError { _ = try await UnixListener(path: .path(tooLong)) } as? NetworkError
        #expect(listenError?.code == .invalidArgument)
        #expect(
            listenError?.description
                == "listen on \(tooLong) failed: the socket path is 108 bytes long; a Unix socket path takes at "
                + "most 107 (sun_path holds 108 bytes with the terminating NUL)")
        let connectError = await thrownError { _ = try await TCPConnection.connect(unixPath: .path(tooLong)) }
        #expect((connectError as? NetworkError)?.code == .invalidArgument)
        #expect(!fileExists(tooLong))

        #expect(!UnixSocketPath.path("").isValid)
        #expect(!UnixSocketPath.path("/tmp/a\0b").isValid)
        let nul = await thrownError { _ = try await UnixListener(path: "/tmp/a\0b") } as? NetworkError
        #expect(nul?.description.contains("contains a NUL byte") == true)
        #expect(UnixSocketPath.abstract([]).isValid)
        #expect(UnixSocketPath.abstract([UInt8](repeating: 65, count: 107)).isValid)
        #expect(!UnixSocketPath.abstract([UInt8](repeating: 65, count: 108)).isValid)
        let abstract =
            await thrownError { _ = try await UnixListener(path: .abstract([UInt8](repeating: 65, count: 108))) }
            as? NetworkError
        #expect(abstract?.code == .invalidArgument)
        #expect(abstract?.description.contains("the abstract socket name is 108 bytes long") == true)
        let backlog = await thrownError { _ = try await UnixListener(path: "/tmp/x.sock", backlog: -1) }
        #expect((backlog as? NetworkError)?.code == .invalidArgument)
    }

    @Test("a stale socket file (its server gone) is EADDRINUSE saying so; removeStaleSocket replaces it")
    func staleSocketFile() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.file("stale.sock")
        // A server that stopped without removing its file: Racket's behaviour, and ours by default.
        let crashed = try await UnixListener(path: .path(file))
        try await crashed.close()
        #expect(SystemSocketProbe.isSocket(file))

        let refused = await thrownError { _ = try await TCPConnection.connect(unixPath: .path(file)) }
        #expect((refused as? NetworkError)?.isRefused == true)
        #expect(
            (refused as? NetworkError)?.description
                == "connect to \(file) failed: Connection refused (ECONNREFUSED): "
                + "a socket file is there but nothing listens on it")

        let error = await thrownError { _ = try await UnixListener(path: .path(file)) } as? NetworkError
        #expect(error?.errno == .addressInUse)
        #expect(error?.description.contains("a socket file nobody listens on is there") == true)
        #expect(error?.description.contains("removeStaleSocket: true") == true)

        let replacing = try await UnixListener(path: .path(file), removeStaleSocket: true)
        let client = try await TCPConnection.connect(unixPath: .path(file))
        let server = try await replacing.accept()
        try await client.close()
        try await server.close()

        // A live listener is never replaced, even when asked: the file stays and still serves.
        let taken =
            await thrownError { _ = try await UnixListener(path: .path(file), removeStaleSocket: true) }
            as? NetworkError
        #expect(taken?.errno == .addressInUse)
        #expect(taken?.description.contains("another process listens there") == true)
        let stillServed = try await TCPConnection.connect(unixPath: .path(file))
        try await (try await replacing.accept()).close()
        try await stillServed.close()
        try await replacing.close()

        // A file that is not a socket is never removed.
        let plain = directory.file("plain")
        #expect(FileManager.default.createFile(atPath: plain, contents: Data("keep me".utf8)))
        let notSocket =
            await thrownError { _ = try await UnixListener(path: .path(plain), removeStaleSocket: true) }
            as? NetworkError
        #expect(notSocket?.errno == .addressInUse)
        #expect(notSocket?.description.contains("a file that is not a socket is there") == true)
        #expect(FileManager.default.contents(atPath: plain) == Data("keep me".utf8))
    }

    @Test("removesPathOnClose removes the file on close(), but not a file another listener has put there since")
    func removesPathOnClose() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.file("owned.sock")
        let listener = try await UnixListener(path: .path(file), removesPathOnClose: true)
        #expect(SystemSocketProbe.isSocket(file))
        try await listener.close()
        #expect(!fileExists(file))

        // Someone removed our file and listens there now: closing ours leaves theirs alone.
        let first = try await UnixListener(path: .path(file), removesPathOnClose: true)
        unlink(file)
        let second = try await UnixListener(path: .path(file))
        try await first.close()
        #expect(SystemSocketProbe.isSocket(file))
        let client = try await TCPConnection.connect(unixPath: .path(file))
        try await (try await second.accept()).close()
        try await client.close()
        try await second.close()
    }

    @Test("a missing path is ENOENT; a path under a file is ENOTDIR (as root too), for listen and connect")
    func fileSystemErrors() async throws {
        let directory = try TemporaryDirectory()
        let missing = directory.file("nobody.sock")
        let notFound = await thrownError { _ = try await TCPConnection.connect(unixPath: .path(missing)) }
        #expect((notFound as? NetworkError)?.errno == .noSuchFileOrDirectory)
        #expect(
            (notFound as? NetworkError)?.description
                == "connect to \(missing) failed: No such file or directory (ENOENT)")
        let noDirectory = directory.file("no/such/dir.sock")
        let listenMissing = await thrownError { _ = try await UnixListener(path: .path(noDirectory)) }
        #expect((listenMissing as? NetworkError)?.errno == .noSuchFileOrDirectory)

        let plain = directory.file("plain")
        #expect(FileManager.default.createFile(atPath: plain, contents: Data()))
        let under = plain + "/x.sock"
        let listen = await thrownError { _ = try await UnixListener(path: .path(under)) } as? NetworkError
        #expect(listen?.errno == .notDirectory)
        #expect(listen?.description == "listen on \(under) failed: Not a directory (ENOTDIR)")
        let connect = await thrownError { _ = try await TCPConnection.connect(unixPath: .path(under)) }
        #expect((connect as? NetworkError)?.errno == .notDirectory)
    }

    /// The environment variable that makes ``permissionDeniedChild()`` run: the directory to try.
    static let permissionVariable = "SOCKETS_UNIX_PERMISSION_DIRECTORY"

    @Test("a directory without permission is EACCES: checked in a child test process that drops root first")
    func permissionDenied() async throws {
        let directory = try TemporaryDirectory()
        // mkdtemp makes the directory 0700, owned by this user: nobody else may create a file in it.
        chmod(directory.path, 0o700)
        let result = try await ExternalProcess.runTests(
            matching: "UnixSocketTests/permissionDeniedChild",
            environment: [Self.permissionVariable: directory.path], timeout: .seconds(60))
        #expect(result.status == 0, "child: \(result.stdout.suffix(20).joined(separator: "\n")) \(result.stderr)")
        #expect(result.stdout.contains { $0.contains("permission denied as expected") }, "\(result.stdout)")
        #expect(!fileExists(directory.file("denied.sock")))
    }

    /// Runs only in the child of ``permissionDenied()``: becomes user and group 65534 (nobody), whose listen and
    /// connect in a 0700 directory owned by another user fail with EACCES. Passes at once elsewhere.
    @Test("child of permissionDenied (does nothing on its own)")
    func permissionDeniedChild() async throws {
        guard let directory = ProcessInfo.processInfo.environment[Self.permissionVariable] else { return }
        if getuid() == 0 {
            try #require(setgid(65534) == 0 && setuid(65534) == 0, "cannot drop to uid 65534: errno \(errno)")
        }
        let file = directory + "/denied.sock"
        let listen = await thrownError { _ = try await UnixListener(path: .path(file)) } as? NetworkError
        #expect(listen?.errno == .permissionDenied)
        #expect(listen?.description == "listen on \(file) failed: Permission denied (EACCES)")
        let connect = await thrownError { _ = try await TCPConnection.connect(unixPath: .path(file)) }
        #expect((connect as? NetworkError)?.errno == .permissionDenied)
        if listen?.errno == .permissionDenied { print("permission denied as expected") }
    }
}

/// Looks at files from the tests' side (not through the library).
enum SystemSocketProbe {
    /// Whether a socket file is at `path`.
    static func isSocket(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFSOCK
    }
}
