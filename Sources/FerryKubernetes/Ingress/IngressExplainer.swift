import FerryModel

/// Explains, for one request, which Ingress rule and path serve it and why, using the same route table
/// the data plane uses; or why nothing matches and what answers instead.
public enum IngressExplainer {
    public struct Request: Sendable {
        public var method: String
        /// The Host header (may carry a port).
        public var authority: String
        /// Path and query.
        public var target: String
        /// Lower-case names.
        public var headers: [(String, String)]
        public var clientAddress: String?

        /// Parses `http://host[:port]/path?query`; a `Host` header in `headers` overrides the URL's host.
        public init?(url: String, method: String = "GET", headers: [(String, String)] = [], clientAddress: String? = nil) {
            var rest = Substring(url)
            if let scheme = rest.range(of: "://") {
                let s = rest[..<scheme.lowerBound].lowercased()
                guard s == "http" || s == "https" else { return nil }
                rest = rest[scheme.upperBound...]
            }
            let slash = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            let authority = String(rest[..<slash])
            var target = String(rest[slash...])
            if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
            self.method = method.uppercased()
            self.headers = headers.map { ($0.0.lowercased(), $0.1) }
            self.authority = self.headers.first { $0.0 == "host" }?.1 ?? authority
            self.target = target
            self.clientAddress = clientAddress
            guard !self.authority.isEmpty || self.headers.contains(where: { $0.0 == "host" }) else { return nil }
        }

        func header(_ name: String) -> String? {
            headers.first { $0.0 == name }?.1
        }
    }

