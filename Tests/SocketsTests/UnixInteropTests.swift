// Interop over Unix-domain sockets with peers that are not Swift: python3's socket.AF_UNIX and Racket 8.7's
// racket/unix-socket, each as a client of our UnixListener and as a server for TCPConnection.connect(unixPath:).
//
// Paths live in a directory made per test; abstract names carry the process ID. Nothing sleeps to synchronise
// (the tests wait for lines the peer prints and for bytes on the connection); every wait is bounded.
#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Testing

@Suite("Unix-domain interop with non-Swift peers")
struct UnixInteropTests {
    static let timeouts = InteropTests.timeouts

    /// The name as Python spells it in a string literal: a path, or `"\0name"` for an abstract name.
    static func python(_ path: UnixSocketPath) -> String {
        switch path {
        case .path(let file): return "'\(file)'"
        case .abstract(let name): return "b'\\0" + String(decoding: name, as: UTF8.self) + "'"
        }
    }

    static let pythonClient = """
        import socket, struct, sys, threading
        size = int(sys.argv[2])
        address = eval(sys.argv[1])
        data = \(InteropTests.pythonPattern)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(address)
        pid, uid, gid = struct.unpack('3i', s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        print('credentials', pid, uid, gid, flush=True)
        def send():
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        sender = threading.Thread(target=send)
        sender.start()
        received = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            received += chunk
        sender.join()
        print('echoed', 'same' if received == data else 'different', len(received), flush=True)
        s.close()
        """

