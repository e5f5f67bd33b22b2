// sequence-bench: what iterating a connection's `bytes` and `lines` costs beside `read(upTo:)` and
// `readLine()`, from top-level code (the main actor) and from another actor; and what a request written
// without `flush()` costs beside one flushed by hand. Loopback only.
//
//     sequence-bench [--megabytes N] [--round-trips N]
//
// Prints one line a measurement (ns per byte, per line or per round trip), then the differences the issue
// judges: bytes over read(upTo:), per byte.
#if canImport(Glibc)
import Glibc
#endif
import Sockets

/// The command line: how much to stream, how many round trips.
func options() -> (megabytes: Int, roundTrips: Int) {
    var megabytes = 10
    var roundTrips = 20_000
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--megabytes": megabytes = arguments.popFirst().flatMap { Int($0) } ?? megabytes
        case "--round-trips": roundTrips = arguments.popFirst().flatMap { Int($0) } ?? roundTrips
        default:
            print("usage: sequence-bench [--megabytes N] [--round-trips N]")
            exit(2)
        }
    }
    return (megabytes, roundTrips)
}
let (megabytes, roundTrips) = options()
let total = megabytes << 20

/// A connected pair on 127.0.0.1; the client side writes `payload` and closes its output.
func pair(sending payload: [UInt8]) async throws -> (server: TCPConnection, client: TCPConnection) {
    let listener = try await TCPListener(port: 0, host: "127.0.0.1")
    async let accepted = listener.accept()
    let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
    let server = try await accepted
    try await listener.close()
    Task {
        try await client.setBufferMode(.none)
        var offset = 0
        while offset < payload.count {
            try await client.write(payload[offset..<min(payload.count, offset + 65536)])
            offset += 65536
        }
        try await client.closeOutput()
    }
    return (server, client)
}

/// `value` with `digits` decimals (no Foundation here).
func fixed(_ value: Double, _ digits: Int, sign: Bool = false) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int((abs(value) * scale).rounded())
    let whole = "\(scaled / Int(scale))"
    let fraction = String("\(scaled % Int(scale) + Int(scale))".dropFirst())
    let prefix = value < 0 ? "-" : (sign ? "+" : "")
    return prefix + whole + (digits > 0 ? "." + fraction : "")
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Runs `body` over a fresh pair carrying `payload`; returns nanoseconds per `unit` (and checks the count).
func measure(
    _ name: String, _ payload: [UInt8], units: Int, unit: String,
    _ body: (TCPConnection) async throws -> Int
) async throws -> Double {
    let (server, client) = try await pair(sending: payload)
    let start = ContinuousClock.now
    let counted = try await body(server)
    let elapsed = ContinuousClock.now - start
    precondition(counted == units, "\(name): counted \(counted), expected \(units)")
    try await server.close()
    try await client.close()
    let nanoseconds = seconds(elapsed) * 1e9 / Double(units)
    print("\(name): \(fixed(nanoseconds, 1)) ns per \(unit)")
    return nanoseconds
}

actor Reader {
    func countBytes(_ connection: TCPConnection) async throws -> Int {
        var count = 0
        for try await _ in connection.bytes { count += 1 }
        return count
    }

    func countLines(_ connection: TCPConnection) async throws -> Int {
        var count = 0
        for try await _ in connection.lines { count += 1 }
        return count
    }
}

let bytes = [UInt8](repeating: 0x61, count: total)
let lineText = Array(String(repeating: "x", count: 49).utf8) + [10]
let lineCount = total / lineText.count
let lines = Array([[UInt8]](repeating: lineText, count: lineCount).joined())
let reader = Reader()

let readUpTo = try await measure("read(upTo: 65536), top level", bytes, units: total, unit: "byte") { connection in
    var count = 0
    while let chunk = try await connection.read(upTo: 65536) { count += chunk.count }
    return count
}
let bytesTop = try await measure("for byte in bytes, top level", bytes, units: total, unit: "byte") { connection in
    var count = 0
    for try await _ in connection.bytes { count += 1 }
    return count
}
let bytesActor = try await measure("for byte in bytes, another actor", bytes, units: total, unit: "byte") {
    try await reader.countBytes($0)
}
let readLines = try await measure("readLine(), top level", lines, units: lineCount, unit: "line") { connection in
    var count = 0
    while try await connection.readLine() != nil { count += 1 }
    return count
}
let linesTop = try await measure("for line in lines, top level", lines, units: lineCount, unit: "line") { connection in
    var count = 0
    for try await _ in connection.lines { count += 1 }
    return count
}
let linesActor = try await measure("for line in lines, another actor", lines, units: lineCount, unit: "line") {
    try await reader.countLines($0)
}

/// Round trips of a line: the client writes a line (block-buffered) and reads the reply.
func roundTrip(flushing: Bool, count roundTrips: Int) async throws -> Double {
    let listener = try await TCPListener(port: 0, host: "127.0.0.1")
    let server = Task {
        try await serve(listener) { connection in
            for try await line in connection.lines {
                try await connection.writeLine(line)
                try await connection.flush()
            }
        }
    }
    let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.port)
    let start = ContinuousClock.now
    for _ in 0..<roundTrips {
        try await client.writeLine("ping")
        if flushing { try await client.flush() }
        guard try await client.readLine() == "ping" else { fatalError("no reply") }
    }
    let elapsed = ContinuousClock.now - start
    try await client.close()
    try await listener.close()
    try await server.value
    let microseconds = seconds(elapsed) * 1e6 / Double(roundTrips)
    print(
        "round trip, \(flushing ? "flush() by hand" : "no flush(): the read sends"): "
            + "\(fixed(microseconds, 2)) µs")
    return microseconds
}
let flushed = try await roundTrip(flushing: true, count: roundTrips)
let unflushed = try await roundTrip(flushing: false, count: roundTrips)

print("")
print(
    "bytes over read(upTo:): \(fixed(bytesTop - readUpTo, 1, sign: true)) ns per byte (top level), "
        + "\(fixed(bytesActor - readUpTo, 1, sign: true)) ns per byte (another actor); target: at most ~60")
print(
    "lines over readLine(): \(fixed(linesTop - readLines, 1, sign: true)) ns per line (top level), "
        + "\(fixed(linesActor - readLines, 1, sign: true)) ns per line (another actor)")
print("round trip without flush() over with: \(fixed(unflushed - flushed, 2, sign: true)) µs")
