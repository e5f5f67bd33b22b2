// UDP interop with real peers that are not Swift: python3's socket module, Racket 8.7's racket/udp, and the
// package's own echo-server (a separate process), each as a client of our UDPSocket and as a server for it.
//
// Every port is ephemeral and read back (from our socket, or from what the peer prints); nothing sleeps to
// synchronise (the tests wait for datagrams and for lines the peer prints); every loop has a fixed count;
// every test body runs under `withinTimeLimit`, python3 sockets have a 20 s timeout, and Racket waits with
// `sync/timeout`, so a peer that misbehaves fails the test, never hangs it.
#if canImport(Glibc)
import Glibc
#endif
import Sockets
import Testing

@Suite("UDP interop with non-Swift peers")
struct UDPInteropTests {
    /// The sizes every peer exchanges: empty, one byte, a full Ethernet payload, the IPv4 maximum.
    static let sizes = [0, 1, 1472, UDPSocket.maximumDatagramLength]

    /// The time bound of each test body.
    static let limit = 30.0

    /// `patternBytes(size)` (byte i is i mod 251), in Python.
    static let pythonPattern = """
        def pattern(size):
            return (bytes(range(251)) * (size // 251 + 1))[:size]
        """

    /// The arguments that make `racket` run `body` with racket/base and racket/udp, and:
    /// `say` (display its arguments, a newline, flush), `arg` (a command-line argument), `pattern` (the bytes of
    /// `patternBytes(n)`), `addresses` (`udp-addresses` with port numbers, as four words), and `receive` (a
    /// `udp-receive!` bounded by `sync/timeout`: Racket exits with status 3 after 20 s without a datagram).
    static func racket(_ body: String, arguments: [String] = []) -> [String] {
        let prelude = """
            (define (say . parts) (for-each display parts) (newline) (flush-output))
            (define (arg n) (vector-ref (current-command-line-arguments) n))
            (define (pattern n) (let ([b (make-bytes n)]) (for ([i n]) (bytes-set! b i (modulo i 251))) b))
            (define (addresses s)
              (define-values (lh lp rh rp) (udp-addresses s #t))
              (format "~a ~a ~a ~a" lh lp rh rp))
            (define (receive s buf)
              (define got (sync/timeout 20 (udp-receive!-evt s buf)))
              (unless got (say "timeout") (exit 3))
              (apply values got))
            """
        return ["-l", "racket/base", "-l", "racket/udp", "-e", prelude + "\n(let ()\n" + body + "\n(void))"]
            + arguments
    }

