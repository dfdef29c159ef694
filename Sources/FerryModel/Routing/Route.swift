/// One routing rule: what it matches, what it does, and the policy around it.
public struct Route: Sendable, Encodable {
    public var name: String
    public var match: RouteMatch
    public var action: RouteAction
    /// Upstream response deadline (until the response head arrives); late → 504.
    public var timeout: Duration
    public var retries: RetryPolicy
    /// The path sent upstream instead of the received one (forward routes only).
    public var rewrite: PathRewrite?
    /// Client addresses allowed to use the route; empty = every client. Others get 403.
    public var allowedSources: [IPRange]
    /// Overrides the listener's request-body limit for this route (`Int.max`: no limit); larger → 413.
    public var maxRequestBodyBytes: Int?
    /// While forwarding, the longest time without a byte moving either way (nginx `proxy_read_timeout` /
    /// `proxy_send_timeout` between two reads or writes); nil = no such limit. Exceeded → 504, or a close
    /// once the response has started.
    public var streamIdleTimeout: Duration?
    /// Fields removed from and set on the request sent upstream (after Ferry's own forwarding fields).
    public var requestHeaders: HeaderChanges
    /// The Host sent upstream instead of the received one (Envoy `host_rewrite_literal`).
    public var hostRewrite: String?
    /// `kubectl proxy`'s filter (and Ferry's stricter checks) on requests to this route; nil = none.
    public var requestFilter: RequestFilter?
    /// Put in front of the path sent upstream, after `rewrite` and the filter (`kubectl proxy --append-server-path`).
    public var upstreamPathPrefix: String?
    /// The upstream is a Kubernetes API server: each request is read as one (verb, resource, namespace) for
    /// the access log and `kubernetesPolicy`.
    public var kubernetesAPI = false
    /// Clients must authenticate (401 otherwise); nil: anyone may use the route.
    public var clientAuthentication: ClientAuthentication?
    /// What each client may do through the route (403 otherwise); nil: everything the filter lets through.
    public var kubernetesPolicy: KubernetesPolicy?
    /// Fields set on responses to this route (a received field of the same name is replaced), as Envoy's
    /// `response_headers_to_add`; ingress-nginx's `Strict-Transport-Security`.
    public var responseHeaders: [ResponseHeader] = []
    /// What the upstream is told about the connection's client certificate.
    public var clientCertificateHeaders: ClientCertificateHeaders = .none

    public init(
        name: String,
        match: RouteMatch,
        action: RouteAction,
        timeout: Duration = .seconds(15),
        retries: RetryPolicy = RetryPolicy(),
        rewrite: PathRewrite? = nil,
        allowedSources: [IPRange] = [],
        maxRequestBodyBytes: Int? = nil,
        streamIdleTimeout: Duration? = nil,
        requestHeaders: HeaderChanges = HeaderChanges(),
        hostRewrite: String? = nil,
        requestFilter: RequestFilter? = nil,
        upstreamPathPrefix: String? = nil
    ) {
        self.requestHeaders = requestHeaders
        self.hostRewrite = hostRewrite
        self.requestFilter = requestFilter
        self.upstreamPathPrefix = upstreamPathPrefix
        self.streamIdleTimeout = streamIdleTimeout
        self.name = name
        self.match = match
        self.action = action
        self.timeout = timeout
        self.retries = retries
        self.rewrite = rewrite
        self.allowedSources = allowedSources
        self.maxRequestBodyBytes = maxRequestBodyBytes
    }

