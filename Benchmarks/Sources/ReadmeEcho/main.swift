// readme-echo: the echo server written exactly as Sockets' README teaches a new user to write one ("A server":
// `serve` with a plain closure, `read(upTo:)`, `write`, `flush`; "UDP": `serve(socket) { datagram in
// datagram.bytes }`), with the benchmark servers' command line. Measured beside the tuned `echo-server` to see
// what the library, not the user, carries (issue 11: "the fast path is the default path").
import BenchSupport
import Sockets

installSignalHandlers()
let options = ServerOptions.parse(name: "readme-echo")
let (listener, socket) = try await withSamePortRetries(options) { () async throws -> (TCPListener, UDPSocket?) in
    let listener = try await TCPListener(port: options.port, host: options.host)
    guard options.udp else { return (listener, nil) }
    let socket = try await UDPSocket(familyHost: options.host)
    do {
        try await socket.bind(host: options.host, port: listener.port)
    } catch {
        try await listener.close()
        throw error
    }
    return (listener, socket)
}
announceListening(options, port: listener.port)

await withDiscardingTaskGroup { group in
    if let socket {
        group.addTask {
            do {
                try await serve(socket) { datagram in datagram.bytes }
            } catch {
                writeError("readme-echo: UDP: \(error)")
            }
        }
    }
    do {
        try await serve(listener) { connection in
            while let bytes = try await connection.read(upTo: 65536) {
                try await connection.write(bytes)
                try await connection.flush()
            }
            try await connection.closeOutput()
        }
    } catch {
        writeError("readme-echo: \(error)")
    }
}
