// nio-async-echo: the echo server the SwiftNIO way of async/await — a server channel of `NIOAsyncChannel`
// children (ServerBootstrap.bind(host:port:childChannelInitializer:)), each child echoed by a task of a discarding
// task group; UDP through a `NIOAsyncChannel` of `AddressedEnvelope`s. Event loops: NIO's singleton
// `MultiThreadedEventLoopGroup` (one thread per core). The same command line as Sockets' echo-server.
//
// After the client's end-of-file (`allowRemoteHalfClosure`), the child's inbound sequence ends; the writes the
// outbound writer has accepted may still be queued in the channel, and `executeThenClose` would close over them
// (the idiomatic `outbound.finish()` with `isOutboundHalfClosureEnabled` does the same: with the input already
// shut, NIO turns the output close into a full close). So the handler first waits for an empty `writeAndFlush`
// on the channel, which completes only after every write before it.
import BenchSupport
import NIOCore
import NIOPosix

installSignalHandlers()
let options = ServerOptions.parse(name: "nio-async-echo")
let group = MultiThreadedEventLoopGroup.singleton

typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>
typealias Datagrams = NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>

func bindBoth() async throws -> (NIOAsyncChannel<Connection, Never>, Datagrams?) {
    let tcp = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 256)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelOption(.allowRemoteHalfClosure, value: true)
        .bind(host: options.host, port: options.port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try Connection(wrappingChannelSynchronously: channel)
            }
        }
    guard options.udp else { return (tcp, nil) }
    do {
        let udp = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .bind(host: options.host, port: tcp.channel.localAddress!.port!) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Datagrams(wrappingChannelSynchronously: channel)
                }
            }
        return (tcp, udp)
    } catch {
        try? await tcp.channel.close()
        throw error
    }
}

func echo(_ connection: Connection) async {
    do {
        try await connection.executeThenClose { inbound, outbound in
            for try await buffer in inbound {
                try await outbound.write(buffer)
            }
            try await connection.channel.writeAndFlush(ByteBuffer())
        }
    } catch {
        // A reset peer: this connection ends, the server goes on.
    }
}

func echo(_ datagrams: Datagrams) async {
    do {
        try await datagrams.executeThenClose { inbound, outbound in
            for try await envelope in inbound {
                try await outbound.write(envelope)
            }
        }
    } catch {
        writeError("nio-async-echo: UDP: \(error)")
    }
}

let server: NIOAsyncChannel<Connection, Never>
let datagrams: Datagrams?
do {
    (server, datagrams) = try await withSamePortRetries(options, bindBoth)
} catch {
    writeError("nio-async-echo: \(error)")
    exit(1)
}
announceListening(options, port: server.channel.localAddress!.port!)

await withDiscardingTaskGroup { group in
    if let datagrams {
        group.addTask { await echo(datagrams) }
    }
    do {
        try await server.executeThenClose { connections in
            for try await connection in connections {
                group.addTask { await echo(connection) }
            }
        }
    } catch {
        writeError("nio-async-echo: \(error)")
    }
}
