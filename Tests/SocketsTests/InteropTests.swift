// Interop with real peers that are not Swift: python3's socket module, Racket 8.7's racket/tcp, OpenBSD
// netcat and socat, each as a client of our TCPListener and as a server for our TCPConnection.
//
// Every port is ephemeral and read back (from the listener, or from what the peer prints); nothing sleeps to
// synchronise (the tests wait for lines the peer prints and for bytes on the connection); every network wait
// has a timeout (InteropTests.timeouts) and every wait on a peer process a time bound.
#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Testing

@Suite("Interop with non-Swift peers")
struct InteropTests {
    /// Every network wait in these tests ends within 20 s: a peer that misbehaves fails the test, never hangs it.
    static let timeouts = TCPTimeouts(
        read: .seconds(20), write: .seconds(20), connect: .seconds(20),
        accept: .seconds(20))

    /// 1 MB of bytes with a period of 251 (a prime, so no buffer size lines up with it): a byte lost,
    /// duplicated or reordered shows.
    static func pattern(_ count: Int) -> [UInt8] {
        patternBytes(count)
    }

    /// Where two byte arrays first differ (a length counts as a difference at the shorter's end); `nil` when
    /// equal. Compared this way, a failure names one index instead of printing a megabyte.
    static func firstDifference(_ bytes: [UInt8], _ expected: [UInt8]) -> Int? {
        let common = min(bytes.count, expected.count)
        // memcmp first: a byte-by-byte search of a megabyte is slow in a debug build under the sanitizer.
        let same =
            common == 0
            || bytes.withUnsafeBytes { mine in
                expected.withUnsafeBytes { theirs in memcmp(mine.baseAddress!, theirs.baseAddress!, common) == 0 }
            }
        if !same, let index = (0..<common).first(where: { bytes[$0] != expected[$0] }) { return index }
        return bytes.count == expected.count ? nil : common
    }

    /// The same pattern, in Python.
    static let pythonPattern = "(bytes(range(251)) * (size // 251 + 1))[:size]"

