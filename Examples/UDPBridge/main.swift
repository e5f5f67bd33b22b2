// udp-bridge: a TCP front for a UDP service, and an example of `sync`.
//
//     udp-bridge --to HOST:PORT [--port N] [--idle SECONDS]
//
// Each TCP client gets a UDP socket connected to HOST:PORT. Every line the client sends goes out as one
// datagram; every datagram that comes back is written to the client as a line. One `sync` waits on the three
// things that can happen next, and commits exactly one: a line from the client, a datagram from the service,
// or the idle timeout (the client is then dropped). After the client's end-of-file, the bridge waits for the
// replies still owed (one datagram per line sent, each within the idle time), then closes. A service that is
// down (its port refuses) is reported on standard error, and that client is closed.
// Prints `udp-bridge listening on 127.0.0.1:PORT`; exits 0 on SIGINT or SIGTERM.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Sockets

enum Next: Sendable {
    case line(String?)
    case datagram(Datagram)
    case idle
}

func bridge(_ connection: TCPConnection, to service: Endpoint, idle: Duration) async throws {
    let udp = try await UDPSocket(familyHost: service.host)
    try await udp.connect(host: service.host, port: Int(service.service) ?? 0)
    defer { Task { try? await udp.close() } }
    try await connection.setBufferMode(.none)
    var owed = 0  // replies still expected: one datagram per line sent
    while true {
        switch try await sync(
            connection.readLineEvent().map { Next.line($0) },
            udp.receiveEvent().map { Next.datagram($0) },
            Event.timeout(after: idle).map { Next.idle }
        ) {
        case .line(let line?):
            try await udp.send(Array(line.utf8))
            owed += 1
        case .line(nil):
            // The client half-closed: its replies may still be on their way.
            while owed > 0, let datagram = try await sync(timeout: idle, udp.receiveEvent()) {
                try await connection.writeLine(String(decoding: datagram.bytes, as: UTF8.self))
                owed -= 1
            }
            return
        case .idle:
            return
        case .datagram(let datagram):
            try await connection.writeLine(String(decoding: datagram.bytes, as: UTF8.self))
            owed = max(0, owed - 1)
        }
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

let usageText = """
    usage: udp-bridge --to HOST:PORT [--port N] [--idle SECONDS]

    A TCP front for a UDP service: each line a client sends goes to HOST:PORT as one datagram, and each
    datagram that comes back is written to the client as a line.

      --to HOST:PORT    the UDP service (required); the port from 1 to 65535
      --port N          the TCP port to listen on, on 127.0.0.1 (default 7001; 0: any free port)
      --idle SECONDS    drop a client after this long with nothing from either side, and wait this long
                        for each reply still owed after a client's end-of-file (default 60)
      --help, -h        print this and exit

    Exits 0 on SIGINT or SIGTERM.
    """

func usage(_ message: String) -> Never {
    printError("udp-bridge: \(message)\n\(usageText)")
    exit(2)
}

var arguments = CommandLine.arguments.dropFirst()
var port = 7001
var idle = Duration.seconds(60)
var service: Endpoint?
while let argument = arguments.popFirst() {
    switch argument {
    case "--port":
        guard let value = arguments.popFirst().flatMap({ Int($0) }), (0...65535).contains(value) else {
            usage("--port takes a number from 0 to 65535")
        }
        port = value
    case "--idle":
        guard let seconds = arguments.popFirst().flatMap({ Double($0) }), seconds.isFinite, seconds > 0,
            seconds < 1e9
        else { usage("--idle takes a number of seconds above 0") }
        idle = .milliseconds(Int(seconds * 1000))
    case "--help", "-h":
        print(usageText)
        exit(0)
    case "--to":
        guard let text = arguments.popFirst(), let endpoint = try? Endpoint(parsing: text),
            let port = Int(endpoint.service), (1...65535).contains(port)
        else { usage("--to takes HOST:PORT, the port from 1 to 65535") }
        service = endpoint
    default: usage("unknown argument \(argument)")
    }
}
guard let service else { usage("--to is required") }

let listener: TCPListener
do {
    listener = try await TCPListener(port: port, host: "127.0.0.1")
} catch {
    printError("udp-bridge: \(error)")
    exit(1)
}

// SIGINT and SIGTERM: close the listener (serve stops accepting and winds down), then exit 0.
signal(SIGINT, SIG_IGN)
signal(SIGTERM, SIG_IGN)
let signalQueue = DispatchQueue(label: "udp-bridge.signals")
let signalSources = [SIGINT, SIGTERM].map { number in
    let source = DispatchSource.makeSignalSource(signal: number, queue: signalQueue)
    // @Sendable: top-level code is main-actor code, and a handler inferred as such traps when Dispatch runs it
    // on the signal queue.
    source.setEventHandler { @Sendable in
        Task { try? await listener.close() }
        signalQueue.asyncAfter(deadline: .now() + 1) { exit(0) }
    }
    source.activate()
    return source
}

print("udp-bridge listening on 127.0.0.1:\(listener.port)")
fflush(nil)
do {
    try await serve(
        listener, gracePeriod: .milliseconds(500),
        onError: { error, connection in
            if let error = error as? NetworkError, error.errno == .connectionRefused {
                printError(
                    "udp-bridge: the UDP service at \(service.host):\(service.service) is down (nothing listens "
                        + "there: \(error)); closing the connection from \(connection.remoteAddress)")
            } else {
                printError("udp-bridge: \(connection.remoteAddress): \(error)")
            }
        },
        handler: { connection in
            try await bridge(connection, to: service, idle: idle)
        })
} catch {
    printError("udp-bridge: \(error)")
    exit(1)
}
exit(0)
