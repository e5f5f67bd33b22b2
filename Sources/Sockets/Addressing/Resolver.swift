#if SOCKETS_PLATFORM_SUPPORTED
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization

/// Name resolution that never blocks a thread of Swift's cooperative pool.
///
/// Numeric hosts and ports are parsed in place; names (`"localhost"`, `"example.org"`) and service names
/// (`"http"`, `"www"`, as CHICKEN's `tcp-connect` and MIT Scheme's `open-tcp-stream-socket` take them) go
/// to `getaddrinfo` on a Dispatch queue while the calling task is suspended.
public enum Resolver {
    /// The kind of socket the addresses are for.
    public enum SocketKind: Sendable {
        /// TCP (`SOCK_STREAM`).
        case stream
        /// UDP (`SOCK_DGRAM`).
        case datagram

        var rawValue: Int32 {
            #if canImport(Glibc)
            self == .stream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
            #else
            self == .stream ? SOCK_STREAM : SOCK_DGRAM
            #endif
        }
    }

    /// The longest host name accepted (DNS names have at most 253 characters).
    public static let maximumHostLength = 255

    /// Resolves a host and a service (a port number or a service name) to addresses, in the order the
    /// system prefers them.
    ///
    /// - Parameters:
    ///   - host: a name or a numeric address; `nil` for the wildcard (with `passive`) or the loopback.
    ///   - service: a port number (`"8080"`) or a service name (`"http"`).
    ///   - kind: stream (TCP) or datagram (UDP).
    ///   - passive: addresses to bind to rather than to connect to.
    ///   - family: only addresses of this family, when given.
    /// - Throws: ``NetworkError`` with ``NetworkError/Code/resolution(_:)`` when the name is unknown, or
    ///   ``NetworkError/Code/invalidArgument`` for an empty or overlong host.
    public static func resolve(
        host: String?, service: String, kind: SocketKind = .stream, passive: Bool = false,
        family: SocketAddress.Family? = nil
    ) async throws -> [SocketAddress] {
        let shown = describe(host: host, service: service)
        if let host { try validate(host: host, operation: "resolve", shown: shown) }
        guard !service.isEmpty, !service.utf8.contains(0), service.utf8.count <= 64 else {
            throw NetworkError.invalid("resolve", shown, "the port or service name is empty or too long")
        }
        if let port = Int(service) {
            guard (0...65535).contains(port) else {
                throw NetworkError.invalid("resolve", shown, "port \(port) is outside 0...65535")
            }
            if let host, let address = SocketAddress(numericHost: host, port: port) {
                guard family == nil || address.family == family else {
                    throw NetworkError(
                        .resolution(.familyNotSupported), operation: "resolve", address: shown,
                        detail: "not an \(family == .ipv4 ? "IPv4" : "IPv6") address")
                }
                return [address]
            }
        }
        let request = Request(host: host, service: service, kind: kind, passive: passive, family: family)
        let outcome = await lookUp(request)
        try Task.checkCancellation()
        switch outcome {
        case .success(let addresses):
            guard !addresses.isEmpty else {
                throw NetworkError(.resolution(.unknownName), operation: "resolve", address: shown)
            }
            return addresses
        case .failure(let code):
            let detail = code == EAI_SYSTEM ? Errno.current.description : nil
            throw NetworkError(
                .resolution(ResolutionError(rawValue: code)), operation: "resolve", address: shown, detail: detail)
        }
    }

    /// Checks a host name before any system call: not empty, no NUL, not overlong.
    static func validate(host: String, operation: String, shown: String) throws {
        if host.isEmpty {
            throw NetworkError.invalid(operation, shown, "the host name is empty")
        }
        if host.utf8.count > maximumHostLength {
            throw NetworkError.invalid(
                operation, nil,
                "the host name is \(host.utf8.count) bytes long; at most \(maximumHostLength)")
        }
        if host.utf8.contains(0) {
            throw NetworkError.invalid(operation, nil, "the host name contains a NUL byte")
        }
    }

    /// `host:service`, bracketing an IPv6 literal, for error texts.
    static func describe(host: String?, service: String) -> String {
        guard let host else { return "*:\(service)" }
        let shownHost = host.utf8.count > 80 ? String(host.prefix(40)) + "…" : host
        return shownHost.contains(":") ? "[\(shownHost)]:\(service)" : "\(shownHost):\(service)"
    }

    private struct Request: Sendable {
        let host: String?
        let service: String
        let kind: SocketKind
        let passive: Bool
        let family: SocketAddress.Family?
    }

    private enum Outcome: Sendable {
        case success([SocketAddress])
        case failure(Int32)
    }

    /// Dispatch's own threads do the blocking `getaddrinfo`; the cooperative pool only waits.
    private static let queue = DispatchQueue(
        label: "Sockets.Resolver", attributes: .concurrent,
        target: .global(qos: .userInitiated))

    private static func lookUp(_ request: Request) async -> Outcome {
        // Resumed exactly once: by the lookup, or earlier by cancellation (the lookup's result is then dropped).
        let slot = Lock<CheckedContinuation<Outcome, Never>?>(nil)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let cancelled = slot.withLock { stored -> Bool in
                    if Task.isCancelled { return true }
                    stored = continuation
                    return false
                }
                if cancelled {
                    continuation.resume(returning: .failure(EAI_AGAIN))
                    return
                }
                queue.async {
                    let outcome = getAddresses(request)
                    slot.withLock { $0.take() }?.resume(returning: outcome)
                }
            }
        } onCancel: {
            slot.withLock { $0.take() }?.resume(returning: .failure(EAI_AGAIN))
        }
    }

    private static func getAddresses(_ request: Request) -> Outcome {
        var hints = addrinfo()
        hints.ai_socktype = request.kind.rawValue
        hints.ai_family = request.family?.rawValue ?? AF_UNSPEC
        hints.ai_flags = request.passive ? AI_PASSIVE : 0
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(request.host, request.service, &hints, &list)
        guard status == 0 else { return .failure(status) }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var cursor = list
        while let entry = cursor {
            if let raw = entry.pointee.ai_addr, let address = SocketAddress(storage: UnsafeRawPointer(raw)),
                !addresses.contains(address)
            {
                addresses.append(address)
            }
            cursor = entry.pointee.ai_next
        }
        return .success(addresses)
    }
}
#endif