    /// The words after the first one of a line the peer printed (see ``InteropTests/fields(_:after:)``).
    static func fields(_ line: String?, after word: String) throws -> [String] {
        try InteropTests.fields(try #require(line, "the peer ended before printing \(word)"), after: word)
    }

    /// The port number a peer announced on a line `word PORT …`.
    static func announcedPort(_ process: ExternalProcess, _ word: String) async throws -> Int {
        let words = try fields(try await process.readLine(), after: word)
        return try #require(words.first.flatMap { Int($0) }, "no port after \(word): \(words)")
    }

    // MARK: python3

    static let pythonEchoClient =
        pythonPattern + """

            import socket, sys
            port, sizes = int(sys.argv[1]), [int(n) for n in sys.argv[2:]]
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind(("127.0.0.1", 0))
            print("local-port", s.getsockname()[1], flush=True)
            for size in sizes:                      # all sent before any is read back: boundaries must hold
                s.sendto(pattern(size), ("127.0.0.1", port))
            for size in sizes:
                data, peer = s.recvfrom(65536)
                print("echo", size, len(data), data == pattern(size), peer[0], peer[1], flush=True)
            """

    @Test(
        "python3 sends 0, 1, 1472 and 65,507 bytes back to back; we echo each to its sender; python3 checks",
        .enabled(if: ExternalProcess.isInstalled("python3"), "python3 is not installed"),
        .timeLimit(.minutes(1)))
    func pythonClientAgainstOurSocket() async throws {
        try await withinTimeLimit(Self.limit) {
            let socket = try await UDPSocket()
            try await socket.bind(host: "127.0.0.1", port: 0)
            let port = try await socket.addresses().localPort
            let python = try ExternalProcess(
                "python3",
                ["-c", Self.pythonEchoClient, "\(port)"]
                    + Self.sizes.map(String.init))
            var senders: [Int] = []
            for size in Self.sizes {
                let datagram = try await socket.receive()
                #expect(datagram.bytes == patternBytes(size), "datagram of \(size) bytes, whole and in order")
                #expect(!datagram.truncated)
                senders.append(datagram.address.port)
                try await socket.send(datagram.bytes, to: datagram.address)
            }
            let pythonPort = try await Self.announcedPort(python, "local-port")
            #expect(senders == Array(repeating: pythonPort, count: Self.sizes.count))
            let report = try await python.remainingLines()
            #expect(report == Self.sizes.map { "echo \($0) \($0) True 127.0.0.1 \(port)" })
            #expect(try await python.waitForExit() == 0, "python3 stderr: \(python.stderrSoFar)")
            try await socket.close()
        }
    }

    static let pythonEchoServer =
        pythonPattern + """

            import socket, sys
            count = int(sys.argv[1])
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind(("127.0.0.1", 0))
            print("port", s.getsockname()[1], flush=True)
            for _ in range(count):
                data, peer = s.recvfrom(65536)
                print("got", len(data), data == pattern(len(data)), peer[0], peer[1], flush=True)
                s.sendto(data, peer)
            """

    @Test(
        "our unbound socket sends 0, 1, 1472 and 65,507 bytes back to back to a python3 echo; each comes back",
        .enabled(if: ExternalProcess.isInstalled("python3"), "python3 is not installed"),
        .timeLimit(.minutes(1)))
    func ourSocketAgainstPythonEcho() async throws {
        try await withinTimeLimit(Self.limit) {
            let python = try ExternalProcess("python3", ["-c", Self.pythonEchoServer, "\(Self.sizes.count)"])
            let pythonPort = try await Self.announcedPort(python, "port")
            let socket = try await UDPSocket(familyHost: "127.0.0.1", familyPort: pythonPort)
            #expect(await socket.isBound == false)
            for size in Self.sizes {
                try await socket.send(patternBytes(size), to: "127.0.0.1", port: pythonPort)
            }
            #expect(await socket.isBound, "sending bound the socket")
            let ours = try await socket.addresses()
            for size in Self.sizes {
                let echo = try await socket.receive()
                #expect(echo.bytes == patternBytes(size), "the echo of \(size) bytes")
                #expect(echo.address.host == "127.0.0.1" && echo.address.port == pythonPort)
            }
            let report = try await python.remainingLines()
            #expect(report == Self.sizes.map { "got \($0) True 127.0.0.1 \(ours.localPort)" })
            #expect(try await python.waitForExit() == 0, "python3 stderr: \(python.stderrSoFar)")
            try await socket.close()
        }
    }

    // MARK: Racket

    static let racketEchoServer = """
        (define s (udp-open-socket "127.0.0.1" #f))
        (udp-bind! s "127.0.0.1" 0)
        (say "addresses " (addresses s))
        (define buf (make-bytes 65536))
        (for ([k (string->number (arg 0))])
          (define-values (n host port) (receive s buf))
          (say "got " n " " host " " port " " (equal? (subbytes buf 0 n) (pattern n)))
          (if (zero? n)
              ;; udp-send-to with an empty datagram never returns on Racket 8.7 (it spins, sending it again and
              ;; again); udp-send-to* sends it once.
              (say "send-to* " (udp-send-to* s host port buf 0 0))
              (udp-send-to s host port buf 0 n)))
        (udp-close s)
        (say "closed")
        """

    @Test(
        "Racket echo server (udp-bind!, udp-receive!, udp-send-to): 0, 1, 1472, 65,507 bytes; same addresses",
        .enabled(if: ExternalProcess.isInstalled("racket"), "racket is not installed"),
        .timeLimit(.minutes(1)))
    func ourSocketAgainstRacketEcho() async throws {
        try await withinTimeLimit(Self.limit) {
            let racket = try ExternalProcess(
                "racket",
                Self.racket(
                    Self.racketEchoServer,
                    arguments: ["\(Self.sizes.count)"]))
            let theirs = try Self.fields(try await racket.readLine(), after: "addresses")
            let racketPort = try #require(theirs.count == 4 ? Int(theirs[1]) : nil, "udp-addresses: \(theirs)")
            #expect(theirs == ["127.0.0.1", "\(racketPort)", "0.0.0.0", "0"], "bound, not connected")

            let socket = try await UDPSocket(familyHost: "127.0.0.1")
            // One at a time: had Racket sent the empty datagram twice, the next echo would be empty.
            for size in Self.sizes {
                try await socket.send(patternBytes(size), to: "127.0.0.1", port: racketPort)
                let echo = try await socket.receive()
                #expect(echo.bytes == patternBytes(size), "the echo of \(size) bytes")
                #expect(echo.address.host == "127.0.0.1" && echo.address.port == racketPort)
            }
            let ourPort = try await socket.addresses().localPort

            let report = try await racket.remainingLines()
            var expected: [String] = []
            for size in Self.sizes {
                expected.append("got \(size) 127.0.0.1 \(ourPort) #t")  // udp-receive! gives count 0 for ours
                // Racket 8.7 departs from its docs: udp-send-to* sends an empty datagram (the echo came) but
                // returns #f, "not queued".
                if size == 0 { expected.append("send-to* #f") }
            }
            #expect(report == expected + ["closed"])
            #expect(try await racket.waitForExit() == 0, "racket stderr: \(racket.stderrSoFar)")
            try await socket.close()
        }
    }

    static let racketClient = """
        (define port (string->number (arg 0)))
        (define s (udp-open-socket "127.0.0.1" port))
        (say "bound-before-send " (udp-bound? s))
        (define buf (make-bytes 65536))
        (for ([n '(1 0 1472 65507)])
          (define data (pattern n))
          (if (zero? n)
              (say "send-to* " (udp-send-to* s "127.0.0.1" port data))  ; udp-send-to would spin (Racket 8.7)
              (udp-send-to s "127.0.0.1" port data))
          (define-values (m host from) (receive s buf))
          (say "echo " n " " m " " host " " from " " (equal? (subbytes buf 0 m) data)))
        (say "addresses " (addresses s))
        """

    @Test(
        "Racket client (udp-send-to, udp-send-to* for the empty one) against our socket echoing to the sender",
        .enabled(if: ExternalProcess.isInstalled("racket"), "racket is not installed"),
        .timeLimit(.minutes(1)))
    func racketClientAgainstOurSocket() async throws {
        let sizes = [1, 0, 1472, UDPSocket.maximumDatagramLength]
        try await withinTimeLimit(Self.limit) {
            let socket = try await UDPSocket()
            try await socket.bind(host: "127.0.0.1", port: 0)
            let port = try await socket.addresses().localPort
            let racket = try ExternalProcess("racket", Self.racket(Self.racketClient, arguments: ["\(port)"]))
            var senders: Set<Int> = []
            for size in sizes {
                let datagram = try await socket.receive()
                #expect(datagram.bytes == patternBytes(size), "Racket's datagram of \(size) bytes, and only one")
                #expect(datagram.address.host == "127.0.0.1")
                senders.insert(datagram.address.port)
                try await socket.send(datagram.bytes, to: datagram.address)
            }
            #expect(senders.count == 1)
            let racketPort = try #require(senders.first)

            let report = try await racket.remainingLines()
            #expect(
                report == [
                    "bound-before-send #f",
                    "echo 1 1 127.0.0.1 \(port) #t",
                    "send-to* #f",  // sent once (we received it), yet #f: Racket 8.7's departure
                    "echo 0 0 127.0.0.1 \(port) #t",  // our empty datagram: udp-receive! gives count 0
                    "echo 1472 1472 127.0.0.1 \(port) #t",
                    "echo 65507 65507 127.0.0.1 \(port) #t",
                    // udp-send-to bound Racket's socket to all addresses, at the port we saw.
                    "addresses 0.0.0.0 \(racketPort) 0.0.0.0 0",
                ])
            #expect(try await racket.waitForExit() == 0, "racket stderr: \(racket.stderrSoFar)")
            try await socket.close()
        }
    }