    /// Whether a client at `address` may use the route.
    public func allowsSource(_ address: IPAddress?) -> Bool {
        if allowedSources.isEmpty { return true }
        guard let address else { return false }
        return allowedSources.contains { $0.contains(address) }
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey {
            case name, match, action, timeout, retries, rewrite
            case allowedSources = "allow_sources", maxRequestBodyBytes = "max_request_body"
            case streamIdleTimeout = "stream_idle_timeout"
            case requestHeaders = "request_headers", hostRewrite = "host_rewrite", requestFilter = "request_filter"
            case upstreamPathPrefix = "upstream_path_prefix"
            case kubernetesAPI = "kubernetes_api", clientAuthentication = "client_authentication", kubernetesPolicy = "kubernetes_policy"
            case responseHeaders = "response_headers", clientCertificateHeaders = "client_certificate_headers"
        }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(name, forKey: .name)
        try c.encode(match, forKey: .match)
        try c.encode(action, forKey: .action)
        try c.encode(DurationText(timeout), forKey: .timeout)
        try c.encode(retries, forKey: .retries)
        try c.encodeIfPresent(rewrite, forKey: .rewrite)
        if !allowedSources.isEmpty { try c.encode(allowedSources, forKey: .allowedSources) }
        if let max = maxRequestBodyBytes { try c.encode(max == Int.max ? "unlimited" : String(max), forKey: .maxRequestBodyBytes) }
        if let idle = streamIdleTimeout { try c.encode(DurationText(idle), forKey: .streamIdleTimeout) }
        if !requestHeaders.isEmpty { try c.encode(requestHeaders, forKey: .requestHeaders) }
        try c.encodeIfPresent(hostRewrite, forKey: .hostRewrite)
        try c.encodeIfPresent(requestFilter, forKey: .requestFilter)
        try c.encodeIfPresent(upstreamPathPrefix, forKey: .upstreamPathPrefix)
        if kubernetesAPI { try c.encode(true, forKey: .kubernetesAPI) }
        try c.encodeIfPresent(clientAuthentication, forKey: .clientAuthentication)
        try c.encodeIfPresent(kubernetesPolicy?.rules, forKey: .kubernetesPolicy)
        if !responseHeaders.isEmpty { try c.encode(responseHeaders, forKey: .responseHeaders) }
        if clientCertificateHeaders != .none { try c.encode(clientCertificateHeaders, forKey: .clientCertificateHeaders) }
    }
}

/// A field Ferry sets on a route's responses.
public struct ResponseHeader: Sendable, Hashable, Encodable {
    /// Lower-case.
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name.lowercased()
        self.value = value
    }
}

public struct RouteMatch: Sendable, Encodable {
    public var path: PathMatch
    /// Upper-case method names; empty = any method.
    public var methods: [String]
    public var headers: [HeaderMatch]
    public var cookies: [CookieMatch]

    public init(path: PathMatch, methods: [String] = [], headers: [HeaderMatch] = [], cookies: [CookieMatch] = []) {
        self.path = path
        self.methods = methods
        self.headers = headers
        self.cookies = cookies
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case path, methods, headers, cookies }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(path, forKey: .path)
        if !methods.isEmpty { try c.encode(methods, forKey: .methods) }
        if !headers.isEmpty { try c.encode(headers, forKey: .headers) }
        if !cookies.isEmpty { try c.encode(cookies, forKey: .cookies) }
    }
}

/// A cookie whose value must equal `value` (names are case-sensitive, as in RFC 6265).
public struct CookieMatch: Sendable, Encodable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// The value of cookie `name` in a `Cookie` header (`a=1; b=2`), or nil.
    public static func value(of name: String, inCookieHeader header: String?) -> Substring? {
        guard let header else { return nil }
        for pair in header.split(separator: ";") {
            let trimmed = pair.drop { $0 == " " }
            guard let eq = trimmed.firstIndex(of: "=") else { continue }
            if trimmed[..<eq] == name { return trimmed[trimmed.index(after: eq)...] }
        }
        return nil
    }
}

/// Path matching. `prefix` is segment-wise (Ingress `Prefix`, Gateway `PathPrefix`): `/foo` matches `/foo`,
/// `/foo/` and `/foo/bar`, never `/foobar`; a trailing slash on either side is ignored.
public enum PathMatch: Sendable, Encodable, CustomStringConvertible {
    case exact(String)
    case prefix(String)
    case regex(CompiledRegex)
    /// The expression found at the start of the path (nginx `location ~ ^…`): ingress-nginx `use-regex`.
    case regexPrefix(CompiledRegex)
    /// The path starts with these characters, segment boundaries or not (Envoy's `prefix`: `/api` matches
    /// `/apix`), unlike `prefix`, which compares whole segments (Kubernetes Ingress).
    case stringPrefix(String)

    public func matches(_ path: Substring) -> Bool {
        switch self {
        case .exact(let expected):
            return path.utf8.elementsEqual(expected.utf8)
        case .prefix(let prefix):
            return PathMatch.segmentPrefix(prefix, matches: path)
        case .regex(let regex):
            return regex.wholeMatch(path)
        case .regexPrefix(let regex):
            return regex.matchesPrefix(path)
        case .stringPrefix(let prefix):
            return path.utf8.starts(with: prefix.utf8)
        }
    }

