#if SOCKETS_PLATFORM_SUPPORTED
/// Which bytes end a line (MIT Scheme's line translation; Racket's `read-line` modes).
public enum LineEnding: Sendable, Hashable {
    /// LF (`"\n"`). Racket's `'linefeed`, the default of Racket's `read-line`.
    case linefeed
    /// CR-LF (`"\r\n"`), the ending of most internet protocols and MIT Scheme's default. Racket's
    /// `'return-linefeed`.
    case returnLinefeed
    /// Either: CR-LF or a lone LF ends a line. A lone CR is data (unlike Racket's `'any`, which also ends a
    /// line at a lone CR). The default here for reading.
    case any

    /// The bytes written after a line with ``TCPConnection/writeLine(_:ending:)``: CR-LF for `.returnLinefeed`, LF
    /// otherwise.
    var terminator: [UInt8] { self == .returnLinefeed ? [13, 10] : [10] }

    /// Finds the first line end in `bytes`, starting the search at `start`: returns where the line's text ends
    /// and how long its terminator is.
    func findEnd(in bytes: UnsafeRawBufferPointer, from start: Int) -> (end: Int, terminatorLength: Int)? {
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 10 {
                switch self {
                case .linefeed:
                    return (index, 1)
                case .returnLinefeed:
                    if index > 0, bytes[index - 1] == 13 { return (index - 1, 2) }
                case .any:
                    if index > 0, bytes[index - 1] == 13 { return (index - 1, 2) }
                    return (index, 1)
                }
            }
            index += 1
        }
        return nil
    }
}
#endif