    public static func explain(_ request: Request, translation: IngressTranslation) -> String {
        var out: [String] = []
        let table = RouteTable(virtualHosts: translation.virtualHosts)
        let host = RouteTable.hostWithoutPort(Substring(request.authority)).lowercased()
        let path = RouteTable.pathWithoutQuery(Substring(request.target))
        out.append("request: \(request.method) http://\(request.authority)\(request.target)")

        guard let vh = table.virtualHostIndex(forAuthority: Substring(request.authority)) else {
            out.append("host \(host): no Ingress rule names this host, and no rule without a host or default backend exists")
            out.append("answer: 404 from Ferry (no route)")
            return out.joined(separator: "\n") + "\n"
        }
        let vhost = translation.virtualHosts[vh]
        out.append(hostLine(host: host, vhost: vhost))
        let routes = vhost.routes
        if routes.first.flatMap({ translation.origins[$0.name]?.regexHost }) == true {
            out.append("  paths on this host are regular expressions (case-insensitive, anchored at the start) because an Ingress on it sets use-regex or rewrite-target")
        }
        out.append("path \(path): candidates in the order Ferry tries them (longest first, Exact before Prefix):")
        var chosen: Route?
        for route in routes {
            let accepted = RouteTable.accepts(route.match, path, request.method, request.header)
            let mark = chosen == nil && accepted ? "→" : accepted ? "+" : "-"
            out.append("  \(mark) \(describe(route, translation: translation)): \(reason(route, path: path, accepted: accepted, request: request))")
            if accepted && chosen == nil { chosen = route }
        }
        guard let route = chosen else {
            out.append("no path matches, and no defaultBackend serves this host")
            out.append("answer: 404 from Ferry (no route)")
            return out.joined(separator: "\n") + "\n"
        }
        out.append("matched: \(describe(route, translation: translation))")
        if !route.allowedSources.isEmpty {
            let allowed = request.clientAddress.map { route.allowsSource(IPAddress(parsing: $0)) }
            out.append("source allowlist: \(route.allowedSources.map(\.description).joined(separator: ", "))" + (allowed.map { $0 ? " (client \(request.clientAddress!) allowed)" : " (client \(request.clientAddress!) refused: 403)" } ?? " (give --source IP to check a client)"))
        }
        if let rewrite = route.rewrite, let target = rewrite.apply(to: Substring(request.target)) {
            out.append("rewrite: \(request.target) → \(target) (rewrite-target \(rewrite.replacement))")
        }
        switch route.action {
        case .redirect(let r):
            out.append("answer: \(r.status) redirect to \(r.location(requestHost: request.authority, requestPathAndQuery: request.target))")
        case .directResponse(let status, let body):
            out.append("answer: \(status) from Ferry: \(body.trimmingSuffixNewline)")
        case .staticFiles(let files):
            out.append("answer: files from \(files.root)")
        case .forward(let clusters):
            let total = clusters.reduce(0) { $0 + $1.weight }
            for c in clusters {
                let share = clusters.count > 1 ? " (weight \(c.weight) of \(total))" : ""
                out.append("backend: cluster \(c.name)\(share)")
                if translation.clusters.first(where: { $0.name == c.name })?.endpoints.isEmpty == true {
                    out.append("  answer: 503 from Ferry (no endpoint to send to)")
                }
                if let b = translation.backends[c.name] {
                    out.append("  \(b.service): \(b.detail)")
                    if !b.endpoints.isEmpty { out.append("  endpoints: \(b.endpoints.joined(separator: ", "))") }
                }
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func hostLine(host: String, vhost: VirtualHost) -> String {
        switch vhost.domains.first {
        case .exact?: return "host \(host): matches the rule host \(vhost.name) exactly"
        case .wildcard(let suffix)?: return "host \(host): matches the wildcard rule host *\(suffix) (exactly one label before \(suffix))"
        default: return "host \(host): no Ingress rule names this host; the rules without a host apply"
        }
    }

    static func describe(_ route: Route, translation: IngressTranslation) -> String {
        guard let o = translation.origins[route.name] else { return route.name }
        switch o.kind {
        case .path, .canaryMatch, .canaryNever:
            var text = "\(o.path ?? "") (\(o.pathType ?? "")) of Ingress \(o.ingress ?? "") rule \(o.rule ?? 0) path \(o.pathIndex ?? 0)"
            if let file = o.file { text += " [\(file)]" }
            if o.kind == .canaryMatch { text += ", canary \(o.canary ?? "")" }
            if o.kind == .canaryNever { text += ", canary \(o.canary ?? "") refused by \"never\"" }
            for h in route.match.headers { text += ", header \(h.name)\(conditionText(h.condition))" }
            for c in route.match.cookies { text += ", cookie \(c.name)=\(c.value)" }
            return text
        case .appRoot: return "/ (app-root of Ingress \(o.ingress ?? ""))"
        case .ingressDefaultBackend: return "defaultBackend of Ingress \(o.ingress ?? "")"
        case .controllerDefaultBackend: return "the controller's --default-backend"
        }
    }

    static func conditionText(_ c: HeaderMatch.Condition) -> String {
        switch c {
        case .exact(let v): "=\(v)"
        case .present: " present"
        case .regex(let r): "~\(r.pattern)"
        }
    }

    static func reason(_ route: Route, path: Substring, accepted: Bool, request: Request) -> String {
        let pathOK = route.match.path.matches(path)
        var why: String
        switch route.match.path {
        case .exact(let p):
            why = pathOK ? "equals \(p)" : "is not exactly \(p)"
        case .prefix(let p):
            if pathOK {
                why = p.allSatisfy({ $0 == "/" }) ? "\"/\" matches every path" : "every element of \(p) is an element of \(path)"
            } else {
                why = "\(p) is not an element-wise prefix of \(path)"
            }
        case .regex(let r):
            why = pathOK ? "matches regex \(r.pattern)" : "does not match regex \(r.pattern)"
        case .regexPrefix(let r):
            why = pathOK ? "regex \(r.pattern) matches at the start" : "regex \(r.pattern) does not match at the start"
        case .stringPrefix(let p):
            why = pathOK ? "starts with \(p)" : "does not start with \(p)"
        }
        if pathOK && !accepted {
            why += ", but the header or cookie condition does not hold"
        }
        return why
    }
}

extension String {
    var trimmingSuffixNewline: Substring {
        var s = Substring(self)
        while s.hasSuffix("\n") { s = s.dropLast() }
        return s
    }
}
