#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Sockets
import Testing

/// Two bound IPv4 sockets on 127.0.0.1.
private func boundPair() async throws -> (UDPSocket, UDPSocket, Int, Int) {
    let a = try await UDPSocket()
    let b = try await UDPSocket()
    try await a.bind(host: "127.0.0.1", port: 0)
    try await b.bind(host: "127.0.0.1", port: 0)
    return (a, b, try await a.addresses().localPort, try await b.addresses().localPort)
}

@Suite("UDPSocket")
struct UDPTests {
    @Test("udp-open-socket: IPv4 unless the family host or port says otherwise; unbound, unconnected")
    func opening() async throws {
        let plain = try await UDPSocket()
        #expect(plain.family == .ipv4)
        #expect(await plain.isBound == false)
        #expect(await plain.isConnected == false)
        let six = try await UDPSocket(familyHost: "::1", familyPort: 53)
        #expect(six.family == .ipv6)
        let addresses = try await plain.addresses()
        #expect(addresses.localPort == 0 && addresses.remotePort == 0)
        let bad =
            await thrownError { _ = try await UDPSocket(familyHost: "127.0.0.1", familyPort: 70000) } as? NetworkError
        #expect(bad?.description.contains("port 70000 is outside 0...65535") == true)
    }

    @Test("bind: port 0 read back; binding a bound or closed socket throws")
    func binding() async throws {
        let socket = try await UDPSocket()
        try await socket.bind(host: "127.0.0.1", port: 0)
        #expect(await socket.isBound)
        let addresses = try await socket.addresses()
        #expect(addresses.localHost == "127.0.0.1" && addresses.localPort > 0)
        let again = await thrownError { try await socket.bind(port: 0) } as? NetworkError
        #expect(again?.description.contains("the socket is already bound") == true)
        try await socket.close()
        let closed = await thrownError { try await socket.bind(port: 0) } as? NetworkError
        #expect(closed?.code == .closed)
        let twice = await thrownError { try await socket.close() } as? NetworkError
        #expect(twice?.description.contains("already closed") == true)
        await #expect(throws: NetworkError.self) { _ = try await socket.addresses() }
        var buffer = [UInt8](repeating: 0, count: 4)
        await #expect(throws: NetworkError.self) { _ = try await socket.receive(into: &buffer) }
        await #expect(throws: NetworkError.self) { try await socket.send([1], to: "127.0.0.1", port: 9) }
    }

    @Test("boundaries are kept: three sends are three receives, empty datagrams included")
    func boundariesAndEmptyDatagrams() async throws {
        let (a, b, _, portB) = try await boundPair()
        try await a.send(Array("one".utf8), to: "127.0.0.1", port: portB)
        try await a.send([], to: "127.0.0.1", port: portB)
        try await a.send(Array("three".utf8), to: "127.0.0.1", port: portB)
        var buffer = [UInt8](repeating: 0, count: 100)
        let first = try await b.receive(into: &buffer)
        #expect(first.count == 3 && Array(buffer[..<3]) == Array("one".utf8))
        let portA = try await a.addresses().localPort
        #expect(first.host == "127.0.0.1" && first.port == portA)
        #expect(try await b.receive(into: &buffer).count == 0)
        #expect(try await b.receive().bytes == Array("three".utf8))
        // And back: an empty datagram to the sender's address.
        try await b.send([], to: first.sender)
        let empty = try await a.receive()
        #expect(empty.bytes.isEmpty && !empty.truncated)
    }

    @Test("every size from 0 to 65,507 bytes goes through whole over IPv4; 65,508 is refused")
    func everySize() async throws {
        let (a, b, _, portB) = try await boundPair()
        let destination = try #require(SocketAddress(numericHost: "127.0.0.1", port: portB))
        let payload = patternBytes(UDPSocket.maximumDatagramLength + 1)
        var buffer = [UInt8](repeating: 0, count: 65536)
        var wrong: [Int] = []
        var sizes = Array(0...1500) + Array(stride(from: 1501, to: 65507, by: 211)) + [65506, 65507]
        sizes.shuffle()
        for size in sizes {
            try await a.send(payload, range: 0..<size, to: destination)
            let receipt = try await b.receive(into: &buffer)
            if receipt.count != size || receipt.truncated || buffer[..<size] != payload[..<size] { wrong.append(size) }
        }
        #expect(wrong.isEmpty)
        let tooLong = await thrownError { try await a.send(payload, to: destination) } as? NetworkError
        #expect(tooLong?.errno == .messageTooLong)
        #expect(tooLong?.description.contains("Message too long (EMSGSIZE)") == true)
    }

