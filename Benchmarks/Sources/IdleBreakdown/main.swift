// idle-breakdown: what one idle connection costs in the server's memory, part by part.
//
//   idle-breakdown [--connections N] MODE
//
// Each MODE runs in a process of its own (RSS only grows): it warms up, reads VmRSS, makes N loopback
// connections (the clients are bare descriptors of this process: no user-space memory), holds them idle, reads
// VmRSS again and prints the growth per connection. The modes add one part at a time:
//
//   connections      accepted connections held in an array: actor, handle, epoll registration
//   read-tasks       + a task per connection waiting in read(upTo:) (the task and its frames)
//   preferred-tasks  + the same task inside EventLoop.withExecutorPreference (as serve runs its handlers)
//   serve-readme     serve with the README's handler (read(upTo:), write, flush): what a README server holds
//   serve-echo       serve with echo-server's handler (isolated connection, its own 2 KiB buffer)
//   serve-lines      serve with `for try await line in connection.lines` (the README's first server)
import Glibc
import Sockets

let arguments = Array(CommandLine.arguments.dropFirst())
var count = 5000
var mode = "connections"
var index = 0
while index < arguments.count {
    if arguments[index] == "--connections", index + 1 < arguments.count {
        count = Int(arguments[index + 1]) ?? count
        index += 2
    } else {
        mode = arguments[index]
        index += 1
    }
}

func residentKiB() -> Double {
    let descriptor = open("/proc/self/statm", O_RDONLY)
    defer { close(descriptor) }
    var bytes = [UInt8](repeating: 0, count: 256)
    let count = read(descriptor, &bytes, bytes.count)
    let text = String(decoding: bytes[..<max(count, 0)], as: UTF8.self)
    let fields = text.split(separator: " ")
    let pages = fields.count > 1 ? Double(fields[1]) ?? 0 : 0
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1024
}

/// A blocking client socket connected to 127.0.0.1:port.
func connectClient(_ port: Int) -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    precondition(result == 0, "connect failed: \(errno)")
    return descriptor
}

func readmeHandler(_ connection: TCPConnection) async throws {
    while let bytes = try await connection.read(upTo: 65536) {
        try await connection.write(bytes)
        try await connection.flush()
    }
    try await connection.closeOutput()
}

func echoHandler(_ connection: isolated TCPConnection) async throws {
    try await connection.setBufferMode(.none)
    var buffer = [UInt8](repeating: 0, count: 2048)
    while let count = try await connection.read(into: &buffer) {
        try await connection.write(buffer[..<count])
    }
    try await connection.closeOutput()
}

func linesHandler(_ connection: TCPConnection) async throws {
    for try await line in connection.lines { try await connection.writeLine(line) }
}

/// Makes `count` connections to `listener`, one at a time; `accepted` sees each server side (for the modes that
/// accept themselves).
func makeClients(_ listener: TCPListener, _ count: Int, accept: Bool) async throws -> ([Int32], [TCPConnection]) {
    var clients: [Int32] = []
    var connections: [TCPConnection] = []
    for _ in 0..<count {
        clients.append(connectClient(listener.port))
        if accept { connections.append(try await listener.accept()) }
    }
    return (clients, connections)
}

/// Round trips one byte through every connection, so that each handler has run and waits in its read.
func roundTrip(_ clients: [Int32]) {
    var byte: UInt8 = 1
    for client in clients {
        _ = write(client, &byte, 1)
        _ = read(client, &byte, 1)
    }
}

let listener = try await TCPListener(port: 0, host: "127.0.0.1", backlog: 1024)
// Warm-up: the loops, the runtime and the allocator's first arenas.
do {
    let (clients, connections) = try await makeClients(listener, 200, accept: true)
    for connection in connections { try await connection.close() }
    for client in clients { _ = close(client) }
}
let before = residentKiB()
var keep: [TCPConnection] = []
var tasks: [Task<Void, any Error>] = []
var clients: [Int32] = []
switch mode {
case "connections":
    (clients, keep) = try await makeClients(listener, count, accept: true)
case "read-tasks", "preferred-tasks":
    (clients, keep) = try await makeClients(listener, count, accept: true)
    for connection in keep {
        if mode == "read-tasks" {
            tasks.append(Task.detached { try await readmeHandler(connection) })
        } else {
            tasks.append(
                Task.detached {
                    try await connection.eventLoop.withExecutorPreference { try await readmeHandler(connection) }
                })
        }
    }
    roundTrip(clients)
case "serve-readme", "serve-echo", "serve-lines":
    let mode = mode
    tasks.append(
        Task.detached {
            try await serve(listener) { connection in
                switch mode {
                case "serve-readme": try await readmeHandler(connection)
                case "serve-echo": try await echoHandler(connection)
                default: try await linesHandler(connection)
                }
            }
        })
    (clients, _) = try await makeClients(listener, count, accept: false)
    if mode == "serve-lines" {
        var line: [UInt8] = [65, 10]
        for client in clients {
            _ = write(client, &line, 2)
            _ = read(client, &line, 2)
        }
    } else {
        roundTrip(clients)
    }
default:
    print("idle-breakdown: unknown mode \(mode)")
    exit(2)
}
try await Task.sleep(for: .milliseconds(500))
let after = residentKiB()
let perConnection = Double(Int((after - before) / Double(count) * 100)) / 100
print("\(mode): \(count) connections, RSS \(Int(before)) -> \(Int(after)) KiB, \(perConnection) KiB per connection")
exit(0)
