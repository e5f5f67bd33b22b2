#if SOCKETS_PLATFORM_SUPPORTED
/// The bytes a connection has received but not yet handed out: `storage[start..<end]`.
///
/// Made on first use (a connection read only with `read(into:)` or `read(upTo:)` never has one); grows for long
/// lines; dropped when a read finds it empty and waits, so an idle connection holds no buffer.
struct InputBuffer {
    private var storage: [UInt8] = []
    private var start = 0
    private var end = 0
    /// Counts every consumption, so a reader that waited can tell whether another reader took bytes meanwhile.
    private(set) var generation = 0

    static let minimumFill = 4096
    static let retainedCapacity = 65536

    var count: Int { end - start }
    var isEmpty: Bool { end == start }

    /// Calls `body` with room for at least `minimum` more bytes at the end; `body` returns how many it wrote.
    mutating func append(
        atLeast minimum: Int = minimumFill,
        _ body: (UnsafeMutableRawBufferPointer) throws(Errno) -> Int
    ) throws(Errno) -> Int {
        if storage.count - end < minimum {
            if start > 0 {
                storage.withUnsafeMutableBytes { raw in
                    raw.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: end - start)
                }
                end -= start
                start = 0
            }
            if storage.count - end < minimum {
                storage = Memory.grown(storage, by: max(minimum, storage.count) - (storage.count - end))
            }
        }
        var failure: Errno?
        let written = storage.withUnsafeMutableBytes { [end] raw -> Int in
            do throws(Errno) {
                return try body(UnsafeMutableRawBufferPointer(rebasing: raw[end...]))
            } catch {
                failure = error
                return 0
            }
        }
        if let failure { throw failure }
        end += written
        return written
    }

    /// Calls `body` with the unread bytes.
    func withUnreadBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        storage.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
    }

    /// Copies the first `count` unread bytes, leaving them unread.
    func peek(_ count: Int) -> [UInt8] {
        Array(storage[start..<(start + count)])
    }

    /// Removes and returns the first `count` unread bytes.
    mutating func take(_ count: Int) -> [UInt8] {
        let bytes = Array(storage[start..<(start + count)])
        drop(count)
        return bytes
    }

    /// Copies up to `destination.count` unread bytes into `destination`, removing them; returns how many.
    mutating func take(into destination: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(destination.count, self.count)
        storage.withUnsafeBytes { raw in
            destination.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: count)
        }
        drop(count)
        return count
    }

    /// Removes the first `count` unread bytes.
    mutating func drop(_ count: Int) {
        start += count
        generation &+= 1
        if start == end {
            start = 0
            end = 0
            if storage.count > Self.retainedCapacity { storage = [] }
        }
    }

    /// Drops the store when nothing is unread: a connection that waits for input holds no buffer (4 KiB of
    /// an idle connection's memory, measured in `Benchmarks/RESULTS.md`).
    mutating func releaseIfEmpty() {
        if start == end, !storage.isEmpty {
            storage = []
            start = 0
            end = 0
        }
    }

    /// Forgets every unread byte and the store.
    mutating func removeAll() {
        storage = []
        start = 0
        end = 0
        generation &+= 1
    }
}
#endif
