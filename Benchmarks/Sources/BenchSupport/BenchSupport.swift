// What every benchmark echo server shares with Sockets' own `echo-server`: the command line
//
//     NAME [--port N] [--host H]        N = 0 (default): an ephemeral port; H = 127.0.0.1 by default
//
// the line `echo-server listening on HOST:PORT` (flushed) once both TCP and UDP are bound, and SIGTERM/SIGINT → exit 0.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct ServerOptions: Sendable {
    public var port = 0
    public var host = "127.0.0.1"
    public var udp = true

    /// Parses the command line; prints usage and exits 2 on a bad argument, 0 on `--help`.
    public static func parse(name: String, arguments: [String] = Array(CommandLine.arguments.dropFirst()))
        -> ServerOptions
    {
        var options = ServerOptions()
        var rest = arguments[...]
        let usage = "usage: \(name) [--port N] [--host H] [--no-udp]"
        func fail(_ message: String) -> Never {
            writeError("\(name): \(message)\n\(usage)")
            exit(2)
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--port":
                guard let value = rest.popFirst(), let port = Int(value), (0...65535).contains(port) else {
                    fail("--port takes a number from 0 to 65535")
                }
                options.port = port
            case "--host":
                guard let value = rest.popFirst(), !value.isEmpty else { fail("--host takes a host") }
                options.host = value
            case "--no-udp":
                options.udp = false
            case "--help", "-h":
                print(usage)
                exit(0)
            default:
                fail("unknown argument \(argument)")
            }
        }
        return options
    }

    /// `HOST:PORT`, with brackets around an IPv6 host.
    public func shown(port: Int) -> String {
        (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
    }
}

/// Writes a line to standard error.
public func writeError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Prints `echo-server listening on HOST:PORT` and flushes it.
public func announceListening(_ options: ServerOptions, port: Int) {
    print("echo-server listening on \(options.shown(port: port))")
    fflush(nil)
}

/// SIGPIPE ignored (a peer gone mid-write is an error return, never a signal); SIGTERM and SIGINT end the process
/// at once with status 0, whatever its threads are doing (an async-signal-safe `_exit`, so no runtime or event loop
/// is asked to cooperate).
public func installSignalHandlers() {
    signal(SIGPIPE, SIG_IGN)
    signal(SIGTERM) { _ in _exit(0) }
    signal(SIGINT) { _ in _exit(0) }
}

/// Retries `body` (which binds TCP then UDP to the same port) when port 0 gave a TCP port whose number is taken for UDP.
public func withSamePortRetries<T>(_ options: ServerOptions, _ body: () throws -> T) throws -> T {
    var attempt = 0
    while true {
        do {
            return try body()
        } catch {
            attempt += 1
            if options.port != 0 || attempt >= 8 { throw error }
        }
    }
}

public func withSamePortRetries<T>(_ options: ServerOptions, _ body: () async throws -> T) async throws -> T {
    var attempt = 0
    while true {
        do {
            return try await body()
        } catch {
            attempt += 1
            if options.port != 0 || attempt >= 8 { throw error }
        }
    }
}