    @Test("a datagram longer than the range is cut to it, the rest discarded, and the receipt says so")
    func truncation() async throws {
        let (a, b, _, portB) = try await boundPair()
        try await a.send(patternBytes(100), to: "127.0.0.1", port: portB)
        try await a.send(Array("next".utf8), to: "127.0.0.1", port: portB)
        var buffer = [UInt8](repeating: 0, count: 20)
        let receipt = try await b.receive(into: &buffer, range: 5..<15)
        #expect(receipt.count == 10 && receipt.truncated)
        #expect(Array(buffer[5..<15]) == Array(patternBytes(10)))
        #expect(buffer[..<5].allSatisfy { $0 == 0 } && buffer[15...].allSatisfy { $0 == 0 })
        #expect(try await b.receive().bytes == Array("next".utf8))
    }

    @Test("ranges outside the buffer throw before any system call; receiving on an unbound socket throws")
    func badRanges() async throws {
        let (a, _, _, portB) = try await boundPair()
        var buffer = [UInt8](repeating: 0, count: 8)
        let receive = await thrownError { _ = try await a.receive(into: &buffer, range: 6..<10) } as? NetworkError
        #expect(receive?.description == "receive failed: range 6..<10 is outside the buffer's 0..<8")
        let send =
            await thrownError { try await a.send([1, 2, 3], range: 2..<5, to: "127.0.0.1", port: portB) }
            as? NetworkError
        #expect(send?.description == "send to failed: range 2..<5 is outside the buffer's 0..<3")
        let unbound = try await UDPSocket()
        let notBound = await thrownError { _ = try await unbound.receive(into: &buffer) } as? NetworkError
        #expect(notBound?.description.contains("the socket is not bound") == true)
    }

    @Test("sending from an unbound socket binds it to an ephemeral port")
    func autoBind() async throws {
        let (_, b, _, portB) = try await boundPair()
        let sender = try await UDPSocket()
        try await sender.send(Array("hi".utf8), to: "127.0.0.1", port: portB)
        #expect(await sender.isBound)
        let port = try await sender.addresses().localPort
        #expect(port > 0)
        #expect(try await b.receive().address.port == port)
    }

