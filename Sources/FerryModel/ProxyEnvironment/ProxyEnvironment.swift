/// HTTP_PROXY / HTTPS_PROXY / NO_PROXY as each common client reads them. There is no standard: Go
/// (`golang.org/x/net/http/httpproxy`, what most Kubernetes components use), curl (the current release,
/// 8.9 and later) and Python's `urllib` differ in which variables they read, how NO_PROXY entries
/// match, and whether localhost is ever proxied; Java reads none of them.
public struct ProxyEnvironment: Sendable {
    /// Variable name → value, as in the process environment (both cases may be present), and
    /// `REQUEST_METHOD`, whose presence means a CGI environment to Go and Python.
    public var variables: [String: String]

    public init(variables: [String: String]) {
        self.variables = variables.filter { key, _ in key.lowercased().hasSuffix("_proxy") || key == "REQUEST_METHOD" }
    }

    public enum Client: String, Sendable, CaseIterable {
        case go, curl, python, java
    }

    /// What one client would do for one URL.
    public struct Decision: Sendable, Hashable {
        public var client: Client
        /// The proxy URL it would use, or nil for a direct connection.
        public var proxy: String?
        public var reason: String
        /// The client refuses the request instead of connecting at all (Go's CGI rule).
        public var fails = false
    }

    /// The first of `names` that is set and not empty.
    func value(_ names: String...) -> (name: String, value: String)? {
        for name in names {
            if let v = variables[name], !v.isEmpty { return (name, v) }
        }
        return nil
    }

    /// Nil when `url` is not `scheme://host...`.
    public func decisions(for url: String) -> [Decision]? {
        guard let target = ProxyURLTarget(url) else { return nil }
        return [go(target), curl(target), python(target), java(target)]
    }

    // MARK: Go

    func go(_ t: ProxyURLTarget) -> Decision {
        guard t.scheme == "http" || t.scheme == "https" else {
            return Decision(client: .go, proxy: nil, reason: "Go's ProxyFromEnvironment proxies only http:// and https:// URLs")
        }
        let proxyVar = t.isHTTPS ? value("HTTPS_PROXY", "https_proxy") : value("HTTP_PROXY", "http_proxy")
        guard let proxyVar else {
            return Decision(client: .go, proxy: nil, reason: t.isHTTPS ? "HTTPS_PROXY/https_proxy not set (Go never falls back to HTTP_PROXY for https)" : "HTTP_PROXY/http_proxy not set")
        }
        if !t.isHTTPS, variables["REQUEST_METHOD"].map({ !$0.isEmpty }) == true {
            return Decision(client: .go, proxy: nil, reason: "REQUEST_METHOD is set (a CGI environment): Go refuses to use \(proxyVar.name) for http:// URLs and the request fails (golang.org/s/cgihttpproxy)", fails: true)
        }
        // Go compares the host in its ASCII (punycode) form, as it is written otherwise (a trailing dot stays).
        let host = Self.punycoded(t.host)
        if host == "localhost" || (t.address.map { IPRange(parsing: "127.0.0.0/8")!.contains($0) || $0 == IPAddress(parsing: "::1") } ?? false) {
            return Decision(client: .go, proxy: nil, reason: "Go never proxies localhost or loopback addresses")
        }
        let port = String(t.port)
        if let noProxy = value("NO_PROXY", "no_proxy") {
            for raw in noProxy.value.split(separator: ",") {
                let entry = raw.trimmingSpaces.lowercased()
                if entry.isEmpty { continue }
                if entry == "*" { return Decision(client: .go, proxy: nil, reason: "\(noProxy.name) contains * (Go honours it anywhere in the list)") }
                if entry.contains("/") {
                    if let range = IPRange(parsing: entry) {
                        if let a = t.address, range.contains(a) { return Decision(client: .go, proxy: nil, reason: "\(noProxy.name) entry \(entry) contains \(t.host)") }
                        continue
                    }
                }
                // net.SplitHostPort: `host:port` or `[v6]:port`; otherwise the whole entry is the host.
                var entryHost = Substring(entry)
                var entryPort = ""
                if let (h, p) = Self.splitHostPort(Substring(entry)) {
                    entryHost = h
                    entryPort = String(p)
                }
                if let ip = IPAddress(parsing: entryHost), !entryHost.hasPrefix("[") {
                    if t.address == ip, entryPort.isEmpty || entryPort == port {
                        return Decision(client: .go, proxy: nil, reason: "\(noProxy.name) entry \(entry) is the address")
                    }
                    continue
                }
                // A name entry never matches a host written as an IP literal (zoned IPv6 included).
                if t.isIPLiteral || entryHost.isEmpty { continue }
                var name = entryHost
                if name.hasPrefix("*.") { name = name.dropFirst() }
                let subdomainsOnly = name.hasPrefix(".")
                let suffix = Self.punycoded(subdomainsOnly ? String(name) : "." + name)
                if host.hasSuffix(suffix) || (!subdomainsOnly && host == String(suffix.dropFirst())) {
                    if entryPort.isEmpty || entryPort == port {
                        let what = subdomainsOnly ? "matches names below \(suffix.dropFirst()) (not \(suffix.dropFirst()) itself)" : "matches \(suffix.dropFirst()) and its subdomains"
                        return Decision(client: .go, proxy: nil, reason: "\(noProxy.name) entry \(entry) \(what)")
                    }
                }
            }
        }
        return Decision(client: .go, proxy: Self.withScheme(proxyVar.value), reason: "\(proxyVar.name) is set and no NO_PROXY entry matches")
    }

