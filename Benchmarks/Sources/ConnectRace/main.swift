// connect-race: connect latency to a name with one dead and one live address — Sockets' Happy Eyeballs beside
// Sockets' sequential order (Racket's) and beside SwiftNIO's `ClientBootstrap` (Happy Eyeballs too).
//
//     connect-race [--host NAME] [--iterations N] [--sequential-iterations M] [--sequential-timeout S]
//
// Run it through `Benchmarks/connect-race`, which makes the network namespace it needs: only `lo`, where NAME
// (`dual.test`) resolves to 2001:db8::dead (whose SYNs an nft rule drops) and to 127.0.0.1, where this program
// listens. It refuses to run where any interface but `lo` exists, so no packet can leave the machine.
#if canImport(Glibc)
import Glibc
#endif
import BenchSupport
import Dispatch
import NIOCore
import NIOPosix
import Sockets

struct Options {
    var host = "dual.test"
    var iterations = 20
    var sequentialIterations = 2
    var sequentialTimeout = 5
}

func parse() -> Options {
    var options = Options()
    var rest = CommandLine.arguments.dropFirst()
    func number(_ name: String) -> Int {
        guard let text = rest.popFirst(), let value = Int(text), value > 0 else {
            writeError("connect-race: \(name) takes a positive number")
            exit(2)
        }
        return value
    }
    while let argument = rest.popFirst() {
        switch argument {
        case "--host": options.host = rest.popFirst() ?? options.host
        case "--iterations": options.iterations = number(argument)
        case "--sequential-iterations": options.sequentialIterations = number(argument)
        case "--sequential-timeout": options.sequentialTimeout = number(argument)
        default:
            writeError(
                "usage: connect-race [--host NAME] [--iterations N] [--sequential-iterations M] "
                    + "[--sequential-timeout S]")
            exit(2)
        }
    }
    return options
}

/// The interfaces of this network namespace, from /proc/net/dev.
func interfaces() -> [String] {
    guard let file = fopen("/proc/net/dev", "r") else { return [] }
    defer { fclose(file) }
    var names: [String] = []
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if let colon = text.firstIndex(of: ":") {
            names.append(text[..<colon].trimmingCharacters(in: " "))
        }
    }
    return names
}

extension StringProtocol {
    func trimmingCharacters(in character: Character) -> String {
        String(drop { $0 == character }.reversed().drop { $0 == character }.reversed())
    }
}

/// One measured way of connecting: the time of each connect (closing it is not timed), or of its failure.
struct Row {
    let name: String
    var seconds: [Double] = []
    var failures: [String] = []

    var markdown: String {
        let sorted = seconds.sorted()
        func ms(_ value: Double) -> String {
            let tenths = Int((value * 10_000).rounded())
            return "\(tenths / 10).\(tenths % 10)"
        }
        func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))] }
        let failed = failures.isEmpty ? "0" : "\(failures.count): \(failures[0])"
        guard !sorted.isEmpty else { return "| \(name) | 0 | – | – | – | – | \(failed) |" }
        return "| \(name) | \(sorted.count + failures.count) | \(ms(sorted[0])) | \(ms(percentile(0.5))) "
            + "| \(ms(percentile(0.9))) | \(ms(sorted[sorted.count - 1])) | \(failed) |"
    }
}

func measure(_ name: String, times: Int, _ connect: () async throws -> @Sendable () async -> Void) async -> Row {
    var row = Row(name: name)
    for _ in 0..<times {
        let start = ContinuousClock.now
        do {
            let close = try await connect()
            let elapsed = ContinuousClock.now - start
            row.seconds.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            await close()
        } catch {
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            row.failures.append("after \(Int((seconds * 1000).rounded())) ms, \(error)")
        }
    }
    return row
}

let options = parse()
let found = interfaces()
guard found == ["lo"] else {
    writeError(
        "connect-race: run it in a network namespace with only lo (Benchmarks/connect-race makes one); "
            + "interfaces here: \(found)")
    exit(2)
}

let listener = try await TCPListener(port: 0, host: "127.0.0.1")
let port = listener.port
let server = Task {
    // Each connection stays open until the client closes it.
    for try await connection in listener.connections {
        Task {
            _ = try? await connection.read()
            try? await connection.close()
        }
    }
}
let addresses = try await Resolver.resolve(host: options.host, service: "\(port)")
writeError("connect-race: \(options.host) resolves to \(addresses.map(\.description).joined(separator: ", "))")

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let bootstrap = ClientBootstrap(group: group).connectTimeout(.seconds(10))
let n = options.iterations
var rows: [Row] = []
rows.append(
    await measure("Sockets, Happy Eyeballs (default), `\(options.host)`", times: n) {
        let connection = try await TCPConnection.connect(host: options.host, port: port, timeout: .seconds(10))
        return { try? await connection.close() }
    })
rows.append(
    await measure("SwiftNIO `ClientBootstrap` (Happy Eyeballs), `\(options.host)`", times: n) {
        let channel = try await bootstrap.connect(host: options.host, port: port).get()
        return { try? await channel.close() }
    })
rows.append(
    await measure(
        "Sockets, `.sequential` (Racket's order), `\(options.host)`, timeout \(options.sequentialTimeout) s",
        times: options.sequentialIterations
    ) {
        let connection = try await TCPConnection.connect(
            host: options.host, port: port,
            timeout: .seconds(options.sequentialTimeout), strategy: .sequential)
        return { try? await connection.close() }
    })
rows.append(
    await measure("Sockets, `127.0.0.1` (numeric, for reference)", times: n) {
        let connection = try await TCPConnection.connect(host: "127.0.0.1", port: port)
        return { try? await connection.close() }
    })
rows.append(
    await measure("SwiftNIO `ClientBootstrap`, `127.0.0.1` (numeric, for reference)", times: n) {
        let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        return { try? await channel.close() }
    })

print("| how | connects | min ms | median ms | p90 ms | max ms | failed |")
print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
for row in rows { print(row.markdown) }
server.cancel()
try await listener.close()
try await group.shutdownGracefully()