    @Test("the non-blocking variants: tryReceive is nil on an empty queue; trySend queues")
    func nonBlocking() async throws {
        let (a, b, _, portB) = try await boundPair()
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try await b.tryReceive(into: &buffer) == nil)
        #expect(try await a.trySend(Array("x".utf8), to: "127.0.0.1", port: portB))
        try await b.waitUntilReadyToReceive()
        let receipt = try #require(try await b.tryReceive(into: &buffer))
        #expect(receipt.count == 1 && buffer[0] == UInt8(ascii: "x"))
        try await a.waitUntilReadyToSend()
    }

    @Test("connect filters a third party's datagrams; send/send-to rules; disconnect; re-connect")
    func connecting() async throws {
        let (a, b, portA, portB) = try await boundPair()
        let third = try await UDPSocket()
        try await third.bind(host: "127.0.0.1", port: 0)
        try await a.connect(host: "127.0.0.1", port: portB)
        #expect(await a.isConnected)
        #expect(try await a.addresses().remotePort == portB)
        let sendTo = await thrownError { try await a.send([1], to: "127.0.0.1", port: portB) } as? NetworkError
        #expect(sendTo?.description.contains("the socket is connected") == true)
        try await third.send(Array("third".utf8), to: "127.0.0.1", port: portA)
        try await b.send(Array("peer".utf8), to: "127.0.0.1", port: portA)
        #expect(try await a.receive().bytes == Array("peer".utf8))
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try await a.tryReceive(into: &buffer) == nil)
        try await a.send(Array("to peer".utf8))
        #expect(try await b.receive().bytes == Array("to peer".utf8))
        let half = await thrownError { try await a.connect(host: "127.0.0.1", port: nil) } as? NetworkError
        #expect(half?.code == .invalidArgument)
        #expect(half?.description.contains("give both a host and a port, or neither") == true)
        try await a.connect(host: nil, port: nil)
        #expect(await a.isConnected == false)
        #expect(try await a.addresses().remotePort == 0)
        #expect(try await a.addresses().localPort == portA)
        let unconnected = await thrownError { try await a.send([1]) } as? NetworkError
        #expect(unconnected?.description.contains("not connected") == true)
        try await third.send(Array("after".utf8), to: "127.0.0.1", port: portA)
        #expect(try await a.receive().bytes == Array("after".utf8))
        try await a.connect(host: "127.0.0.1", port: portB)
        try await a.disconnect()
        try await a.connect(host: "127.0.0.1", port: portB)
        #expect(await a.isConnected)
    }

    @Test("IPv6 loopback both ways")
    func ipv6() async throws {
        let a = try await UDPSocket(familyHost: "::1")
        let b = try await UDPSocket(familyHost: "::1")
        try await a.bind(host: "::1", port: 0)
        try await b.bind(host: "::1", port: 0)
        let portB = try await b.addresses().localPort
        try await a.send(Array("six".utf8), to: "::1", port: portB)
        let datagram = try await b.receive()
        #expect(datagram.bytes == Array("six".utf8))
        #expect(datagram.address.host == "::1")
        try await b.send([], to: datagram.address)
        #expect(try await a.receive().bytes.isEmpty)
    }

    @Test("receive buffer size: a size the system allows is set; one too large throws")
    func receiveBufferSize() async throws {
        let socket = try await UDPSocket()
        try await socket.setReceiveBufferSize(65536)
        #expect(try await socket.option(.receiveBufferSize) >= 65536)
        let tooLarge = await thrownError { try await socket.setReceiveBufferSize(100_000_000) } as? NetworkError
        #expect(tooLarge?.description.contains("the system allows at most") == true)
        let zero = await thrownError { try await socket.setReceiveBufferSize(0) } as? NetworkError
        #expect(zero?.code == .invalidArgument)
    }

    @Test("TTL and the multicast settings read back what was set; bad values throw")
    func settings() async throws {
        let socket = try await UDPSocket()
        try await socket.setTimeToLive(7)
        #expect(try await socket.timeToLive() == 7)
        let badTTL = await thrownError { try await socket.setTimeToLive(300) } as? NetworkError
        #expect(badTTL?.description.contains("a TTL is a byte, 0...255, not 300") == true)
        try await socket.setMulticastTimeToLive(1)
        #expect(try await socket.multicastTimeToLive() == 1)
        try await socket.setMulticastLoopback(false)
        #expect(try await socket.isMulticastLoopback() == false)
        try await socket.setMulticastLoopback(true)
        #expect(try await socket.isMulticastLoopback() == true)
        #expect(try await socket.multicastInterface() == "0.0.0.0")
        try await socket.setMulticastInterface("127.0.0.1")
        #expect(try await socket.multicastInterface() == "127.0.0.1")
        try await socket.setMulticastInterface(nil)
        #expect(try await socket.multicastInterface() == "0.0.0.0")
        let notGroup = await thrownError { try await socket.joinMulticastGroup("10.1.2.3") } as? NetworkError
        #expect(notGroup?.description.contains("10.1.2.3 is not a multicast address") == true)
        let name = await thrownError { try await socket.joinMulticastGroup("not-an-address") } as? NetworkError
        #expect(name?.code == .invalidArgument)
        try await socket.bind(port: 0)
        try await socket.joinMulticastGroup("239.255.1.2", interface: "127.0.0.1")
        try await socket.leaveMulticastGroup("239.255.1.2", interface: "127.0.0.1")
        let notJoined = await thrownError {
            try await socket.leaveMulticastGroup("239.255.1.2", interface: "127.0.0.1")
        }
        #expect(notJoined is NetworkError)
    }

    @Test("batches: receiveBatch takes many waiting datagrams at once, sendBatch sends many")
    func batches() async throws {
        let (a, b, portA, portB) = try await boundPair()
        let toB = try #require(SocketAddress(numericHost: "127.0.0.1", port: portB))
        try await a.sendBatch((0..<40).map { Datagram(bytes: patternBytes($0 * 10, seed: $0), address: toB) })
        var received: [Datagram] = []
        while received.count < 40 { received += try await b.receiveBatch(maxCount: 16) }
        #expect(received.count == 40)
        #expect(received.map(\.bytes) == (0..<40).map { patternBytes($0 * 10, seed: $0) })
        #expect(received.allSatisfy { $0.address.port == portA && !$0.truncated })
        // Truncation in a batch is reported too.
        try await a.send(patternBytes(50), to: toB)
        let cut = try await b.receiveBatch(maxCount: 4, maxLength: 20)
        #expect(cut.count == 1 && cut[0].bytes == patternBytes(20) && cut[0].truncated)
    }

    @Test("the datagrams sequence ends when the socket closes")
    func datagramSequence() async throws {
        let (a, b, _, portB) = try await boundPair()
        let reader = Task {
            var got: [[UInt8]] = []
            for try await datagram in b.datagrams {
                got.append(datagram.bytes)
                if got.count == 3 { try await b.close() }
            }
            return got
        }
        for index in 0..<3 { try await a.send([UInt8(index)], to: "127.0.0.1", port: portB) }
        let got = try await withinTimeLimit(10) { try await reader.value }
        #expect(got == [[0], [1], [2]])
    }

    @Test("a receive waiting when the socket closes throws promptly")
    func closeWhileReceiving() async throws {
        let socket = try await UDPSocket()
        try await socket.bind(host: "127.0.0.1", port: 0)
        let waiting = Task { try await socket.receive() }
        try await socket.close()
        let result = try await withinTimeLimit(5) { await waiting.result }
        #expect((result.failure as? NetworkError)?.code == .closed)
    }

    @Test("receives cancelled while a peer sends a counted stream: every datagram is received exactly once")
    func cancelledReceives() async throws {
        let (a, b, _, portB) = try await boundPair()
        let toB = try #require(SocketAddress(numericHost: "127.0.0.1", port: portB))
        let count = 2000
        let (received, cancelled) = try await withinTimeLimit(60) {
            var received: [Int] = []
            var cancelled = 0
            var next = 0
            for round in 0..<100_000 where received.count < count {
                let attempt = Task { try await b.receive(maxLength: 16) }
                await Task.yield()
                let cancelling = round % 3 != 0
                if cancelling { attempt.cancel() }
                // A round that is not cancelled sends one, so its receive has a datagram to return.
                if !cancelling || round % 5 == 1, next < count {
                    try await a.send(Array("\(next)".utf8), to: toB)
                    next += 1
                }
                switch await attempt.result {
                case .success(let datagram): received.append(Int(String(decoding: datagram.bytes, as: UTF8.self)) ?? -1)
                case .failure(let error):
                    #expect(error is CancellationError)
                    cancelled += 1
                }
            }
            return (received, cancelled)
        }
        #expect(received == Array(0..<count))
        #expect(cancelled > 100)
    }

    @Test("a cancelled send sends the whole datagram or nothing")
    func cancelledSend() async throws {
        let (a, b, _, portB) = try await boundPair()
        let attempt = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await a.send(Array("never".utf8), to: "127.0.0.1", port: portB)
        }
        #expect(await attempt.result.failure is CancellationError)
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try await b.tryReceive(into: &buffer) == nil)
    }
}

