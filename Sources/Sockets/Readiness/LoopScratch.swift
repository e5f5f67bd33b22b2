#if SOCKETS_PLATFORM_SUPPORTED
/// A loop's receive buffer: memory that a job running on the loop's executor may receive into and copy out
/// of before it returns or suspends. A read of a few bytes then costs one allocation (its result, at its
/// size) and a read that finds nothing none, where a receive straight into a new array of the room asked for
/// (64 KiB by default) costs that array, then its copy to size.
final class LoopScratch: @unchecked Sendable {
    // @unchecked Sendable is safe: `bytes` never changes, and the memory behind it is used only by synchronous
    // code isolated to an actor whose executor is this loop's `LoopExecutor` (each `TCPConnection`; asserted
    // where it is used). That executor runs one job at a time, on the loop's serial queue, and a job uses the
    // memory without suspending between the receive and the copy, so no two uses ever overlap. The memory lives
    // as long as the loop, the process.

    /// The largest receive it takes; a receive asks for at most this.
    static let size = 262_144

    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: LoopScratch.size, alignment: 16)
}
#endif