    /// Element-wise prefix match of `/`-separated segments (Kubernetes Ingress rules), on bytes:
    /// paths are compared exactly, without Unicode normalisation.
    static func segmentPrefix(_ prefix: String, matches path: Substring) -> Bool {
        let p = prefix.utf8
        var length = p.count
        while length > 0, p[p.index(p.startIndex, offsetBy: length - 1)] == UInt8(ascii: "/") { length -= 1 }
        if length == 0 { return true }  // "/" matches everything
        let bytes = path.utf8
        guard bytes.count >= length, bytes.prefix(length).elementsEqual(p.prefix(length)) else { return false }
        if bytes.count == length { return true }
        return bytes[bytes.index(bytes.startIndex, offsetBy: length)] == UInt8(ascii: "/")
    }

    public var description: String {
        switch self {
        case .exact(let p): "exact \(p)"
        case .prefix(let p): "prefix \(p)"
        case .regex(let r): "regex \(r.pattern)"
        case .regexPrefix(let r): "regex prefix \(r.pattern)"
        case .stringPrefix(let p): "string prefix \(p)"
        }
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case exact, prefix, regex, regexPrefix = "regex_prefix", stringPrefix = "string_prefix" }
        var c = encoder.container(keyedBy: K.self)
        switch self {
        case .exact(let p): try c.encode(p, forKey: .exact)
        case .prefix(let p): try c.encode(p, forKey: .prefix)
        case .regex(let r): try c.encode(r.pattern, forKey: .regex)
        case .regexPrefix(let r): try c.encode(r.pattern, forKey: .regexPrefix)
        case .stringPrefix(let p): try c.encode(p, forKey: .stringPrefix)
        }
    }
}

public struct HeaderMatch: Sendable, Encodable {
    public enum Condition: Sendable {
        case exact(String)
        case present
        case regex(CompiledRegex)
    }
    /// Lower-case field name.
    public var name: String
    public var condition: Condition

    public init(name: String, condition: Condition) {
        self.name = name.lowercased()
        self.condition = condition
    }

    public func matches(_ value: String?) -> Bool {
        guard let value else { return false }
        switch condition {
        case .present: return true
        case .exact(let expected): return value == expected
        case .regex(let regex): return regex.wholeMatch(Substring(value))
        }
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case name, exact, present, regex }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(name, forKey: .name)
        switch condition {
        case .exact(let v): try c.encode(v, forKey: .exact)
        case .present: try c.encode(true, forKey: .present)
        case .regex(let r): try c.encode(r.pattern, forKey: .regex)
        }
    }
}

/// What a matched route does.
public enum RouteAction: Sendable, Encodable {
    case forward([WeightedCluster])
    case redirect(Redirect)
    case directResponse(status: Int, body: String)
    /// Files from a folder (`kubectl proxy --www`).
    case staticFiles(StaticFiles)

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case forward, redirect, directResponse = "direct_response", staticFiles = "static_files" }
        enum D: String, CodingKey { case status, body }
        var c = encoder.container(keyedBy: K.self)
        switch self {
        case .forward(let clusters): try c.encode(clusters, forKey: .forward)
        case .redirect(let r): try c.encode(r, forKey: .redirect)
        case .directResponse(let status, let body):
            var d = c.nestedContainer(keyedBy: D.self, forKey: .directResponse)
            try d.encode(status, forKey: .status)
            try d.encode(body, forKey: .body)
        case .staticFiles(let files): try c.encode(files, forKey: .staticFiles)
        }
    }
}

public struct WeightedCluster: Sendable, Encodable, Hashable {
    public var name: String
    public var weight: Int
    public init(name: String, weight: Int = 1) {
        self.name = name
        self.weight = weight
    }
}

/// A redirect: each part that is set replaces that part of the request URL.
public struct Redirect: Sendable, Encodable, Hashable {
    /// A whole Location that replaces the request URL (ingress-nginx `permanent-redirect`); the parts below are unused then.
    public var url: String?
    public var scheme: String?
    public var host: String?
    public var port: Int?
    public var path: String?
    public var status: Int
    /// Drop a trailing `/` of the request's URI (path and query) when it is kept (ingress-nginx's HTTPS
    /// redirect, unless `preserve-trailing-slash`).
    public var stripTrailingSlash: Bool