@Suite("Sending slices and other byte collections")
struct ByteCollectionTests {
    @Test("UDP sends take slices (range counted from the slice's start) and any other collection of bytes")
    func udpSlices() async throws {
        let (a, b, _, portB) = try await boundPair()
        let bytes: [UInt8] = Array(0..<10)
        let address = try await b.addresses().local
        try await a.send(bytes[1...], to: "127.0.0.1", port: portB)
        try await a.send(bytes[2..<8], range: 1..<3, to: address)
        #expect(try await a.trySend(bytes[5...], range: 0..<2, to: "127.0.0.1", port: portB))
        try await a.send(repeatElement(UInt8(9), count: 3), to: address)
        try await a.send(bytes.reversed()[...], to: address)
        _ = try await sync(a.sendEvent(bytes[8...], to: "127.0.0.1", port: portB))
        var received: [[UInt8]] = []
        for _ in 0..<6 { received.append(try await withinTimeLimit(10) { try await b.receive() }.bytes) }
        #expect(received == [Array(1..<10), [3, 4], [5, 6], [9, 9, 9], Array((0..<10).reversed()), [8, 9]])
        let outside = await thrownError { try await a.send(bytes[5...], range: 0..<6, to: address) } as? NetworkError
        #expect(outside?.code == .invalidArgument)
        try await a.connect(host: "127.0.0.1", port: portB)
        try await a.send(bytes[7...])
        #expect(try await a.trySend(bytes[..<2], range: 1..<2))
        #expect(try await withinTimeLimit(10) { try await b.receive() }.bytes == [7, 8, 9])
        #expect(try await withinTimeLimit(10) { try await b.receive() }.bytes == [1])
    }

