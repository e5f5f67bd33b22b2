// nio-classic-echo: the echo server the SwiftNIO way of the classic API — a `ChannelInboundHandler` on a
// `ServerBootstrap` (TCP) and a `DatagramBootstrap` (UDP) on one `MultiThreadedEventLoopGroup` of
// `System.coreCount` threads. The same command line as Sockets' echo-server (see BenchSupport).
//
// TCP: every read is written back, flushed on `channelReadComplete`. `allowRemoteHalfClosure` delivers the
// client's end-of-file as `ChannelEvent.inputClosed`; the handler then flushes an empty write and closes once it
// completes, i.e. after everything received has been written. (Not `close(mode: .output)`: with the input
// already shut, NIO escalates that to a full close, which fails the writes still pending.)
// UDP: each datagram is written back to its sender; the receive allocator holds 65,536 bytes (NIO's default of
// 2,048 would truncate larger datagrams).
import BenchSupport
import NIOCore
import NIOPosix

final class TCPEchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Writes complete in order: once this empty one has, every echo before it is in the kernel.
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset peer: this connection ends, the server goes on.
        context.close(promise: nil)
    }
}

final class UDPEchoHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The envelope names the sender as its remote address: write it back unchanged.
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A datagram that could not be sent (its sender gone): drop it, keep the socket.
    }
}

installSignalHandlers()
let options = ServerOptions.parse(name: "nio-classic-echo")
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)

func bindBoth() throws -> (Channel, Channel?) {
    let tcp = try ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 256)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelOption(.allowRemoteHalfClosure, value: true)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(TCPEchoHandler())
            }
        }
        .bind(host: options.host, port: options.port)
        .wait()
    guard options.udp else { return (tcp, nil) }
    do {
        let udp = try DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPEchoHandler())
                }
            }
            .bind(host: options.host, port: tcp.localAddress!.port!)
            .wait()
        return (tcp, udp)
    } catch {
        try? tcp.close().wait()
        throw error
    }
}

do {
    let (tcp, _) = try withSamePortRetries(options, bindBoth)
    announceListening(options, port: tcp.localAddress!.port!)
    try tcp.closeFuture.wait()
} catch {
    writeError("nio-classic-echo: \(error)")
    exit(1)
}