    /// Go's `net.SplitHostPort` for a NO_PROXY entry: `host:port` (one colon) or `[v6]:port`; nil otherwise
    /// (an IPv6 address without brackets, or a bracketed one without a port).
    static func splitHostPort(_ entry: Substring) -> (Substring, Substring)? {
        if entry.hasPrefix("[") {
            guard let close = entry.firstIndex(of: "]") else { return nil }
            let rest = entry[entry.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            return (entry[entry.index(after: entry.startIndex)..<close], rest.dropFirst())
        }
        guard entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") else { return nil }
        return (entry[..<colon], entry[entry.index(after: colon)...])
    }

    /// Each non-ASCII label in its `xn--` form (IDNA lookup, as Go's `idna.Lookup.ToASCII`).
    static func punycoded(_ host: String) -> String {
        guard !host.unicodeScalars.allSatisfy(\.isASCII) else { return host }
        return host.split(separator: ".", omittingEmptySubsequences: false).map { label in
            if label.unicodeScalars.allSatisfy(\.isASCII) { return String(label) }
            return Punycode.encode(label.lowercased()).map { "xn--" + $0 } ?? String(label)
        }.joined(separator: ".")
    }

    // MARK: curl

    func curl(_ t: ProxyURLTarget) -> Decision {
        // http_proxy only in lower case (httpoxy); the others in either case, lower case first; then ALL_PROXY.
        let specific: (name: String, value: String)?
        switch t.scheme {
        case "http": specific = value("http_proxy")
        default: specific = value("\(t.scheme)_proxy", "\(t.scheme.uppercased())_PROXY")
        }
        let ignoredUpper = t.scheme == "http" && variables["HTTP_PROXY"].map { !$0.isEmpty } == true && specific == nil
        guard let proxyVar = specific ?? value("all_proxy", "ALL_PROXY") else {
            return Decision(client: .curl, proxy: nil, reason: ignoredUpper ? "curl ignores HTTP_PROXY in upper case (only http_proxy is read)" : "\(t.scheme == "http" ? "http_proxy" : "\(t.scheme)_proxy/\(t.scheme.uppercased())_PROXY")/ALL_PROXY not set")
        }
        if let noProxy = value("no_proxy", "NO_PROXY") {
            if noProxy.value == "*" { return Decision(client: .curl, proxy: nil, reason: "\(noProxy.name)=* disables the proxy") }
            for entry in Self.curlEntries(noProxy.value) {
                if let reason = Self.curlMatches(entry: entry, t) { return Decision(client: .curl, proxy: nil, reason: "\(noProxy.name) entry \(entry) \(reason)") }
            }
        }
        return Decision(client: .curl, proxy: Self.withScheme(proxyVar.value), reason: "\(proxyVar.name) is set and no NO_PROXY entry matches (curl proxies localhost too unless listed)")
    }

    /// NO_PROXY entries as current curl reads them: comma-separated, blanks around an entry skipped; a blank
    /// that is not followed by a comma ends the list (8.9 and later; older releases split on blanks too).
    static func curlEntries(_ value: String) -> [String] {
        var entries: [String] = []
        var rest = Substring(value)
        func isBlank(_ c: Character) -> Bool { c == " " || c == "\t" }
        while !rest.isEmpty {
            rest = rest.drop(while: isBlank)
            let token = rest.prefix { !isBlank($0) && $0 != "," }
            rest = rest.dropFirst(token.count)
            if !token.isEmpty { entries.append(String(token)) }
            rest = rest.drop(while: isBlank)
            guard rest.first == "," else { break }
            rest = rest.drop { $0 == "," }
        }
        return entries
    }

    /// Whether one NO_PROXY entry matches, as curl's `Curl_check_noproxy`: a host given as an IP literal is
    /// compared with address entries only (IPv6 entries without brackets, with an optional /bits); a name
    /// ignores one trailing dot, and an entry one leading and one trailing dot.
    static func curlMatches(entry: String, _ t: ProxyURLTarget) -> String? {
        if t.bracketed || (t.address != nil && !t.host.contains(":")) {
            guard let address = t.address else { return nil }
            var check = Substring(entry)
            var bits: Int?
            if let slash = check.firstIndex(of: "/") {
                bits = Int(check[check.index(after: slash)...]) ?? 0
                check = check[..<slash]
            }
            guard let ip = IPAddress(parsing: check), ip.isIPv6 == address.isIPv6 else { return nil }
            let maxBits = ip.isIPv6 ? 128 : 32
            let length = (bits == nil || bits == 0) ? maxBits : bits!
            guard length <= maxBits, let range = IPRange(parsing: "\(ip)/\(length)"), range.contains(address) else { return nil }
            return "contains \(t.host)"
        }
        var name = Substring(t.host)
        if name.hasSuffix(".") { name = name.dropLast() }
        var token = Substring(entry.lowercased())
        if token.hasSuffix(".") { token = token.dropLast() }
        if token.hasPrefix(".") { token = token.dropFirst() }
        guard !token.isEmpty else { return nil }
        if name == token || name.hasSuffix("." + token) { return "matches \(token) and its subdomains (a leading dot is ignored)" }
        return nil
    }

    // MARK: Python urllib

    /// `urllib.request.getproxies_environment()`: every `*_proxy` variable in any case, then the lower-case
    /// ones again so that they win — an empty lower-case one removes the entry (`http_proxy=""` hides
    /// `HTTP_PROXY`); with `REQUEST_METHOD` present (CGI) the `http` entry from other cases is dropped.
    func pythonProxies() -> [String: (name: String, value: String)] {
        var proxies: [String: (name: String, value: String)] = [:]
        for name in variables.keys.sorted() where name.lowercased().hasSuffix("_proxy") {
            let value = variables[name]!
            if !value.isEmpty { proxies[String(name.lowercased().dropLast(6))] = (name, value) }
        }
        if variables["REQUEST_METHOD"] != nil { proxies["http"] = nil }
        for name in variables.keys.sorted() where name.hasSuffix("_proxy") {
            let value = variables[name]!
            let key = String(name.lowercased().dropLast(6))
            if value.isEmpty { proxies[key] = nil } else { proxies[key] = (name, value) }
        }
        return proxies
    }

    func python(_ t: ProxyURLTarget) -> Decision {
        let proxies = pythonProxies()
        guard let proxyVar = proxies[t.scheme] else {
            let hidden = variables["\(t.scheme)_proxy"] == "" && variables.contains { $0.key.lowercased() == "\(t.scheme)_proxy" && !$0.value.isEmpty }
            let cgi = t.scheme == "http" && variables["REQUEST_METHOD"] != nil
            let reason = hidden ? "\(t.scheme)_proxy is set but empty, which hides the other spellings" :
                cgi ? "REQUEST_METHOD is set (CGI): urllib ignores HTTP_PROXY in other than lower case" : "no \(t.scheme)_proxy variable (any case) is set"
            return Decision(client: .python, proxy: nil, reason: reason)
        }
        if let noProxy = proxies["no"] {
            if noProxy.value == "*" { return Decision(client: .python, proxy: nil, reason: "\(noProxy.name)=* disables the proxy") }
            // urllib compares the URL's host as written (IPv6 in brackets), with its port when the URL names one.
            let hostOnly = t.bracketed ? "[\(t.host)]" : t.host
            let hostPort = t.explicitPort ? "\(hostOnly):\(t.port)" : hostOnly
            for raw in noProxy.value.split(separator: ",", omittingEmptySubsequences: false) {
                // Python's str.strip(): every kind of whitespace.
                var name = String(raw.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()).lowercased()
                if name.isEmpty { continue }
                while name.hasPrefix(".") { name.removeFirst() }
                if hostOnly == name || hostPort == name || hostOnly.hasSuffix("." + name) || hostPort.hasSuffix("." + name) {
                    return Decision(client: .python, proxy: nil, reason: "\(noProxy.name) entry \(raw.trimmingSpaces) matches (leading dots ignored)")
                }
            }
        }
        return Decision(client: .python, proxy: Self.withScheme(proxyVar.value), reason: "\(proxyVar.name) is set and no NO_PROXY entry matches (urllib compares CIDRs as plain text)")
    }

    // MARK: Java

    func java(_ t: ProxyURLTarget) -> Decision {
        Decision(client: .java, proxy: nil, reason: "the JVM ignores these variables and connects directly; start it with the -D flags below")
    }

    static func withScheme(_ proxy: String) -> String {
        proxy.contains("://") ? proxy : "http://" + proxy
    }
}

/// The parts of a URL that proxy decisions look at.
struct ProxyURLTarget {
    /// Lower case: `http`, `https`, `ftp`...
    var scheme: String
    var isHTTPS: Bool { scheme == "https" }
    /// Lower case, without brackets; a trailing dot and an IPv6 zone stay as written.
    var host: String
    /// The host was an IPv6 literal in brackets.
    var bracketed = false
    var port: Int
    /// Whether the URL itself names the port.
    var explicitPort = false
    /// The host as an address (an IPv6 zone removed).
    var address: IPAddress?
    /// The host is an IP literal (an IPv4 dotted quad, or anything in brackets).
    var isIPLiteral: Bool { bracketed || address != nil }

    static let defaultPorts = ["http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443, "socks5": 1080, "gopher": 70]

    init?(_ url: String) {
        guard let colon = url.firstIndex(of: ":"), url[colon...].hasPrefix("://") else { return nil }
        let scheme = url[..<colon].lowercased()
        guard let first = scheme.first, first.isLetter, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else { return nil }
        self.scheme = scheme
        let rest = url[url.index(colon, offsetBy: 3)...].lowercased()
        var authority = Substring(rest).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var hostPart = authority
        var port = ProxyURLTarget.defaultPorts[scheme] ?? 0
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            bracketed = true
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":"), let p = Int(after.dropFirst()) {
                port = p
                explicitPort = true
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            guard let p = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = p
            explicitPort = true
        }
        guard !hostPart.isEmpty else { return nil }
        host = String(hostPart)
        self.port = port
        let withoutZone = hostPart.split(separator: "%", maxSplits: 1).first ?? hostPart
        address = bracketed ? IPAddress(parsing: withoutZone).flatMap { $0.isIPv6 ? $0 : nil } : IPAddress(parsing: hostPart).flatMap { $0.isIPv6 ? nil : $0 }
    }
}