    @Test("TCP writes take any collection of bytes")
    func tcpCollections() async throws {
        let pair = try await LoopbackPair.make()
        try await pair.client.write(repeatElement(UInt8(65), count: 3))
        try await pair.client.write([UInt8]("bc".utf8).reversed())
        #expect(try await pair.server.read(exactly: 5) == Array("AAAcb".utf8))
        await pair.close()
    }
}

@Suite("UDP multicast in a network namespace")
struct MulticastNamespaceTests {
    static let insideNamespace = ProcessInfo.processInfo.environment["SOCKETS_MULTICAST_NAMESPACE"] == "1"
    /// Why this process cannot make a network namespace, or `nil` when it can.
    static let namespaceUnavailable: String? = {
        var missing: [String] = []
        if getuid() != 0 { missing.append("root") }
        if !ExternalProcess.isInstalled("unshare") { missing.append("unshare (util-linux)") }
        if !ExternalProcess.isInstalled("ip") { missing.append("ip (iproute2)") }
        guard !missing.isEmpty else { return nil }
        return "needs \(missing.joined(separator: ", ")) to make a network namespace for the multicast test"
    }()

    /// Run in a fresh network namespace (made by the test below, gone when its process ends) with one veth
    /// pair whose ends both stay inside: multicast sent out of `v0` is looped back to this host only when
    /// IP_MULTICAST_LOOP is on.
    @Test(
        "multicast delivery with loopback on, and none with loopback off",
        .enabled(if: insideNamespace, "runs only inside the network namespace the next test makes for it"))
    func deliveryInNamespace() async throws {
        let receiver = try await UDPSocket()
        try await receiver.bind(port: 0, reuseAddress: true)
        let port = try await receiver.addresses().localPort
        try await receiver.joinMulticastGroup("239.255.7.7", interface: "192.0.2.1")
        let sender = try await UDPSocket()
        try await sender.setMulticastInterface("192.0.2.1")
        #expect(try await sender.multicastInterface() == "192.0.2.1")
        try await sender.setMulticastLoopback(false)
        try await sender.send(Array("loop off".utf8), to: "239.255.7.7", port: port)
        try await sender.setMulticastLoopback(true)
        try await sender.send(Array("loop on".utf8), to: "239.255.7.7", port: port)
        // Datagrams on one path arrive in order: had "loop off" been delivered, it would come first.
        let first = try await withinTimeLimit(10) { try await receiver.receive() }
        #expect(String(decoding: first.bytes, as: UTF8.self) == "loop on")
        try await receiver.leaveMulticastGroup("239.255.7.7", interface: "192.0.2.1")
    }

    @Test(
        "runs the multicast test in a network namespace of its own",
        .enabled(if: !insideNamespace, "this is the namespace's own run"),
        .enabled(if: namespaceUnavailable == nil, "\(namespaceUnavailable ?? "")"))
    func namespace() async throws {
        let setup =
            "ip link set lo up && ip link add v0 type veth peer name v1 && ip link set v0 up && "
            + "ip link set v1 up && ip addr add 192.0.2.1/24 dev v0 && ip route add 224.0.0.0/4 dev v0 && "
            + "SOCKETS_MULTICAST_NAMESPACE=1 exec \"$0\" --testing-library swift-testing --filter deliveryInNamespace"
        let result = try await ExternalProcess.run(
            "unshare", ["-n", "sh", "-c", setup, CommandLine.arguments[0]],
            timeout: .seconds(60))
        let summary = result.stdout.last { $0.contains("Test run with") } ?? result.stderr
        #expect(result.status == 0, "\(summary)")
        #expect(summary.contains("1 test") && summary.contains("passed"), "\(summary)")
    }
}
