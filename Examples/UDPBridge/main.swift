// udp-bridge: a TCP front for a UDP service, and an example of `sync`.
//
//     udp-bridge --to HOST:PORT [--port N] [--idle SECONDS]
//
// Each TCP client gets a UDP socket connected to HOST:PORT. Every line the client sends goes out as one
// datagram; every datagram that comes back is written to the client as a line. One `sync` waits on the three
// things that can happen next, and commits exactly one: a line from the client, a datagram from the service,
// or the idle timeout (the client is then dropped). Prints `udp-bridge listening on 127.0.0.1:PORT`.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
    while true {
        switch try await sync(
            connection.readLineEvent().map { Next.line($0) },
            udp.receiveEvent().map { Next.datagram($0) },
            Event.timeout(after: idle).map { Next.idle }
        ) {
        case .line(let line?):
            try await udp.send(Array(line.utf8))
        case .line(nil), .idle:
            return
        case .datagram(let datagram):
            try await connection.writeLine(String(decoding: datagram.bytes, as: UTF8.self))
        }
    }
}

func usage(_ message: String) -> Never {
    var text = "udp-bridge: \(message)\nusage: udp-bridge --to HOST:PORT [--port N] [--idle SECONDS]\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
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
              seconds < 1e9 else { usage("--idle takes a number of seconds above 0") }
        idle = .milliseconds(Int(seconds * 1000))
    case "--to":
        guard let text = arguments.popFirst(), let endpoint = try? Endpoint(parsing: text),
              let port = Int(endpoint.service), (1...65535).contains(port)
        else { usage("--to takes HOST:PORT, the port from 1 to 65535") }
        service = endpoint
    default: usage("unknown argument \(argument)")
    }
}
guard let service else { usage("--to is required") }

do {
    let listener = try await TCPListener(port: port, host: "127.0.0.1")
    print("udp-bridge listening on 127.0.0.1:\(listener.port)")
    fflush(nil)
    try await serve(listener) { connection in
        try await bridge(connection, to: service, idle: idle)
    }
} catch {
    var text = "udp-bridge: \(error)\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}
