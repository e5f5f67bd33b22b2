#if SOCKETS_PLATFORM_SUPPORTED
/// The datagrams a ``UDPSocket`` took from the kernel ahead of the receives that want them, in the order they
/// arrived, and the room `recvmmsg` receives into. It lives under the socket's inbox lock, which every
/// receive holds from its look at the queue to its system call, so the queue and the kernel's queue read as
/// one queue, in order, whichever receive takes from it.
///
/// Bounded: at most ``readAhead`` datagrams wait here, each an array of exactly its length; the room is one
/// allocation per socket (``readAhead`` slots of ``slot`` bytes, never zeroed, so the pages the kernel never
/// writes to are never touched), made on the first read ahead and freed with the socket or when it closes.
struct DatagramInbox {
    /// How many datagrams one read ahead takes at most (one `recvmmsg`).
    static let readAhead = 32
    /// The room for one datagram read ahead: more than any UDP payload (65,507 bytes over IPv4, 65,527 over
    /// IPv6), so a datagram read ahead is never cut, whatever the receive that takes it asks for.
    static let slot = 65_536

    private var queue: [Datagram] = []
    private var head = 0
    private var room: ReceiveRoom?

    /// Whether no datagram waits here.
    var isEmpty: Bool { head == queue.count }

    /// The oldest datagram waiting here, taken.
    mutating func pop() -> Datagram? {
        guard head < queue.count else { return nil }
        let datagram = queue[head]
        head += 1
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        return datagram
    }

    /// Queues datagrams behind those waiting.
    mutating func append(contentsOf datagrams: ArraySlice<Datagram>) {
        queue.append(contentsOf: datagrams)
    }

    /// The room for a batch: at least `count` bytes, kept for the next batch.
    mutating func room(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if let room, room.buffer.count >= count { return room.buffer }
        let made = ReceiveRoom(count: count)
        room = made
        return made.buffer
    }

    /// Drops every datagram waiting here, and the room: the socket closed.
    mutating func discard() {
        self = DatagramInbox()
    }
}

/// Memory `recvmmsg` writes into: allocated, never initialised (the kernel writes each datagram before it is
/// read), freed with its last reference.
final class ReceiveRoom {
    let buffer: UnsafeMutableRawBufferPointer

    init(count: Int) {
        buffer = .allocate(byteCount: count, alignment: 16)
    }

    deinit {
        buffer.deallocate()
    }
}
#endif
