#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#endif

/// Byte buffers made with one `memset`.
///
/// `[UInt8](repeating: 0, count:)` and `append(contentsOf: repeatElement(0, count:))` are generic code that a
/// debug build runs element by element (`repeatElement` even looks up generic metadata at each step): a 64 KiB
/// buffer took milliseconds there, and under the thread sanitizer the event loops that grew input buffers
/// stalled every socket for seconds. These run at `memset`'s speed in every build.
enum Memory {
    /// `count` zero bytes.
    static func zeroedBytes(count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { memset(buffer.baseAddress!, 0, count) }
            initialized = count
        }
    }

    /// `bytes` followed by `extra` zero bytes.
    static func grown(_ bytes: [UInt8], by extra: Int) -> [UInt8] {
        let count = bytes.count + extra
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            bytes.withUnsafeBytes { raw.copyMemory(from: $0) }
            if extra > 0 { memset(raw.baseAddress! + bytes.count, 0, extra) }
            initialized = count
        }
    }
}
#endif