    @Test(
        "python3 client on a path and on an abstract name: 1 MB echoed exactly, SHUT_WR is our EOF, credentials agree",
        .enabled(if: ExternalProcess.isInstalled("python3"), "python3 is not installed"),
        .timeLimit(.minutes(1)),
        arguments: [false, true])
    func pythonClient(abstract: Bool) async throws {
        let directory = try TemporaryDirectory()
        let path = abstract ? uniqueAbstractName("python-client") : .path(directory.file("py.sock"))
        let size = 1_000_000
        try await TCPTimeouts.withValue(Self.timeouts) {
            let listener = try await UnixListener(path: path)
            let python = try ExternalProcess("python3", ["-c", Self.pythonClient, Self.python(path), "\(size)"])
            let connection = try await listener.accept()
            let credentials = try await connection.peerCredentials()
            #expect(credentials.processID == python.pid)
            #expect(credentials.userID == getuid())
            let received = try await InteropTests.echoUntilEndOfFile(connection, limit: 2 * size)
            #expect(InteropTests.firstDifference(received, InteropTests.pattern(size)) == nil)
            try await connection.closeOutput()
            let theirs = try InteropTests.fields(try #require(try await python.readLine()), after: "credentials")
            #expect(theirs == ["\(getpid())", "\(getuid())", "\(getgid())"])
            #expect(try await python.readLine() == "echoed same \(size)")
            #expect(try await python.waitForExit() == 0, "python3 stderr: \(python.stderrSoFar)")
            try await connection.close()
            try await listener.close()
        }
    }

    static let pythonServer = """
        import socket, sys
        address = eval(sys.argv[1])
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(address)
        s.listen(4)
        print('listening', flush=True)
        c, _ = s.accept()
        received = bytearray()
        while True:
            chunk = c.recv(65536)
            if not chunk: break
            received += chunk
        c.sendall(bytes(reversed(received)))
        c.close()
        s.close()
        print('received', len(received), flush=True)
        """

    @Test(
        "python3 server: our 1 MB and closeOutput() reach it whole; we read its answer after our FIN",
        .enabled(if: ExternalProcess.isInstalled("python3"), "python3 is not installed"),
        .timeLimit(.minutes(1)),
        arguments: [false, true])
    func pythonServer(abstract: Bool) async throws {
        let directory = try TemporaryDirectory()
        let path = abstract ? uniqueAbstractName("python-server") : .path(directory.file("py.sock"))
        let size = 1_000_000
        try await TCPTimeouts.withValue(Self.timeouts) {
            let python = try ExternalProcess("python3", ["-c", Self.pythonServer, Self.python(path)])
            #expect(try await python.readLine() == "listening", "python3 stderr: \(python.stderrSoFar)")
            let connection = try await TCPConnection.connect(unixPath: path)
            #expect(try await connection.peerCredentials().processID == python.pid)
            let data = InteropTests.pattern(size)
            try await connection.write(data)
            try await connection.closeOutput()
            let answer = try await connection.read(exactly: size)
            #expect(InteropTests.firstDifference(answer, data.reversed()) == nil)
            #expect(try await connection.read() == nil)
            #expect(try await python.readLine() == "received \(size)")
            #expect(try await python.waitForExit() == 0, "python3 stderr: \(python.stderrSoFar)")
            try await connection.close()
        }
    }

    /// The name as Racket spells it: a path string, or a byte string starting with NUL for an abstract name.
    static func racket(_ path: UnixSocketPath) -> String {
        switch path {
        case .path(let file): return "\"\(file)\""
        case .abstract(let name): return "#\"\\0" + String(decoding: name, as: UTF8.self) + "\""
        }
    }

    /// `racket` arguments running `body` with racket/base and racket/unix-socket, and InteropTests' `say`.
    static func racketArguments(_ body: String) -> [String] {
        let arguments = InteropTests.racket(body)
        return arguments.map { $0 == "racket/tcp" ? "racket/unix-socket" : $0 }
    }

    @Test(
        "Racket client (unix-socket-connect on an abstract name): lines both ways, its close-output-port is our EOF",
        .enabled(if: ExternalProcess.isInstalled("racket"), "racket is not installed"),
        .timeLimit(.minutes(1)))
    func racketClient() async throws {
        let path = uniqueAbstractName("racket-client")
        let body = """
            (say "path? " (unix-socket-path? \(Self.racket(path))))
            (define-values (i o) (unix-socket-connect \(Self.racket(path))))
            (write-string "hello from racket\\n" o)
            (flush-output o)
            (say "got " (read-line i))
            (close-output-port o)
            (let loop ([n 0])
              (define line (read-line i))
              (cond [(eof-object? line) (say "eof")]
                    [(< n 10) (say "got " line) (loop (add1 n))]))
            (close-input-port i)
            """
        try await TCPTimeouts.withValue(Self.timeouts) {
            let listener = try await UnixListener(path: path)
            let racket = try ExternalProcess("racket", Self.racketArguments(body))
            let connection = try await listener.accept()
            #expect(try await connection.peerCredentials().processID == racket.pid)
            #expect(try await connection.readLine() == "hello from racket")
            try await connection.writeLine("hello from swift")
            try await connection.flush()
            #expect(try await connection.readLine() == nil, "Racket's close-output-port is end-of-file here")
            try await connection.writeLine("after your eof")
            try await connection.closeOutput()
            let report = try await racket.remainingLines()
            #expect(report == ["path? #t", "got hello from swift", "got after your eof", "eof"])
            #expect(try await racket.waitForExit() == 0, "racket stderr: \(racket.stderrSoFar)")
            try await connection.close()
            try await listener.close()
        }
    }

    @Test(
        "Racket server (unix-socket-listen, sync on unix-socket-accept-evt): lines both ways; its path stays after close",
        .enabled(if: ExternalProcess.isInstalled("racket"), "racket is not installed"),
        .timeLimit(.minutes(1)))
    func racketServer() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.file("racket.sock")
        let body = """
            (define listener (unix-socket-listen \(Self.racket(.path(file)))))
            (say "listening " (unix-socket-listener? listener))
            (define ports (sync (unix-socket-accept-evt listener)))
            (define i (car ports))
            (define o (cadr ports))
            (unix-socket-close-listener listener)
            (write-string "hello from racket\\n" o)
            (flush-output o)
            (let loop ([n 0])
              (define line (read-line i))
              (cond [(eof-object? line) (say "eof")]
                    [(< n 10) (say "got " line) (loop (add1 n))]))
            (write-string "after your eof\\n" o)
            (close-output-port o)
            (close-input-port i)
            """
        try await TCPTimeouts.withValue(Self.timeouts) {
            let racket = try ExternalProcess("racket", Self.racketArguments(body))
            #expect(try await racket.readLine() == "listening #t", "racket stderr: \(racket.stderrSoFar)")
            let connection = try await TCPConnection.connect(unixPath: .path(file))
            #expect(try await connection.peerCredentials().processID == racket.pid)
            #expect(try await connection.readLine() == "hello from racket")
            try await connection.writeLine("hello from swift")
            try await connection.writeLine("second line")
            try await connection.closeOutput()
            #expect(try await connection.readLine() == "after your eof", "we read on after our FIN")
            #expect(try await connection.readLine() == nil)
            let report = try await racket.remainingLines()
            #expect(report == ["got hello from swift", "got second line", "eof"])
            #expect(try await racket.waitForExit() == 0, "racket stderr: \(racket.stderrSoFar)")
            try await connection.close()
            // Racket leaves its socket file behind: ours then refuses it as stale unless asked to replace it.
            #expect(SystemSocketProbe.isSocket(file))
            let stale = await thrownError { _ = try await UnixListener(path: .path(file)) } as? NetworkError
            #expect(stale?.errno == .addressInUse)
            let replaced = try await UnixListener(path: .path(file), removeStaleSocket: true)
            try await replaced.close()
        }
    }
}
