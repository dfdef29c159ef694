/// `kubectl proxy`'s request filter on a route, with its flags' defaults and decision order: reject when the
/// path matches a reject-path or the method a reject-method; accept only when the path matches an accept-path
/// and the host an accept-host. Lists are comma-separated regular expressions matched **unanchored**, as
/// Go's `MatchString` does; an empty list matches nothing. The path matched is percent-decoded, as Go's
/// `URL.Path` is. Where Ferry is stricter (safe by default): method expressions ignore case; a host with a
/// port keeps its brackets (`[::1]:8001` → `[::1]`); a path that is not canonical is refused before the
/// lists are consulted; an upgrade whose `Origin` is not a loopback origin is refused.
public struct RequestFilter: Sendable, Hashable, Encodable {
    public static let defaultAcceptPaths = "^.*"
    public static let defaultRejectPaths = "^/api/.*/pods/.*/exec,^/api/.*/pods/.*/attach"
    public static let defaultAcceptHosts = #"^localhost$,^127\.0\.0\.1$,^\[::1\]$"#
    public static let defaultRejectMethods = "^$"

    public var acceptPaths: [CompiledRegex]
    public var rejectPaths: [CompiledRegex]
    public var acceptHosts: [CompiledRegex]
    public var rejectMethods: [CompiledRegex]
    /// Refuse (400) paths with `.`/`..`/empty segments or encoded `/`, `.`, `%`, `\` (see `CanonicalPath`).
    public var canonicalPathsOnly = true
    /// Refuse (403) upgrade requests (WebSocket, SPDY) whose `Origin` is not `http(s)://localhost|127.x|[::1]`;
    /// requests without `Origin` (non-browser clients) pass.
    public var loopbackOriginsOnlyForUpgrades = true

    public enum Decision: Sendable, Hashable {
        case accept
        /// 403 `Forbidden`; the reason is for Ferry's log only (kubectl's body is just `Forbidden\n`).
        case reject(String)
    }

    /// Compiles the four lists; the error names the flag and the expression that does not compile.
    public init(acceptPaths: String = defaultAcceptPaths, rejectPaths: String = defaultRejectPaths,
                acceptHosts: String = defaultAcceptHosts, rejectMethods: String = defaultRejectMethods) throws {
        self.acceptPaths = try RequestFilter.list(acceptPaths, flag: "--accept-paths")
        self.rejectPaths = try RequestFilter.list(rejectPaths, flag: "--reject-paths")
        self.acceptHosts = try RequestFilter.list(acceptHosts, flag: "--accept-hosts")
        self.rejectMethods = try RequestFilter.list(rejectMethods, flag: "--reject-methods", caseInsensitive: true)
    }

