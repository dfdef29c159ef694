/// HTTP_PROXY / HTTPS_PROXY / NO_PROXY as each common client reads them. There is no standard: Go
/// (`golang.org/x/net/http/httpproxy`, what most Kubernetes components use), curl (current releases,
/// 7.86 and later) and Python's `urllib` differ in which variables they read, how NO_PROXY entries
/// match, and whether localhost is ever proxied; Java reads none of them.
public struct ProxyEnvironment: Sendable {
    /// Variable name → value, as in the process environment (both cases may be present).
    public var variables: [String: String]

    public init(variables: [String: String]) {
        self.variables = variables.filter { key, _ in key.lowercased().hasSuffix("_proxy") }
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
    }

    /// The first of `names` that is set and not empty.
    func value(_ names: String...) -> (name: String, value: String)? {
        for name in names {
            if let v = variables[name], !v.isEmpty { return (name, v) }
        }
        return nil
    }

    public func decisions(for url: String) -> [Decision]? {
        guard let target = ProxyURLTarget(url) else { return nil }
        return [go(target), curl(target), python(target), java(target)]
    }

    // MARK: Go

    func go(_ t: ProxyURLTarget) -> Decision {
        let proxyVar = t.isHTTPS ? value("HTTPS_PROXY", "https_proxy") : value("HTTP_PROXY", "http_proxy")
        guard let proxyVar else {
            return Decision(client: .go, proxy: nil, reason: t.isHTTPS ? "HTTPS_PROXY/https_proxy not set (Go never falls back to HTTP_PROXY for https)" : "HTTP_PROXY/http_proxy not set")
        }
        if t.host == "localhost" || t.address.map({ IPRange(parsing: "127.0.0.0/8")!.contains($0) || $0 == IPAddress(parsing: "::1") }) == true {
            return Decision(client: .go, proxy: nil, reason: "Go never proxies localhost or loopback addresses")
        }
        if let noProxy = value("NO_PROXY", "no_proxy") {
            for raw in noProxy.value.split(separator: ",") {
                let entry = raw.trimmingSpaces.lowercased()
                if entry.isEmpty { continue }
                if entry == "*" { return Decision(client: .go, proxy: nil, reason: "\(noProxy.name)=* disables the proxy") }
                if let range = IPRange(parsing: entry), entry.contains("/") {
                    if let a = t.address, range.contains(a) { return Decision(client: .go, proxy: nil, reason: "\(noProxy.name) entry \(entry) contains \(t.host)") }
                    continue
                }
                var host = Substring(entry)
                var port: Int?
                if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]"), host.filter({ $0 == ":" }).count == 1 {
                    port = Int(host[host.index(after: colon)...])
                    host = host[..<colon]
                }
                if let port, port != t.port { continue }
                if let ip = IPAddress(parsing: host.withoutBrackets) {
                    if t.address == ip { return Decision(client: .go, proxy: nil, reason: "\(noProxy.name) entry \(entry) is the address") }
                    continue
                }
                if host.hasPrefix("*.") { host = host.dropFirst() }
                if host.hasPrefix(".") {
                    if t.host.hasSuffix(host) { return Decision(client: .go, proxy: nil, reason: "\(noProxy.name) entry \(entry) matches subdomains of \(host.dropFirst())") }
                } else if t.host == host || t.host.hasSuffix("." + host) {
                    return Decision(client: .go, proxy: nil, reason: "\(noProxy.name) entry \(entry) matches \(host) and its subdomains")
                }
            }
        }
        return Decision(client: .go, proxy: Self.withScheme(proxyVar.value), reason: "\(proxyVar.name) is set and no NO_PROXY entry matches")
    }

    // MARK: curl

    func curl(_ t: ProxyURLTarget) -> Decision {
        // http_proxy only in lower case (httpoxy); the others in either case, lower case first.
        let specific = t.isHTTPS ? value("https_proxy", "HTTPS_PROXY") : value("http_proxy")
        let ignoredUpper = !t.isHTTPS && variables["HTTP_PROXY"].map { !$0.isEmpty } == true && specific == nil
        guard let proxyVar = specific ?? value("all_proxy", "ALL_PROXY") else {
            return Decision(client: .curl, proxy: nil, reason: ignoredUpper ? "curl ignores HTTP_PROXY in upper case (only http_proxy is read)" : (t.isHTTPS ? "https_proxy/HTTPS_PROXY/ALL_PROXY not set" : "http_proxy/ALL_PROXY not set"))
        }
        if let noProxy = value("no_proxy", "NO_PROXY") {
            let entries = noProxy.value.split(whereSeparator: { $0 == "," || $0 == " " }).map { $0.lowercased() }.filter { !$0.isEmpty }
            if entries == ["*"] { return Decision(client: .curl, proxy: nil, reason: "\(noProxy.name)=* disables the proxy") }
            for entry in entries {
                if entry.contains("/"), let range = IPRange(parsing: entry) {
                    if let a = t.address, range.contains(a) { return Decision(client: .curl, proxy: nil, reason: "\(noProxy.name) entry \(entry) contains \(t.host)") }
                    continue
                }
                if let ip = IPAddress(parsing: Substring(entry).withoutBrackets) {
                    if t.address == ip { return Decision(client: .curl, proxy: nil, reason: "\(noProxy.name) entry \(entry) is the address") }
                    continue
                }
                // A name entry never matches a host given as an IP address (curl compares those as addresses).
                if t.address != nil { continue }
                var name = Substring(entry)
                if name.hasPrefix(".") { name = name.dropFirst() }  // a leading dot is ignored
                if name.hasSuffix(".") { name = name.dropLast() }
                if t.host == name || t.host.hasSuffix("." + name) {
                    return Decision(client: .curl, proxy: nil, reason: "\(noProxy.name) entry \(entry) matches \(name) and its subdomains")
                }
            }
        }
        return Decision(client: .curl, proxy: Self.withScheme(proxyVar.value), reason: "\(proxyVar.name) is set and no NO_PROXY entry matches (curl proxies localhost too unless listed)")
    }

    // MARK: Python urllib

    func python(_ t: ProxyURLTarget) -> Decision {
        // urllib reads every *_proxy variable, the lower-case one winning over the upper-case one.
        let scheme = t.isHTTPS ? "https" : "http"
        guard let proxyVar = value("\(scheme)_proxy", "\(scheme.uppercased())_PROXY") else {
            return Decision(client: .python, proxy: nil, reason: "\(scheme)_proxy/\(scheme.uppercased())_PROXY not set")
        }
        if let noProxy = value("no_proxy", "NO_PROXY") {
            if noProxy.value.trimmingSpaces == "*" { return Decision(client: .python, proxy: nil, reason: "\(noProxy.name)=* disables the proxy") }
            // urllib compares the URL's netloc as written: with a port only when the URL has one.
            let hostPort = t.explicitPort ? "\(t.host):\(t.port)" : t.host
            for raw in noProxy.value.split(separator: ",") {
                var name = raw.trimmingSpaces.lowercased()
                if name.isEmpty { continue }
                while name.hasPrefix(".") { name.removeFirst() }
                if t.host == name || hostPort == name || t.host.hasSuffix("." + name) || hostPort.hasSuffix("." + name) {
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
    var isHTTPS: Bool
    /// Lower case, without brackets or a trailing dot.
    var host: String
    var port: Int
    /// Whether the URL itself names the port.
    var explicitPort = false
    var address: IPAddress?

    init?(_ url: String) {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            isHTTPS = true
            rest = Substring(lower.dropFirst(8))
        } else if lower.hasPrefix("http://") {
            isHTTPS = false
            rest = Substring(lower.dropFirst(7))
        } else {
            return nil
        }
        var authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var hostPart = authority
        var port = isHTTPS ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
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
        while hostPart.hasSuffix(".") { hostPart = hostPart.dropLast() }
        guard !hostPart.isEmpty else { return nil }
        host = String(hostPart)
        self.port = port
        address = IPAddress(parsing: hostPart)
    }
}
