// echo-server: echoes every byte each client sends, in order, back to it; after a client's end-of-file it
// finishes echoing and closes. The interface benchmarks and outside test kits drive:
//
//     echo-server [--port N] [--host H]     N = 7000 by default (0: ephemeral), H = 127.0.0.1
//
// prints `echo-server listening on HOST:PORT` once it accepts, and exits 0 on SIGINT or SIGTERM.
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Sockets

struct Options {
    var port = 7000
    var host = "127.0.0.1"

    init(arguments: [String]) throws(UsageError) {
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            switch argument {
            case "--port":
                guard let value = rest.popFirst(), let port = Int(value), (0...65535).contains(port) else {
                    throw UsageError(message: "--port takes a number from 0 to 65535")
                }
                self.port = port
            case "--host":
                guard let value = rest.popFirst(), !value.isEmpty else { throw UsageError(message: "--host takes a host") }
                host = value
            case "--help", "-h":
                throw UsageError(message: nil)
            default:
                throw UsageError(message: "unknown argument \(argument)")
            }
        }
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

struct UsageError: Error {
    let message: String?
}

/// Echoes one connection until its end-of-file, then closes it. A peer that resets ends only this one.
func echo(_ connection: TCPConnection) async {
    do {
        try await connection.setBufferMode(.none)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while let count = try await connection.read(into: &buffer) {
            try await connection.write(buffer[..<count])
        }
        try await connection.closeOutput()
    } catch {
        // A reset, a vanished peer or cancellation at shutdown: this connection ends, the server goes on.
    }
    try? await connection.close()
}

func serve(_ listener: TCPListener) async {
    await withDiscardingTaskGroup { group in
        do {
            for try await connection in listener.connections {
                group.addTask {
                    await connection.eventLoop.withExecutorPreference { await echo(connection) }
                }
            }
        } catch {
            print("echo-server: \(error)")
        }
        group.cancelAll()
    }
}

let options: Options
do {
    options = try Options(arguments: Array(CommandLine.arguments.dropFirst()))
} catch {
    let usage = "usage: echo-server [--port N] [--host H]"
    if let message = error.message {
        printError("echo-server: \(message)\n\(usage)")
        exit(2)
    }
    print(usage)
    exit(0)
}

let listener: TCPListener
do {
    listener = try await TCPListener(port: options.port, host: options.host, reuseAddress: true)
} catch {
    printError("echo-server: \(error)")
    exit(1)
}

let server = Task { await serve(listener) }

// SIGINT and SIGTERM: close the listener (the connections sequence ends), cancel every connection, exit 0.
signal(SIGINT, SIG_IGN)
signal(SIGTERM, SIG_IGN)
let signalQueue = DispatchQueue(label: "echo-server.signals")
let signalSources = [SIGINT, SIGTERM].map { number in
    let source = DispatchSource.makeSignalSource(signal: number, queue: signalQueue)
    // @Sendable: top-level code is main-actor code, and a handler inferred as such traps when Dispatch runs it
    // on the signal queue.
    source.setEventHandler { @Sendable in
        Task {
            try? await listener.close()
            server.cancel()
        }
        // However the connections end, the process does not outlive the signal by more than a second.
        signalQueue.asyncAfter(deadline: .now() + 1) { exit(0) }
    }
    source.activate()
    return source
}

let shownHost = options.host.contains(":") ? "[\(options.host)]" : options.host
print("echo-server listening on \(shownHost):\(listener.port)")
fflush(nil)
await server.value
exit(0)