    static let racketEmptySendTo = """
        (define s (udp-open-socket))
        (say "sending")
        (udp-send-to s "127.0.0.1" (string->number (arg 0)) #"")
        (say "returned")
        """

    @Test(
        "Racket 8.7's departure: one udp-send-to of an empty datagram sends it again and again (killed by PID)",
        .enabled(if: ExternalProcess.isInstalled("racket"), "racket is not installed"),
        .timeLimit(.minutes(1)))
    func racketEmptySendToSpins() async throws {
        try await withinTimeLimit(Self.limit) {
            let socket = try await UDPSocket()
            try await socket.bind(host: "127.0.0.1", port: 0)
            let port = try await socket.addresses().localPort
            let racket = try ExternalProcess("racket", Self.racket(Self.racketEmptySendTo, arguments: ["\(port)"]))
            #expect(try await racket.readLine() == "sending")
            var senders: Set<Int> = []
            for _ in 0..<3 {
                let datagram = try await socket.receive(maxLength: 16)
                #expect(datagram.bytes.isEmpty && !datagram.truncated)
                senders.insert(datagram.address.port)
            }
            #expect(senders.count == 1, "three empty datagrams from the one socket of one udp-send-to call")
            racket.sendSignal(SIGKILL)
            #expect(try await racket.waitForExit() == 128 + SIGKILL)
            #expect(try await racket.remainingLines() == [], "udp-send-to had not returned")
            try await socket.close()
        }
    }

