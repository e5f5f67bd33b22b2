// chicken-server: the server of the example at the end of CHICKEN's `tcp` unit page, in Swift.
//
//     ; server.scm
//     (declare (uses tcp))
//     (define l (tcp-listen 4242))
//     (define-values (i o) (tcp-accept l))
//     (write-line "Hello!" o)
//     (print (read-line i))
//     (close-input-port i)
//     (close-output-port o)
//
// It accepts one client, writes the line "Hello!" to it, prints the line the client sends, and closes.
//
//     chicken-server [--port N] [--host H]     N = 4242 by default (0: ephemeral), H = 127.0.0.1
//
// Once it listens it prints `chicken-server listening on HOST:PORT` (flushed), so that a script or a test can
// start it on port 0 and read the port back. CHICKEN's tcp unit is IPv4-only, and this listens on the IPv4
// loopback by default; `--host 0.0.0.0` listens on every IPv4 address, as `(tcp-listen 4242)` does.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Sockets

/// Writes a line to standard error.
func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func parseArguments(_ arguments: [String]) -> (port: Int, host: String) {
    let usage = "usage: chicken-server [--port N] [--host H]"
    var port = 4242
    var host = "127.0.0.1"
    var rest = arguments[...]
    while let argument = rest.popFirst() {
        switch argument {
        case "--port":
            guard let value = rest.popFirst(), let number = Int(value), (0...65535).contains(number) else {
                printError("chicken-server: --port takes a number from 0 to 65535\n\(usage)")
                exit(2)
            }
            port = number
        case "--host":
            guard let value = rest.popFirst(), !value.isEmpty else {
                printError("chicken-server: --host takes a host\n\(usage)")
                exit(2)
            }
            host = value
        case "--help", "-h":
            print(usage)
            exit(0)
        default:
            printError("chicken-server: unknown argument \(argument)\n\(usage)")
            exit(2)
        }
    }
    return (port, host)
}

let options = parseArguments(Array(CommandLine.arguments.dropFirst()))
do {
    // (define l (tcp-listen 4242)): CHICKEN's tcp-listen sets SO_REUSEADDR, so the server starts again at
    // once on port 4242 while the last run's connection lingers in TIME_WAIT; so does this one.
    let listener = try await TCPListener(port: options.port, host: options.host, reuseAddress: true)
    let shownHost = options.host.contains(":") ? "[\(options.host)]" : options.host
    print("chicken-server listening on \(shownHost):\(listener.port)")
    fflush(nil)

    // (define-values (i o) (tcp-accept l))
    let connection = try await listener.accept()
    try await listener.close()

    // (write-line "Hello!" o): CHICKEN's output is unbuffered by default; here it is block-buffered, so flush.
    try await connection.writeLine("Hello!")
    try await connection.flush()

    // (print (read-line i)): CHICKEN prints #!eof when the client sends nothing.
    let line = try await connection.readLine()
    print(line ?? "#!eof")
    fflush(nil)

    // (close-input-port i) (close-output-port o)
    await connection.closeInput()
    try await connection.closeOutput()
} catch {
    printError("chicken-server: \(error)")
    exit(1)
}