    /// Reads from `connection` until end-of-file, echoing each piece back; returns what it read. At most
    /// `limit` bytes (and `limit` reads), so a peer that never stops cannot keep the loop going.
    static func echoUntilEndOfFile(_ connection: TCPConnection, limit: Int) async throws -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<limit {
            guard let count = try await connection.read(into: &buffer) else { return received }
            received += buffer[..<count]
            try #require(received.count <= limit, "the peer sent more than \(limit) bytes")
            try await connection.write(buffer[..<count])
        }
        Issue.record("no end-of-file after \(limit) reads")
        return received
    }

    /// The arguments that make `racket` run `body` with racket/base and racket/tcp, and `say`: display its
    /// arguments, a newline, and flush (Racket block-buffers standard output into a pipe). The body runs in a
    /// `let`, as `racket -e` would print the value of each top-level expression (`write-string`'s count).
    static func racket(_ body: String, arguments: [String] = []) -> [String] {
        let prelude = """
            (define (say . parts) (for-each display parts) (newline) (flush-output))
            (define (arg n) (vector-ref (current-command-line-arguments) n))
            """
        return ["-l", "racket/base", "-l", "racket/tcp", "-e", prelude + "\n(let ()\n" + body + "\n(void))"] + arguments
    }

    /// The words of a line the peer printed, after a given first word: `"addresses 127.0.0.1 4000"` →
    /// `["127.0.0.1", "4000"]`.
    static func fields(_ line: String, after word: String) throws -> [String] {
        let parts = line.split(separator: " ").map(String.init)
        try #require(parts.first == word, "expected a line beginning with \(word), got \(line)")
        return Array(parts.dropFirst())
    }

    // MARK: python3

    static let pythonEchoClient = """
        import socket, sys, threading
        port, size = int(sys.argv[1]), int(sys.argv[2])
        data = \(pythonPattern)
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        print("local-port", s.getsockname()[1], flush=True)
        def send():
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        sender = threading.Thread(target=send)
        sender.start()
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        sender.join()
        received = b"".join(chunks)
        print("echo-equal", received[:size] == data, flush=True)
        print("after-echo", received[size:].decode("utf-8", "replace").rstrip("\\n"), flush=True)
        s.close()
        """

    @Test(
        "python3 client: 1 MB echoed exactly; its shutdown(SHUT_WR) is our EOF, and we still write after it",
        .enabled(if: ExternalProcess.isInstalled("python3"), "python3 is not installed"),
        .timeLimit(.minutes(1)))
    func pythonClientEchoWithHalfClose() async throws {
        let size = 1 << 20
        try await TCPTimeouts.withValue(Self.timeouts) {
            let listener = try await TCPListener(port: 0, host: "127.0.0.1")
            let python = try ExternalProcess("python3", ["-c", Self.pythonEchoClient, "\(listener.port)", "\(size)"])
            let connection = try await listener.accept()
            try await listener.close()
            try await connection.setBufferMode(.none)

            let received = try await Self.echoUntilEndOfFile(connection, limit: size)
            #expect(received.count == size)
            #expect(Self.firstDifference(received, Self.pattern(size)) == nil, "the bytes python3 sent, in order")

            // The client only half-closed: this side can still write, and the client reads it.
            try await connection.writeLine("written after your EOF, \(received.count) bytes")
            try await connection.closeOutput()
            #expect(try await connection.readLine() == nil, "the input stays at end-of-file")

            let ports = try Self.fields(try #require(try await python.readLine()), after: "local-port")
            #expect(ports == ["\(try await connection.addresses().remotePort)"])
            let report = try await python.remainingLines()
            #expect(report == ["echo-equal True", "after-echo written after your EOF, \(size) bytes"])
            #expect(try await python.waitForExit() == 0, "python3 stderr: \(python.stderrSoFar)")
            try await connection.close()
        }
    }

    static let pythonServer = """
        import socket, sys
        size = int(sys.argv[1])
        data = \(pythonPattern)
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(20)
        print("port", server.getsockname()[1], flush=True)
        client, peer = server.accept()
        client.settimeout(20)
        server.close()
        print("peer-port", peer[1], flush=True)
        chunks = []
        while True:
            chunk = client.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        received = b"".join(chunks)
        print("received", len(received), received == data, flush=True)
        client.sendall(received[::-1])
        client.sendall(b"done\\n")
        client.close()
        """

    @Test(
        "python3 server: our 1 MB and closeOutput() reach it whole, and we read its 1 MB answer after our FIN",
        .enabled(if: ExternalProcess.isInstalled("python3"), "python3 is not installed"),
        .timeLimit(.minutes(1)))
    func pythonServerReceivesAndAnswers() async throws {
        let size = 1 << 20
        try await TCPTimeouts.withValue(Self.timeouts) {
            let python = try ExternalProcess("python3", ["-c", Self.pythonServer, "\(size)"])
            let announced = try Self.fields(try #require(try await python.readLine()), after: "port")
            let port = try #require(announced.first.flatMap { Int($0) })
            let connection = try await TCPConnection.connect(to: "127.0.0.1:\(port)")

            let data = Self.pattern(size)
            try await connection.write(data)
            try await connection.closeOutput()

            let answer = try await connection.read(exactly: size)
            #expect(Self.firstDifference(answer, data.reversed()) == nil, "python3 sends the bytes back reversed")
            #expect(try await connection.readLine() == "done")
            #expect(try await connection.readLine() == nil, "python3 closed: end-of-file")

            let peer = try Self.fields(try #require(try await python.readLine()), after: "peer-port")
            #expect(peer == ["\(connection.localAddress.port)"])
            let report = try await python.remainingLines()
            #expect(report == ["received \(size) True"])
            #expect(try await python.waitForExit() == 0, "python3 stderr: \(python.stderrSoFar)")
            try await connection.close()
        }
    }

    // MARK: Racket

    static let racketClient = """
        (define-values (i o) (tcp-connect "127.0.0.1" (string->number (arg 0))))
        (define-values (local-host local-port remote-host remote-port) (tcp-addresses o #t))
        (say "addresses " local-host " " local-port " " remote-host " " remote-port)
        (write-string "hello from racket\\n" o)
        (flush-output o)
        (say "got " (read-line i))
        (write-string "last line before eof\\n" o)
        (close-output-port o)
        (let loop ([n 0])
          (define line (read-line i))
          (cond [(eof-object? line) (say "eof")]
                [(< n 10) (say "got " line) (loop (add1 n))]))
        (close-input-port i)
        """

    @Test(
        "Racket client: lines both ways, same tcp-addresses, its close-output-port is our EOF, we write on",
        .enabled(if: ExternalProcess.isInstalled("racket"), "racket is not installed"),
        .timeLimit(.minutes(1)))
    func racketClientAgainstOurListener() async throws {
        try await TCPTimeouts.withValue(Self.timeouts) {
            let listener = try await TCPListener(port: 0, host: "127.0.0.1")
            let racket = try ExternalProcess("racket", Self.racket(Self.racketClient, arguments: ["\(listener.port)"]))
            let connection = try await listener.accept()
            try await listener.close()
            let ours = try await connection.addresses()

            #expect(try await connection.readLine() == "hello from racket")
            try await connection.writeLine("hello from swift")
            try await connection.flush()
            #expect(try await connection.readLine() == "last line before eof")
            #expect(try await connection.readLine() == nil, "Racket's close-output-port is end-of-file here")

            try await connection.writeLine("after your eof")
            try await connection.closeOutput()

            let theirs = try Self.fields(try #require(try await racket.readLine()), after: "addresses")
            #expect(theirs == ["127.0.0.1", "\(ours.remotePort)", "127.0.0.1", "\(listener.port)"])
            #expect(ours.localPort == listener.port)
            // "eof": our closeOutput() is Racket's eof.
            let report = try await racket.remainingLines()
            #expect(report == ["got hello from swift", "got after your eof", "eof"])
            #expect(try await racket.waitForExit() == 0, "racket stderr: \(racket.stderrSoFar)")
            try await connection.close()
        }
    }

    static let racketServer = """
        (define listener (tcp-listen 0 4 #f "127.0.0.1"))
        (define-values (listen-host listen-port _h _p) (tcp-addresses listener #t))
        (say "listening " listen-port)
        (define-values (i o) (tcp-accept listener))
        (tcp-close listener)
        (define-values (local-host local-port remote-host remote-port) (tcp-addresses i #t))
        (say "addresses " local-host " " local-port " " remote-host " " remote-port)
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

    @Test(
        "Racket server: lines both ways, same tcp-addresses, our closeOutput() is its eof, we read on",
        .enabled(if: ExternalProcess.isInstalled("racket"), "racket is not installed"),
        .timeLimit(.minutes(1)))
    func ourConnectionAgainstRacketListener() async throws {
        try await TCPTimeouts.withValue(Self.timeouts) {
            let racket = try ExternalProcess("racket", Self.racket(Self.racketServer))
            let listening = try Self.fields(try #require(try await racket.readLine()), after: "listening")
            let port = try #require(listening.first.flatMap { Int($0) })
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: port)
            let ours = try await connection.addresses()
            #expect(ours.remotePort == port)

            #expect(try await connection.readLine() == "hello from racket")
            try await connection.writeLine("hello from swift")
            try await connection.writeLine("second line")
            try await connection.closeOutput()
            #expect(try await connection.readLine() == "after your eof", "we read on after our FIN")
            #expect(try await connection.readLine() == nil, "Racket's close-output-port is end-of-file here")

            let theirs = try Self.fields(try #require(try await racket.readLine()), after: "addresses")
            #expect(theirs == ["127.0.0.1", "\(port)", "127.0.0.1", "\(ours.localPort)"])
            // "eof": our closeOutput() is Racket's eof.
            let report = try await racket.remainingLines()
            #expect(report == ["got hello from swift", "got second line", "eof"])
            #expect(try await racket.waitForExit() == 0, "racket stderr: \(racket.stderrSoFar)")
            try await connection.close()
        }
    }

    // MARK: netcat and socat

    @Test(
        "nc client: lines from its stdin answered line by line; nc -N's FIN is our EOF, we answer after it",
        .enabled(if: ExternalProcess.isInstalled("nc"), "nc is not installed"),
        .timeLimit(.minutes(1)))
    func netcatClientAgainstOurListener() async throws {
        try await TCPTimeouts.withValue(Self.timeouts) {
            let listener = try await TCPListener(port: 0, host: "127.0.0.1")
            // -N: shut the socket down for writing at the end of stdin (OpenBSD netcat).
            let nc = try ExternalProcess(
                "nc", ["-N", "127.0.0.1", "\(listener.port)"],
                stdin: "ping 1\nping 2\r\nping 3\n")
            let connection = try await listener.accept()
            try await listener.close()
            var lines: [String] = []
            for _ in 0..<10 {
                guard let line = try await connection.readLine() else { break }
                lines.append(line)
                try await connection.writeLine("pong: \(line)")
            }
            #expect(lines == ["ping 1", "ping 2", "ping 3"], "LF and CR-LF both end a line")
            try await connection.writeLine("bye after \(lines.count) lines")
            try await connection.close()

            let answers = try await nc.remainingLines()
            #expect(answers == ["pong: ping 1", "pong: ping 2", "pong: ping 3", "bye after 3 lines"])
            #expect(try await nc.waitForExit() == 0, "nc stderr: \(nc.stderrSoFar)")
        }
    }

    @Test(
        "socat echo server (port 0, read back from its log): 64 KB echoed exactly after our FIN",
        .enabled(if: ExternalProcess.isInstalled("socat"), "socat is not installed"),
        .timeLimit(.minutes(1)))
    func ourConnectionAgainstSocatEcho() async throws {
        let size = 64 * 1024
        try await TCPTimeouts.withValue(Self.timeouts) {
            // -d -d logs "listening on AF=2 127.0.0.1:PORT" and the peer's address; -t 10: after our FIN, socat
            // goes on echoing for up to 10 s (its default is 0.5 s) before it closes.
            let socat = try ExternalProcess("socat", ["-d", "-d", "-t", "10", "TCP-LISTEN:0,bind=127.0.0.1", "PIPE"])
            let listening = try await socat.readLine(from: .stderr) { $0.contains("listening on") }
            let port = try #require(listening.split(separator: ":").last.flatMap { Int($0) })
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: port)

            let accepted = try await socat.readLine(from: .stderr) { $0.contains("accepting connection from") }
            #expect(accepted.contains("from AF=2 127.0.0.1:\(connection.localAddress.port) "))

            let data = Self.pattern(size)
            try await connection.write(data)
            try await connection.closeOutput()
            let echoed = try await connection.read(exactly: size)
            #expect(Self.firstDifference(echoed, data) == nil)
            #expect(try await connection.read(upTo: 1) == nil, "socat closes once the echo is done")
            #expect(try await socat.waitForExit() == 0, "socat stderr: \(socat.stderrSoFar)")
            try await connection.close()
        }
    }
}