    static let racketConnected = """
        (define our-port (string->number (arg 0)))
        (define r (udp-open-socket))
        (udp-bind! r "127.0.0.1" 0)
        (define r2 (udp-open-socket))
        (udp-bind! r2 "127.0.0.1" 0)
        (udp-connect! r "127.0.0.1" our-port)
        (say "connected " (udp-connected? r) " " (addresses r))
        (define buf (make-bytes 100))
        (define-values (n host port) (receive r buf))
        (say "got " (subbytes buf 0 n) " " host " " port)
        (say "then " (let-values ([(n h p) (udp-receive!* r buf)]) n))
        (udp-send-to r2 "127.0.0.1" our-port #"from r2")
        (udp-send r #"reply")
        (udp-connect! r #f #f)
        (say "disconnected " (udp-connected? r) " " (udp-bound? r) " " (addresses r))
        """

    @Test(
        "udp-connect! against connect(host:port:): same addresses; each receives only from its peer; disconnect",
        .enabled(if: ExternalProcess.isInstalled("racket"), "racket is not installed"),
        .timeLimit(.minutes(1)))
    func connectedSocketsAgainstRacket() async throws {
        try await withinTimeLimit(Self.limit) {
            let ours = try await UDPSocket()
            try await ours.bind(host: "127.0.0.1", port: 0)
            let other = try await UDPSocket()
            try await other.bind(host: "127.0.0.1", port: 0)
            let ourPort = try await ours.addresses().localPort
            let otherPort = try await other.addresses().localPort
            let racket = try ExternalProcess("racket", Self.racket(Self.racketConnected, arguments: ["\(ourPort)"]))

            let connected = try Self.fields(try await racket.readLine(), after: "connected")
            let racketPort = try #require(connected.count == 5 ? Int(connected[2]) : nil, "\(connected)")
            #expect(connected == ["#t", "127.0.0.1", "\(racketPort)", "127.0.0.1", "\(ourPort)"])
            try await ours.connect(host: "127.0.0.1", port: racketPort)
            #expect(await ours.isConnected)
            let addresses = try await ours.addresses()
            #expect(
                [addresses.localHost, "\(addresses.localPort)", addresses.remoteHost, "\(addresses.remotePort)"]
                    == ["127.0.0.1", "\(ourPort)", "127.0.0.1", "\(racketPort)"], "Racket's, mirrored")

            // Racket's connected socket takes only ours: the other socket's datagram, sent first, is dropped.
            try await other.send(Array("from other".utf8), to: "127.0.0.1", port: racketPort)
            try await ours.send(Array("from ours".utf8))
            #expect(try await racket.readLine() == "got from ours 127.0.0.1 \(ourPort)")
            #expect(try await racket.readLine() == "then #f")

            // And ours takes only Racket's connected socket: r2's datagram, sent first, is dropped.
            let reply = try await ours.receive()
            #expect(reply.bytes == Array("reply".utf8) && reply.address.port == racketPort)
            var buffer = [UInt8](repeating: 0, count: 100)
            #expect(try await ours.tryReceive(into: &buffer) == nil)

            // Disconnected, ours keeps its port; Racket 8.7 on Linux loses the ephemeral port udp-bind! chose
            // (udp-bound? still says #t), though its docs say a binding cannot change.
            let disconnected = try Self.fields(try await racket.readLine(), after: "disconnected")
            #expect(disconnected == ["#f", "#t", "127.0.0.1", "0", "0.0.0.0", "0"])
            try await ours.disconnect()
            #expect(await ours.isConnected == false)
            #expect(await ours.isBound)
            let after = try await ours.addresses()
            #expect(after.localPort == ourPort && after.remotePort == 0)
            try await other.send(Array("after".utf8), to: "127.0.0.1", port: ourPort)
            let late = try await ours.receive()
            #expect(
                late.bytes == Array("after".utf8) && late.address.port == otherPort,
                "unconnected again, on the same port: datagrams from anyone")

