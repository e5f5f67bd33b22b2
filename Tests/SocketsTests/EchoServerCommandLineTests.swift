// echo-server's command line: its help, what it says when its UDP port is taken, and --unix PATH.
import Sockets
import Testing

@Suite("echo-server's command line")
struct EchoServerCommandLineTests {
    @Test("--help describes every option with its default and exits 0; an unknown option exits 2 with the usage")
    func help() async throws {
        let path = try ExternalProcess.productPath("echo-server")
        let result = try await ExternalProcess.run(path, ["--help"])
        #expect(result.status == 0)
        let text = result.stdout.joined(separator: "\n")
        #expect(text.hasPrefix("usage: echo-server [--port N] [--host H] [--no-udp] [--unix PATH] [--help]"))
        let port = result.stdout.first { $0.hasPrefix("  --port N") }
        #expect(port?.contains("default 7000") == true && port?.contains("0 picks an ephemeral port") == true)
        #expect(result.stdout.first { $0.hasPrefix("  --host H") }?.contains("default 127.0.0.1") == true)
        #expect(result.stdout.first { $0.hasPrefix("  --no-udp") }?.contains("TCP only") == true)
        #expect(result.stdout.first { $0.hasPrefix("  --unix PATH") }?.contains("Unix-domain socket") == true)
        #expect(text.contains("SIGINT or SIGTERM"))

        let wrong = try await ExternalProcess.run(path, ["--bogus"])
        #expect(wrong.status == 2)
        #expect(wrong.stdout.isEmpty)
        #expect(wrong.stderr.contains("unknown argument --bogus"))
        #expect(wrong.stderr.contains("usage: echo-server"))
    }

    @Test("a taken UDP port (TCP's free) is named as UDP, with --no-udp suggested; --no-udp then serves")
    func udpPortTaken() async throws {
        let path = try ExternalProcess.productPath("echo-server")
        // A UDP socket holds the port (without SO_REUSEADDR, so echo-server's UDP bind fails); the TCP port of
        // the same number must be free: look for such a port, a few times at most.
        var holder: UDPSocket?
        var port = 0
        for _ in 0..<20 where holder == nil {
            let socket = try await UDPSocket()
            try await socket.bind(host: "127.0.0.1", port: 0)
            let candidate = try await socket.addresses().localPort
            if let probe = try? await TCPListener(port: candidate, host: "127.0.0.1", reuseAddress: true) {
                try await probe.close()
                holder = socket
                port = candidate
            } else {
                try await socket.close()
            }
        }
        let udp = try #require(holder, "found no port free for TCP whose UDP number was ours")

        let refused = try await ExternalProcess.run(path, ["--port", "\(port)"])
        #expect(refused.status == 1)
        #expect(refused.stdout.isEmpty)
        #expect(refused.stderr.contains("UDP port \(port) is taken (TCP port \(port) was free)"), "\(refused.stderr)")
        #expect(refused.stderr.contains("EADDRINUSE"))
        #expect(refused.stderr.contains("--no-udp"))

        let tcpOnly = try ExternalProcess(path, ["--port", "\(port)", "--no-udp"])
        let line = try await tcpOnly.readLine()
        #expect(line == "echo-server listening on 127.0.0.1:\(port)", "stderr: \(tcpOnly.stderrSoFar)")
        #expect(await tcpOnly.terminate() == 0)
        try await udp.close()
    }

    @Test("--unix PATH: the same echo on a Unix socket (a stale file there is replaced), removed on SIGTERM")
    func unixSocket() async throws {
        let path = try ExternalProcess.productPath("echo-server")
        let directory = try TemporaryDirectory()
        let file = directory.file("echo.sock")
        // A server that stopped without removing its socket file left it there.
        try await UnixListener(path: .path(file)).close()
        #expect(SystemSocketProbe.isSocket(file))

        let server = try ExternalProcess(path, ["--port", "0", "--no-udp", "--unix", file])
        let tcpLine = try #require(try await server.readLine(), "stderr: \(server.stderrSoFar)")
        #expect(tcpLine.hasPrefix("echo-server listening on 127.0.0.1:"))
        #expect(try await server.readLine() == "echo-server listening on unix \(file)")

        try await TCPTimeouts.withValue(UnixSocketTests.timeouts) {
            let client = try await TCPConnection.connect(unixPath: .path(file))
            let data = patternBytes(200_000)
            async let sent: Void = {
                try await client.write(data)
                try await client.closeOutput()
            }()
            var echoed: [UInt8] = []
            while echoed.count <= data.count, let bytes = try await client.read() { echoed += bytes }
            try await sent
            #expect(echoed == data, "every byte echoed, then end-of-file after our closeOutput()")
            #expect(try await client.peerCredentials().processID == server.pid)
            try await client.close()
        }
        #expect(await server.terminate() == 0)
        #expect(!fileExists(file), "echo-server removes its socket file when it exits")

        let bad = try await ExternalProcess.run(path, ["--unix", String(repeating: "x", count: 108)])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--unix takes a socket path of 1 to 107 bytes"))
    }
}
