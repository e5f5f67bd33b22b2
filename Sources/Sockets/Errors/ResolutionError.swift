#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A name-resolution failure: `getaddrinfo`'s error code, as a value to match on.
///
/// ``NetworkError/Code/resolution(_:)`` carries one. Compare with the named constants, print it for the
/// resolver's text and the code's name, such as `Name or service not known (EAI_NONAME)`:
///
/// ```swift
/// do {
///     _ = try await TCPConnection.connect(host: "no-such-host.invalid", port: 80)
/// } catch let error as NetworkError where error.resolutionError == .unknownName {
///     print("no such host")
/// }
/// ```
public struct ResolutionError: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw `getaddrinfo` code, such as `EAI_NONAME`.
    public let rawValue: Int32

    /// Wraps a raw `getaddrinfo` code.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The host or service name is not known (or the host has no address of the family asked for).
    ///
    /// The corresponding C error is `EAI_NONAME`.
    public static let unknownName = ResolutionError(rawValue: EAI_NONAME)

    /// The name server answered with a temporary failure; try again later.
    ///
    /// The corresponding C error is `EAI_AGAIN`.
    public static let temporaryFailure = ResolutionError(rawValue: EAI_AGAIN)

    /// The name server failed for good.
    ///
    /// The corresponding C error is `EAI_FAIL`.
    public static let permanentFailure = ResolutionError(rawValue: EAI_FAIL)

    /// The address family asked for is not supported, or the address is not of that family.
    ///
    /// The corresponding C error is `EAI_FAMILY`.
    public static let familyNotSupported = ResolutionError(rawValue: EAI_FAMILY)

    /// The service name is not known for the socket type (TCP or UDP).
    ///
    /// The corresponding C error is `EAI_SERVICE`.
    public static let serviceNotSupported = ResolutionError(rawValue: EAI_SERVICE)

    /// The socket type is not supported.
    ///
    /// The corresponding C error is `EAI_SOCKTYPE`.
    public static let socketTypeNotSupported = ResolutionError(rawValue: EAI_SOCKTYPE)

    /// The resolver ran out of memory.
    ///
    /// The corresponding C error is `EAI_MEMORY`.
    public static let noMemory = ResolutionError(rawValue: EAI_MEMORY)

    /// A system error; the ``NetworkError``'s ``NetworkError/detail`` gives its `errno`.
    ///
    /// The corresponding C error is `EAI_SYSTEM`.
    public static let system = ResolutionError(rawValue: EAI_SYSTEM)

    /// The symbolic name, such as `EAI_NONAME`, or `EAI N` for a code without a name here.
    public var name: String {
        switch rawValue {
        case EAI_NONAME: "EAI_NONAME"
        case EAI_AGAIN: "EAI_AGAIN"
        case EAI_FAIL: "EAI_FAIL"
        case EAI_FAMILY: "EAI_FAMILY"
        case EAI_SERVICE: "EAI_SERVICE"
        case EAI_SOCKTYPE: "EAI_SOCKTYPE"
        case EAI_MEMORY: "EAI_MEMORY"
        case EAI_SYSTEM: "EAI_SYSTEM"
        default: "EAI \(rawValue)"
        }
    }

    /// The resolver's text and the symbolic name, such as `Name or service not known (EAI_NONAME)`.
    public var description: String { "\(String(cString: gai_strerror(rawValue))) (\(name))" }
}
#endif
