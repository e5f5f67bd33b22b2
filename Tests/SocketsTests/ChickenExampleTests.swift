// The example at the end of CHICKEN's `tcp` unit page (client.scm and server.scm), ported to Swift as the
// products chicken-server and chicken-client: run here as built by `swift test` (which builds every product
// before it tests), never built by the test itself.
import Testing

@Suite("CHICKEN's client.scm / server.scm example, ported")
struct ChickenExampleTests {
    /// The port at the end of `chicken-server listening on 127.0.0.1:PORT`.
    static func listeningPort(_ line: String?) throws -> Int {
        let line = try #require(line, "chicken-server printed nothing")
        try #require(line.hasPrefix("chicken-server listening on 127.0.0.1:"), "unexpected first line: \(line)")
        return try #require(line.split(separator: ":").last.flatMap { Int($0) })
    }

    @Test("chicken-server prints Good Bye! and chicken-client prints Hello!, both exit 0", .timeLimit(.minutes(1)))
    func serverAndClient() async throws {
        let server = try ExternalProcess(try ExternalProcess.productPath("chicken-server"), ["--port", "0"])
        let port = try Self.listeningPort(try await server.readLine())

        let client = try await ExternalProcess.run(
            try ExternalProcess.productPath("chicken-client"), ["--port", "\(port)"])
        #expect(client.stdout == ["Hello!"], "chicken-client stderr: \(client.stderr)")
        #expect(client.status == 0)

        let printed = try await server.remainingLines()
        #expect(printed == ["Good Bye!"], "chicken-server stderr: \(server.stderrSoFar)")
        #expect(try await server.waitForExit() == 0)
    }

    @Test("chicken-server and chicken-client reject bad arguments with status 2 and a usage line")
    func badArguments() async throws {
        for (product, arguments) in [
            ("chicken-server", ["--port", "70000"]), ("chicken-client", ["--port", "0"]),
            ("chicken-client", ["--bogus"]),
        ] {
            let result = try await ExternalProcess.run(try ExternalProcess.productPath(product), arguments)
            #expect(result.status == 2, "\(product) \(arguments)")
            #expect(result.stderr.contains("usage: \(product)"), "\(product) \(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
    }

    // MARK: Against the CHICKEN originals (where CHICKEN is installed: apt-get install chicken-bin)

    /// The page's files as CHICKEN 5.3 runs them: `(declare (uses tcp))` is CHICKEN 4's; 5.3 needs the tcp and
    /// io modules imported (without them `tcp-listen` and `write-line` are unbound).
    static let chickenImports = "(import (chicken tcp) (chicken io))"

    @Test(
        "CHICKEN's client.scm against chicken-server",
        .enabled(if: ExternalProcess.isInstalled("csi"), "CHICKEN (csi) is not installed"),
        .timeLimit(.minutes(1)))
    func originalClientAgainstSwiftServer() async throws {
        let server = try ExternalProcess(try ExternalProcess.productPath("chicken-server"), ["--port", "0"])
        let port = try Self.listeningPort(try await server.readLine())
        let clientScheme = """
            \(Self.chickenImports)
            (define-values (i o) (tcp-connect "localhost" \(port)))
            (write-line "Good Bye!" o)
            (print (read-line i))
            """
        let client = try await ExternalProcess.run("csi", ["-q", "-e", clientScheme])
        #expect(client.stdout == ["Hello!"], "csi stderr: \(client.stderr)")
        #expect(client.status == 0)
        let printed = try await server.remainingLines()
        #expect(printed == ["Good Bye!"], "chicken-server stderr: \(server.stderrSoFar)")
        #expect(try await server.waitForExit() == 0)
    }

    @Test(
        "chicken-client against CHICKEN's server.scm",
        .enabled(if: ExternalProcess.isInstalled("csi"), "CHICKEN (csi) is not installed"),
        .timeLimit(.minutes(1)))
    func swiftClientAgainstOriginalServer() async throws {
        // server.scm on port 0, printing the port it got (tcp-listener-port) so the client can find it.
        let serverScheme = """
            \(Self.chickenImports)
            (define l (tcp-listen 0 4 "127.0.0.1"))
            (print "listening " (tcp-listener-port l))
            (flush-output)
            (define-values (i o) (tcp-accept l))
            (write-line "Hello!" o)
            (print (read-line i))
            (close-input-port i)
            (close-output-port o)
            """
        let server = try ExternalProcess("csi", ["-q", "-e", serverScheme])
        let listening = try #require(try await server.readLine(), "csi stderr: \(server.stderrSoFar)")
        let port = try #require(Int(listening.dropFirst("listening ".count)), "unexpected line: \(listening)")

        let client = try await ExternalProcess.run(
            try ExternalProcess.productPath("chicken-client"), ["--port", "\(port)"])
        #expect(client.stdout == ["Hello!"], "chicken-client stderr: \(client.stderr)")
        #expect(client.status == 0)
        let printed = try await server.remainingLines()
        #expect(printed == ["Good Bye!"], "csi stderr: \(server.stderrSoFar)")
        #expect(try await server.waitForExit() == 0)
    }
}
