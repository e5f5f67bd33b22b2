// echo-server: echoes every byte each client sends, in order, back to it; after a client's end-of-file it
// finishes echoing and closes. It also echoes every UDP datagram, unchanged, to its sender, on the same port
// number. The interface benchmarks and outside test kits drive:
//
//     echo-server [--port N] [--host H] [--no-udp] [--unix PATH] [--help]     N = 7000 by default (0: ephemeral),
//                                                                         H = 127.0.0.1
//
// prints `echo-server listening on HOST:PORT` once it accepts (then `echo-server listening on unix PATH` with
// --unix, which serves the same echo on a Unix-domain socket too), and exits 0 on SIGINT or SIGTERM.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Sockets

struct Options {
    var port = 7000
    var host = "127.0.0.1"
    var udp = true
    var unixPath: String?

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
                guard let value = rest.popFirst(), !value.isEmpty else {
                    throw UsageError(message: "--host takes a host")
                }
                host = value
            case "--no-udp":
                udp = false
            case "--unix":
                guard let value = rest.popFirst(), UnixSocketPath.path(value).isValid else {
                    throw UsageError(message: "--unix takes a socket path of 1 to 107 bytes")
                }
                unixPath = value
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

/// Echoes one connection until its end-of-file, then sends FIN. A reset or vanished peer throws, which ends
/// this connection only (`serve` closes it).
///
/// `isolated`: the whole loop runs on the connection's actor (its event loop's queue), so each read and write
/// is a plain call, with no executor hop between them. `read(upTo:)` receives straight into the array it
/// returns, so an idle connection holds no buffer of its own (a buffer kept for `read(into:)` cost 2 KiB a
/// connection and measured no faster).
func echo(_ connection: isolated TCPConnection) async throws {
    try await connection.setBufferMode(.none)
    while let bytes = try await connection.read(upTo: 65536) {
        try await connection.write(bytes)
    }
    try await connection.closeOutput()
}

/// Echoes datagrams in batches until the socket closes or the task is cancelled.
func echoDatagrams(_ socket: UDPSocket) async {
    while !Task.isCancelled {
        do {
            try await socket.sendBatch(try await socket.receiveBatch(maxCount: 32))
        } catch is CancellationError {
            return
        } catch let error as NetworkError where error.code == .closed {
            return
        } catch {
            // A datagram the system would not send (a sender that is gone): drop it, go on.
        }
    }
}

let usage = "usage: echo-server [--port N] [--host H] [--no-udp] [--unix PATH] [--help]"
let help = """
    \(usage)

    Echoes every byte each TCP client sends back to it, and every UDP datagram back to its sender.

    options:
      --port N    the port to listen on, for TCP and for UDP (default 7000; 0 picks an ephemeral port)
      --host H    the address to listen on (default 127.0.0.1; ::1 for IPv6, 0.0.0.0 for every IPv4 address)
      --no-udp    serve TCP only: no UDP socket is opened
      --unix PATH serve the same echo on a Unix-domain socket at PATH too (a stale socket file there is
                  replaced; the file is removed on exit)
      --help, -h  print this help and exit

    Once listening it prints "echo-server listening on HOST:PORT". SIGINT or SIGTERM closes the listener,
    gives open connections half a second to finish, and exits 0.
    """

let options: Options
do {
    options = try Options(arguments: Array(CommandLine.arguments.dropFirst()))
} catch {
    if let message = error.message {
        printError("echo-server: \(message)\n\(usage)")
        exit(2)
    }
    print(help)
    exit(0)
}

/// The UDP port is taken while the TCP port of the same number was free: say which, and what to do.
struct UDPPortTaken: Error, CustomStringConvertible {
    let underlying: NetworkError
    let port: Int
    var description: String {
        "UDP port \(port) is taken (TCP port \(port) was free): \(underlying). "
            + "Run with --no-udp to serve TCP only, or choose another --port."
    }
}

/// The TCP listener and, unless `--no-udp`, a UDP socket bound to the same port number. With port 0 the TCP
/// port is chosen first; if its number is taken for UDP, both are chosen again.
func open(_ options: Options) async throws -> (TCPListener, UDPSocket?) {
    for _ in 0..<8 {
        let listener = try await TCPListener(port: options.port, host: options.host, reuseAddress: true)
        guard options.udp else { return (listener, nil) }
        let socket = try await UDPSocket(familyHost: options.host)
        do {
            try await socket.bind(host: options.host, port: listener.port, reuseAddress: true)
            return (listener, socket)
        } catch let error as NetworkError where error.errno == .addressInUse {
            try await listener.close()
            try await socket.close()
            guard options.port == 0 else { throw UDPPortTaken(underlying: error, port: options.port) }
        }
    }
    throw NetworkError(.system(.addressInUse), operation: "listen", address: "\(options.host):0")
}

let listener: TCPListener
let datagramSocket: UDPSocket?
let unixListener: UnixListener?
do {
    (listener, datagramSocket) = try await open(options)
    unixListener = try await options.unixPath.asyncMap {
        try await UnixListener(path: .path($0), removeStaleSocket: true, removesPathOnClose: true)
    }
} catch {
    printError("echo-server: \(error)")
    exit(1)
}

let server = Task {
    await withDiscardingTaskGroup { group in
        if let datagramSocket {
            group.addTask {
                await datagramSocket.eventLoop.withExecutorPreference { await echoDatagrams(datagramSocket) }
            }
        }
        if let unixListener {
            group.addTask {
                do {
                    try await serve(unixListener, gracePeriod: .milliseconds(500)) { try await echo($0) }
                } catch {
                    printError("echo-server: \(error)")
                }
            }
        }
        do {
            // Closing the listener (on a signal) ends this: handlers get half a second to finish.
            try await serve(listener, gracePeriod: .milliseconds(500)) { try await echo($0) }
        } catch {
            printError("echo-server: \(error)")
        }
        group.cancelAll()
    }
}

// SIGINT and SIGTERM: close the listener (serve stops accepting and winds down), then exit 0.
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
            try? await unixListener?.close()
        }
        // However the connections end, the process does not outlive the signal by more than a second.
        signalQueue.asyncAfter(deadline: .now() + 1) { exit(0) }
    }
    source.activate()
    return source
}

let shownHost = options.host.contains(":") ? "[\(options.host)]" : options.host
print("echo-server listening on \(shownHost):\(listener.port)")
if let unixListener { print("echo-server listening on unix \(unixListener.path)") }
fflush(nil)
await server.value
exit(0)

extension Optional {
    /// `map` with an async transform.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
