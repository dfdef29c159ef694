/// The routes of one listener, arranged for lookup: virtual hosts by domain, routes in order.
/// Built once per snapshot; `match` is a pure function over it.
public struct RouteTable: Sendable {
    public let virtualHosts: [VirtualHost]
    private let exact: [String: Int]
    /// One-label wildcards by their suffix (`.example.com`): a host can only match the one for its own
    /// suffix after the first label, so lookup is one dictionary probe however many wildcards there are.
    private let wildcards: [String: Int]
    private let fallback: Int?
    /// Envoy's suffix and prefix wildcards, longest first (Envoy's order: the longest wildcard wins).
    private let suffixes: [(text: String, index: Int)]
    private let prefixes: [(text: String, index: Int)]
    /// Each virtual host's route matches, in order: the only part of a route a lookup reads, kept apart so
    /// that trying a route copies nothing.
    private let matches: [[RouteMatch]]

    public init(virtualHosts: [VirtualHost]) {
        self.virtualHosts = virtualHosts
        var exact: [String: Int] = [:]
        var wildcards: [String: Int] = [:]
        var fallback: Int?
        var suffixes: [(text: String, index: Int)] = [], prefixes: [(text: String, index: Int)] = []
        for (index, vhost) in virtualHosts.enumerated() {
            for domain in vhost.domains {
                switch domain {
                case .exact(let name): if exact[name] == nil { exact[name] = index }
                case .wildcard(let suffix): if wildcards[suffix] == nil { wildcards[suffix] = index }
                case .any: if fallback == nil { fallback = index }
                case .suffix(let text): suffixes.append((text, index))
                case .prefix(let text): prefixes.append((text, index))
                }
            }
        }
        // Stable: of two equally long wildcards the first written wins.
        self.suffixes = suffixes.enumerated().sorted { ($0.element.text.count, -$0.offset) > ($1.element.text.count, -$1.offset) }.map(\.element)
        self.prefixes = prefixes.enumerated().sorted { ($0.element.text.count, -$0.offset) > ($1.element.text.count, -$1.offset) }.map(\.element)
        self.wildcards = wildcards
        self.exact = exact
        self.fallback = fallback
        self.matches = virtualHosts.map { $0.routes.map(\.match) }
    }

    /// The result of a lookup: the virtual host and route that serve a request.
    public struct Match: Sendable {
        public let virtualHost: Int
        public let route: Int
    }

    /// Exact domain first, then the one-label wildcard for the host's parent domain, then Envoy's suffix and
    /// prefix wildcards (longest first), then `*`. Host names are
    /// compared without case, port or one trailing dot (`APP.EXAMPLE.:80` is `app.example`).
    public func virtualHostIndex(forAuthority authority: Substring) -> Int? {
        if exact.isEmpty && wildcards.isEmpty && suffixes.isEmpty && prefixes.isEmpty { return fallback }
        var host = RouteTable.hostWithoutPort(authority)
        if host.utf8.last == UInt8(ascii: ".") { host = host.dropLast() }
        let lower: String = host.utf8.contains(where: { $0 >= 65 && $0 <= 90 }) ? host.lowercased() : String(host)
        if let index = exact[lower] { return index }
        if !wildcards.isEmpty, let dot = lower.utf8.firstIndex(of: UInt8(ascii: ".")), dot != lower.utf8.startIndex,
           let index = wildcards[String(lower[dot...])] {
            return index
        }
        let name = Substring(lower)
        if let found = suffixes.first(where: { DomainPattern.suffix($0.text).matches(name) }) { return found.index }
        if let found = prefixes.first(where: { DomainPattern.prefix($0.text).matches(name) }) { return found.index }
        return fallback
    }

    /// The first route, in order, of the virtual host for `authority` whose match accepts the request.
    /// `header` answers the first value of a lower-case header name.
    public func match(
        authority: Substring,
        path: Substring,
        method: String,
        header: (String) -> String?
    ) -> Match? {
        guard let vh = virtualHostIndex(forAuthority: authority) else { return nil }
        let pathOnly = RouteTable.pathWithoutQuery(path)
        return matches[vh].withUnsafeBufferPointer { routes in
            for index in routes.indices where RouteTable.accepts(routes[index], pathOnly, method, header) {
                return Match(virtualHost: vh, route: index)
            }
            return nil
        }
    }

    public func route(_ match: Match) -> Route {
        virtualHosts[match.virtualHost].routes[match.route]
    }

    /// Whether `match` accepts a request (path without its query).
    public static func accepts(_ match: RouteMatch, _ path: Substring, _ method: String, _ header: (String) -> String?) -> Bool {
        guard match.path.matches(path) else { return false }
        if !match.methods.isEmpty, !match.methods.contains(method) { return false }
        for h in match.headers where !h.matches(header(h.name)) { return false }
        if !match.cookies.isEmpty {
            let cookieHeader = header("cookie")
            for c in match.cookies where CookieMatch.value(of: c.name, inCookieHeader: cookieHeader) != Substring(c.value) { return false }
        }
        return true
    }

    /// `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`.
    public static func hostWithoutPort(_ authority: Substring) -> Substring {
        let utf8 = authority.utf8
        if utf8.first == UInt8(ascii: "[") {
            if let close = utf8.firstIndex(of: UInt8(ascii: "]")) { return authority[...close] }
            return authority
        }
        if let colon = utf8.lastIndex(of: UInt8(ascii: ":")) { return authority[..<colon] }
        return authority
    }

    public static func pathWithoutQuery(_ target: Substring) -> Substring {
        if let q = target.utf8.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) { return target[..<q] }
        return target
    }
}