            #expect(try await racket.remainingLines() == [])
            #expect(try await racket.waitForExit() == 0, "racket stderr: \(racket.stderrSoFar)")
            try await ours.close()
            try await other.close()
        }
    }

    // MARK: echo-server

    /// Starts echo-server with `arguments` and returns it with the port of its `listening on` line.
    static func startEchoServer(_ arguments: [String]) async throws -> (ExternalProcess, Int) {
        let server = try ExternalProcess(try ExternalProcess.productPath("echo-server"), ["--port", "0"] + arguments)
        let line = try #require(try await server.readLine(), "echo-server stderr: \(server.stderrSoFar)")
        try #require(line.hasPrefix("echo-server listening on 127.0.0.1:"), "unexpected first line: \(line)")
        return (server, try #require(line.split(separator: ":").last.flatMap { Int($0) }))
    }

    @Test(
        "echo-server echoes datagrams of 0, 1, 1472 and 65,507 bytes on its TCP port number",
        .timeLimit(.minutes(1)))
    func echoServerEchoesDatagrams() async throws {
        try await withinTimeLimit(Self.limit) {
            let (server, port) = try await Self.startEchoServer([])
            let socket = try await UDPSocket()
            try await socket.bind(host: "127.0.0.1", port: 0)
            for size in Self.sizes {
                try await socket.send(patternBytes(size, seed: size), to: "127.0.0.1", port: port)
            }
            for size in Self.sizes {
                let echo = try await socket.receive()
                #expect(echo.bytes == patternBytes(size, seed: size), "the echo of \(size) bytes, in order")
                #expect(echo.address.port == port && !echo.truncated)
            }
            server.sendSignal(SIGTERM)
            #expect(try await server.waitForExit() == 0, "echo-server: \(server.stderrSoFar)")
            try await socket.close()
        }
    }

    @Test(
        "echo-server --no-udp: nothing answers on the port; a connected socket's next receive is ECONNREFUSED",
        .timeLimit(.minutes(1)))
    func echoServerWithoutUDP() async throws {
        try await withinTimeLimit(Self.limit) {
            let (server, port) = try await Self.startEchoServer(["--no-udp"])
            let socket = try await UDPSocket()
            try await socket.connect(host: "127.0.0.1", port: port)
            try await socket.send(Array("anyone?".utf8))
            // The ICMP port-unreachable answering the datagram is the connected socket's pending error.
            let refused = await thrownError { _ = try await socket.receive() } as? NetworkError
            #expect(refused?.errno == .connectionRefused, "got \(String(describing: refused))")
            // The error is reported once: the socket stays usable.
            #expect(await socket.isClosed == false)
            server.sendSignal(SIGTERM)
            #expect(try await server.waitForExit() == 0, "echo-server: \(server.stderrSoFar)")
            try await socket.close()
        }
    }
}