    static func list(_ text: String, flag: String, caseInsensitive: Bool = false) throws -> [CompiledRegex] {
        if text.isEmpty { return [] }
        return try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            do {
                return try CompiledRegex((caseInsensitive ? "(?i)" : "") + part)
            } catch {
                throw RequestFilterError(description: "\(flag): \"\(part)\" is not a regular expression: \(error)")
            }
        }
    }

    /// The decision for a request; `path` is as received (it is percent-decoded here), `host` the Host header
    /// as received (a port is removed first).
    public func decide(path: String, method: String, host: String) -> Decision {
        let p = Substring(RequestFilter.percentDecoded(path))
        if let r = rejectPaths.first(where: { $0.firstMatchGroups(p) != nil }) { return .reject("path matches --reject-paths \(r.pattern)") }
        if let r = rejectMethods.first(where: { $0.firstMatchGroups(Substring(method)) != nil }) {
            return .reject("method matches --reject-methods \(r.pattern.dropFirst(4))")
        }
        guard acceptPaths.contains(where: { $0.firstMatchGroups(p) != nil }) else { return .reject("path matches no --accept-paths") }
        let h = RequestFilter.hostWithoutPort(host)
        guard acceptHosts.contains(where: { $0.firstMatchGroups(Substring(h)) != nil }) else { return .reject("host \(h) matches no --accept-hosts") }
        return .accept
    }

    /// Whether an upgrade with this `Origin` header may pass (always, when the check is off or there is none).
    public func allowsUpgrade(origin: String?) -> Bool {
        guard loopbackOriginsOnlyForUpgrades, let origin else { return true }
        return RequestFilter.isLoopbackOrigin(origin)
    }

    /// `http(s)://localhost`, `127.0.0.0/8` or `[::1]`, with any port.
    public static func isLoopbackOrigin(_ origin: String) -> Bool {
        let lower = origin.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") { rest = lower.dropFirst(7) } else if lower.hasPrefix("https://") { rest = lower.dropFirst(8) } else { return false }
        guard !rest.contains("/"), !rest.contains("@") else { return false }
        let host = hostWithoutPort(String(rest))
        if host == "localhost" || host == "[::1]" { return true }
        if let address = IPAddress(parsing: host), case .v4(let bits) = address { return bits >> 24 == 127 }
        return false
    }

    /// `localhost:8001` → `localhost`; `[::1]:8001` → `[::1]`; no port → unchanged.
    public static func hostWithoutPort(_ host: String) -> String {
        if host.hasPrefix("[") {
            if let close = host.firstIndex(of: "]") { return String(host[...close]) }
            return host
        }
        if let colon = host.lastIndex(of: ":"), host.filter({ $0 == ":" }).count == 1 { return String(host[..<colon]) }
        return host
    }

    /// `%XX` sequences decoded as bytes (invalid sequences kept as they are), as Go's `URL.Path`.
    public static func percentDecoded(_ path: String) -> String {
        guard path.utf8.contains(UInt8(ascii: "%")) else { return path }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(path.utf8.count)
        var it = Array(path.utf8)[...]
        while let b = it.first {
            if b == UInt8(ascii: "%"), it.count >= 3, let hi = hexValue(it[it.startIndex + 1]), let lo = hexValue(it[it.startIndex + 2]) {
                bytes.append(hi << 4 | lo)
                it = it.dropFirst(3)
            } else {
                bytes.append(b)
                it = it.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey {
            case acceptPaths = "accept_paths", rejectPaths = "reject_paths", acceptHosts = "accept_hosts", rejectMethods = "reject_methods"
            case canonicalPathsOnly = "canonical_paths_only", loopbackOrigins = "loopback_origins_only_for_upgrades"
        }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(acceptPaths.map(\.pattern).joined(separator: ","), forKey: .acceptPaths)
        try c.encode(rejectPaths.map(\.pattern).joined(separator: ","), forKey: .rejectPaths)
        try c.encode(acceptHosts.map(\.pattern).joined(separator: ","), forKey: .acceptHosts)
        try c.encode(rejectMethods.map { String($0.pattern.dropFirst(4)) }.joined(separator: ","), forKey: .rejectMethods)
        try c.encode(canonicalPathsOnly, forKey: .canonicalPathsOnly)
        try c.encode(loopbackOriginsOnlyForUpgrades, forKey: .loopbackOrigins)
    }
}

public struct RequestFilterError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Request paths Ferry refuses before any filter runs, so no spelling slips past `--reject-paths`:
/// `.` or `..` segments, empty segments (`//`), and percent-encoded `/`, `.` or `%` (double encoding).
public enum CanonicalPath {
    /// Why `path` (without query) is not canonical, or nil.
    public static func problem(_ path: Substring) -> String? {
        guard path.hasPrefix("/") else { return "the path must start with /" }
        let lower = path.lowercased()
        for encoded in ["%2f", "%2e", "%25", "%5c"] where lower.contains(encoded) {
            return "the path encodes \"\(encoded)\" (a slash, dot, percent or backslash); send it unencoded"
        }
        if path.contains("\\") { return "the path has a backslash" }
        let segments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        for (i, s) in segments.enumerated() {
            if s == "." || s == ".." { return "the path has a \"\(s)\" segment" }
            if s.isEmpty && i != segments.count - 1 { return "the path has an empty segment (//)" }
        }
        return nil
    }

    public static func problem(_ path: String) -> String? { problem(Substring(path)) }
}
