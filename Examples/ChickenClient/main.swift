// chicken-client: the client of the example at the end of CHICKEN's `tcp` unit page, in Swift.
//
//     ; client.scm
//     (declare (uses tcp))
//     (define-values (i o) (tcp-connect "localhost" 4242))
//     (write-line "Good Bye!" o)
//     (print (read-line i))
//
// It connects to port 4242 of "localhost", writes the line "Good Bye!", and prints the line it reads.
//
//     chicken-client [--port N] [--host H]     N = 4242 by default, H = localhost
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
    let usage = "usage: chicken-client [--port N] [--host H]"
    var port = 4242
    var host = "localhost"
    var rest = arguments[...]
    while let argument = rest.popFirst() {
        switch argument {
        case "--port":
            guard let value = rest.popFirst(), let number = Int(value), (1...65535).contains(number) else {
                printError("chicken-client: --port takes a number from 1 to 65535\n\(usage)")
                exit(2)
            }
            port = number
        case "--host":
            guard let value = rest.popFirst(), !value.isEmpty else {
                printError("chicken-client: --host takes a host\n\(usage)")
                exit(2)
            }
            host = value
        case "--help", "-h":
            print(usage)
            exit(0)
        default:
            printError("chicken-client: unknown argument \(argument)\n\(usage)")
            exit(2)
        }
    }
    return (port, host)
}

let options = parseArguments(Array(CommandLine.arguments.dropFirst()))
do {
    // (define-values (i o) (tcp-connect "localhost" 4242)): every address of "localhost" is tried in turn.
    let connection = try await TCPConnection.connect(host: options.host, port: options.port)

    // (write-line "Good Bye!" o): CHICKEN's output is unbuffered by default; here it is block-buffered.
    try await connection.writeLine("Good Bye!")
    try await connection.flush()

    // (print (read-line i)): CHICKEN prints #!eof at end-of-file.
    let line = try await connection.readLine()
    print(line ?? "#!eof")
    fflush(nil)

    // The Scheme program leaves closing to its exit; close here explicitly.
    try await connection.close()
} catch {
    printError("chicken-client: \(error)")
    exit(1)
}
