import FerryModel

/// `kubectl proxy`'s request filter, with its flags' defaults and decision order: reject when the path
/// matches a reject-path or the method a reject-method; accept only when the path matches an accept-path
/// and the host an accept-host. Lists are comma-separated regular expressions matched **unanchored**, as
/// Go's `MatchString` does; an empty list matches nothing. Where Ferry is stricter (safe by default):
/// method expressions ignore case, and a host with a port keeps its brackets (`[::1]:8001` → `[::1]`).
public struct APIProxyFilter: Sendable {
    public static let defaultAcceptPaths = "^.*"
    public static let defaultRejectPaths = "^/api/.*/pods/.*/exec,^/api/.*/pods/.*/attach"
    public static let defaultAcceptHosts = #"^localhost$,^127\.0\.0\.1$,^\[::1\]$"#
    public static let defaultRejectMethods = "^$"

    public var acceptPaths: [CompiledRegex]
    public var rejectPaths: [CompiledRegex]
    public var acceptHosts: [CompiledRegex]
    public var rejectMethods: [CompiledRegex]

    public enum Decision: Sendable, Hashable {
        case accept
        /// 403 `Forbidden`; the reason is for Ferry's log only (kubectl's body is just `Forbidden\n`).
        case reject(String)
    }

    /// Compiles the four lists; the error names the flag and the expression that does not compile.
    public init(acceptPaths: String = defaultAcceptPaths, rejectPaths: String = defaultRejectPaths,
                acceptHosts: String = defaultAcceptHosts, rejectMethods: String = defaultRejectMethods) throws {
        self.acceptPaths = try APIProxyFilter.list(acceptPaths, flag: "--accept-paths")
        self.rejectPaths = try APIProxyFilter.list(rejectPaths, flag: "--reject-paths")
        self.acceptHosts = try APIProxyFilter.list(acceptHosts, flag: "--accept-hosts")
        self.rejectMethods = try APIProxyFilter.list(rejectMethods, flag: "--reject-methods", caseInsensitive: true)
    }

    static func list(_ text: String, flag: String, caseInsensitive: Bool = false) throws -> [CompiledRegex] {
        if text.isEmpty { return [] }
        return try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            do {
                return try CompiledRegex((caseInsensitive ? "(?i)" : "") + part)
            } catch {
                throw APIProxyFilterError(description: "\(flag): \"\(part)\" is not a regular expression: \(error)")
            }
        }
    }

    /// The decision for a request; `host` is the Host header as received (a port is removed first).
    public func decide(path: String, method: String, host: String) -> Decision {
        let p = Substring(path)
        if let r = rejectPaths.first(where: { $0.firstMatchGroups(p) != nil }) { return .reject("path matches --reject-paths \(r.pattern)") }
        if let r = rejectMethods.first(where: { $0.firstMatchGroups(Substring(method)) != nil }) { return .reject("method matches --reject-methods \(r.pattern)") }
        guard acceptPaths.contains(where: { $0.firstMatchGroups(p) != nil }) else { return .reject("path matches no --accept-paths") }
        let h = APIProxyFilter.hostWithoutPort(host)
        guard acceptHosts.contains(where: { $0.firstMatchGroups(Substring(h)) != nil }) else { return .reject("host \(h) matches no --accept-hosts") }
        return .accept
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
}

public struct APIProxyFilterError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Where a request path stands against `--api-prefix` (kubectl's `stripLeaveSlash`): a prefix that does
/// not start with `/api` is removed, leaving a slash; outside the prefix is 404.
public enum APIPrefix {
    /// The prefix as kubectl normalises it: with a trailing slash.
    public static func normalise(_ prefix: String) -> String {
        prefix.hasSuffix("/") ? prefix : prefix + "/"
    }

    /// The path the API server (and the filter) sees, or nil for 404.
    public static func apply(_ prefix: String, to path: String) -> String? {
        let prefix = normalise(prefix)
        if prefix.hasPrefix("/api") {
            return path.hasPrefix(prefix) || path + "/" == prefix ? path : nil
        }
        guard path.hasPrefix(prefix) || path + "/" == prefix else { return nil }
        let rest = path.dropFirst(prefix.count - 1)  // leave the slash
        return rest.isEmpty ? "/" : String(rest)
    }
}

/// Request paths Ferry refuses before any filter runs, so no spelling slips past `--reject-paths`:
/// `.` or `..` segments, empty segments (`//`), and percent-encoded `/`, `.` or `%` (double encoding).
public enum CanonicalPath {
    /// Why `path` (without query) is not canonical, or nil.
    public static func problem(_ path: String) -> String? {
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
}