    public init(url: String? = nil, scheme: String? = nil, host: String? = nil, port: Int? = nil, path: String? = nil, status: Int = 301, stripTrailingSlash: Bool = false) {
        self.url = url
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.status = status
        self.stripTrailingSlash = stripTrailingSlash
    }

    /// ingress-nginx's redirect of plain HTTP to HTTPS: the same host without its port, the request's URI
    /// without a trailing `/` unless `preserveTrailingSlash`.
    public static func toHTTPS(status: Int = 308, preserveTrailingSlash: Bool = false) -> Redirect {
        Redirect(scheme: "https", port: 443, status: status, stripTrailingSlash: !preserveTrailingSlash)
    }

    enum CodingKeys: String, CodingKey {
        case url, scheme, host, port, path, status, stripTrailingSlash = "strip_trailing_slash"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(url, forKey: .url)
        try c.encodeIfPresent(scheme, forKey: .scheme)
        try c.encodeIfPresent(host, forKey: .host)
        try c.encodeIfPresent(port, forKey: .port)
        try c.encodeIfPresent(path, forKey: .path)
        try c.encode(status, forKey: .status)
        if stripTrailingSlash { try c.encode(true, forKey: .stripTrailingSlash) }
    }

    /// The Location for a request to `host` (as received, maybe with port) and `pathAndQuery`.
    public func location(requestHost: String, requestPathAndQuery: String, requestScheme: String = "http") -> String {
        if let url { return url }
        let scheme = self.scheme ?? requestScheme
        var hostPart: String
        if let host = self.host {
            hostPart = host
        } else {
            hostPart = requestHost
            if port != nil, let colon = hostPart.lastIndex(of: ":"), !hostPart.hasSuffix("]") {
                hostPart = String(hostPart[..<colon])
            }
        }
        if let port {
            let isDefault = (scheme == "http" && port == 80) || (scheme == "https" && port == 443)
            if !isDefault { hostPart += ":\(port)" }
        }
        var uri = path ?? requestPathAndQuery
        if path == nil, stripTrailingSlash, uri.hasSuffix("/") { uri.removeLast() }
        return "\(scheme)://\(hostPart)\(uri)"
    }
}

/// When to try a request again, on another endpoint where one exists.
public struct RetryPolicy: Sendable, Encodable, Hashable {
    public enum Condition: Sendable, Hashable, Encodable, CustomStringConvertible {
        /// The connection to the endpoint could not be made (the request never left Ferry).
        case connectFailure
        /// The upstream closed or reset before a response head arrived.
        case reset
        /// Any 5xx response head.
        case anyServerError
        /// This exact status.
        case status(Int)

        public var description: String {
            switch self {
            case .connectFailure: "connect-failure"
            case .reset: "reset"
            case .anyServerError: "5xx"
            case .status(let s): String(s)
            }
        }

        public static func parse(_ text: String) -> Condition? {
            switch text {
            case "connect-failure": return .connectFailure
            case "reset": return .reset
            case "5xx": return .anyServerError
            default:
                guard text.count == 3, let s = Int(text), (500...599).contains(s) else { return nil }
                return .status(s)
            }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(description)
        }
    }

    /// Further attempts after the first (0 = none beyond the built-in connect-failure retry).
    public var attempts: Int
    public var on: [Condition]

    /// The default retries only what never reached an upstream: a failed connect, once on another endpoint.
    public init(attempts: Int = 1, on: [Condition] = [.connectFailure]) {
        self.attempts = attempts
        self.on = on
    }

    public func retries(_ condition: Condition) -> Bool {
        on.contains(condition)
    }

    /// Whether some response status may be retried under this policy (checked before `retries(status:)`
    /// on every response head).
    public var retriesOnSomeStatus: Bool {
        on.contains { if case .status = $0 { true } else { $0 == .anyServerError } }
    }

    /// Whether a response with `status` may be retried under this policy.
    public func retries(status: Int) -> Bool {
        on.contains(.status(status)) || ((500...599).contains(status) && on.contains(.anyServerError))
    }
}
