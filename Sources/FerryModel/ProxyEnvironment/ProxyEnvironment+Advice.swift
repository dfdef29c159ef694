extension ProxyEnvironment {
    /// A NO_PROXY entry (or variable) that some clients read differently, and how.
    public struct Finding: Sendable, Hashable {
        /// `fix`: a spelling exists that Go, curl and Python read alike, and the finding names it (`ferry env
        /// --lint` fails). `note`: the clients differ and no spelling closes the gap (a CIDR, a port), so the
        /// finding only says what each does.
        public enum Severity: String, Sendable, Hashable {
            case fix
            case note
        }

        public var entry: String
        public var message: String
        public var severity: Severity

        public init(entry: String, message: String, severity: Severity) {
            self.entry = entry
            self.message = message
            self.severity = severity
        }
    }

    /// What in these variables is read differently by Go, curl, Python and Java.
    public func lint() -> [Finding] {
        var findings: [Finding] = []
        for (upper, lower) in [("HTTP_PROXY", "http_proxy"), ("HTTPS_PROXY", "https_proxy"), ("NO_PROXY", "no_proxy")] {
            if upper == "HTTP_PROXY", let a = variables[upper], !a.isEmpty, variables[lower] == nil {
                findings.append(Finding(entry: upper, message: "curl reads only http_proxy (lower case) for http:// URLs; set http_proxy to the same value too", severity: .fix))
            }
            if let a = variables[upper], let b = variables[lower], a != b {
                findings.append(Finding(entry: "\(upper)/\(lower)", message: "both set with different values: Go uses \(upper), curl and Python use \(lower); give both the same value", severity: .fix))
            }
        }
        guard let noProxy = value("NO_PROXY", "no_proxy")?.value ?? value("no_proxy")?.value else { return findings }
        let entries = noProxy.split(separator: ",").map { String($0.trimmingSpaces) }.filter { !$0.isEmpty }
        for entry in entries {
            if entry == "*" {
                if entries.count > 1 { findings.append(Finding(entry: entry, message: "\"*\" only disables the proxy when it is the whole value in curl and Python; Go honours it anywhere in the list: make it the whole value or remove it", severity: .fix)) }
                continue
            }
            if entry.contains("/") {
                findings.append(Finding(entry: entry, message: "a CIDR: Go and curl (7.86 and later) match addresses in it; Python's urllib compares it as text and never matches; Java's nonProxyHosts cannot express it; list the names clients use for these addresses too", severity: .note))
            } else if entry.hasPrefix("*") {
                findings.append(Finding(entry: entry, message: "a wildcard: Go reads *.x as .x; curl has no wildcards besides a lone * and never matches it; Python never matches it: write \(entry.drop { $0 == "*" || $0 == "." }), which every client matches with the names below it", severity: .fix))
            } else if entry.hasPrefix(".") {
                findings.append(Finding(entry: entry, message: "a leading dot: Go matches only names below \(entry.dropFirst()), not \(entry.dropFirst()) itself; curl and Python ignore the dot and match both: write \(entry.drop { $0 == "." }), which every client reads as the name and the names below it", severity: .fix))
            }
            if !entry.contains("/"), !entry.hasPrefix("["), entry.filter({ $0 == ":" }).count == 1 {
                findings.append(Finding(entry: entry, message: "a port: Go matches only that port; curl never matches an entry with a port; Python matches it only when the URL names that port", severity: .note))
            }
            if entry.hasPrefix("["), entry.hasSuffix("]") {
                findings.append(Finding(entry: entry, message: "an IPv6 address in brackets without a port: Go and curl never match it; write it without brackets (Go also reads [v6]:port)", severity: .fix))
            }
            if entry.contains(" ") || entry.contains("\t") {
                findings.append(Finding(entry: entry, message: "a blank inside an entry: current curl (8.9 and later) stops reading NO_PROXY at a blank not followed by a comma, older curl splits on it; separate entries with commas", severity: .fix))
            }
        }
        return findings
    }

    /// The container `env:` of a Pod that gives every client the same settings (both cases, since curl
    /// reads only lower-case http_proxy and Go prefers upper case).
    public func podEnv() -> String {
        var lines = ["env:"]
        for (upper, lower) in [("HTTP_PROXY", "http_proxy"), ("HTTPS_PROXY", "https_proxy"), ("NO_PROXY", "no_proxy")] {
            guard let v = value(upper, lower)?.value else { continue }
            for name in [upper, lower] {
                lines.append("  - name: \(name)")
                lines.append("    value: \"\(v)\"")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// JVM system properties that express the same settings (the JVM does not read the variables).
    public func jvmFlags() -> [String] {
        var flags: [String] = []
        for (scheme, upper, lower) in [("http", "HTTP_PROXY", "http_proxy"), ("https", "HTTPS_PROXY", "https_proxy")] {
            guard let v = value(upper, lower)?.value, let (host, port) = Self.hostPort(of: v) else { continue }
            flags.append("-D\(scheme).proxyHost=\(host)")
            flags.append("-D\(scheme).proxyPort=\(port)")
        }
        if let noProxy = value("NO_PROXY", "no_proxy")?.value {
            var hosts: [String] = []
            for raw in noProxy.split(separator: ",") {
                var entry = String(raw.trimmingSpaces)
                if entry.isEmpty || entry.contains("/") { continue }  // CIDRs cannot be expressed
                if entry == "*" { hosts = ["*"]; break }
                if let colon = entry.lastIndex(of: ":"), entry.filter({ $0 == ":" }).count == 1 { entry = String(entry[..<colon]) }
                if entry.hasPrefix("*.") {
                    hosts.append(entry)
                } else if entry.hasPrefix(".") {
                    hosts.append("*" + entry)
                } else if IPAddress(parsing: entry) != nil {
                    hosts.append(entry)
                } else {
                    hosts.append(entry)
                    hosts.append("*." + entry)
                }
            }
            if !hosts.isEmpty { flags.append("-Dhttp.nonProxyHosts=\(hosts.joined(separator: "|"))") }
        }
        return flags
    }

    /// `http://user:pw@proxy.corp:3128/` → (`proxy.corp`, 3128); a missing port is 80 (http) or 443 (https).
    static func hostPort(of proxy: String) -> (String, Int)? {
        var rest = Substring(proxy)
        var defaultPort = 80
        if let scheme = rest.firstRange(of: "://") {
            if rest[..<scheme.lowerBound].lowercased() == "https" { defaultPort = 443 }
            rest = rest[scheme.upperBound...]
        }
        rest = rest.prefix { $0 != "/" }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            let host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            return (host, after.hasPrefix(":") ? Int(after.dropFirst()) ?? defaultPort : defaultPort)
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]) else { return nil }
            return (String(rest[..<colon]), port)
        }
        return rest.isEmpty ? nil : (String(rest), defaultPort)
    }
}
