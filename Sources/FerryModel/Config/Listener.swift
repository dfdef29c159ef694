/// An address Ferry accepts connections on, and what it does with them.
public struct Listener: Sendable, Encodable {
    public var name: String
    public var address: HostPort
    /// A Unix socket path to listen on instead of `address` (`kubectl proxy --unix-socket`): a stale socket
    /// file is replaced, and the new one is readable and writable by its owner only.
    public var unixSocket: String?
    /// TLS on accepted connections; nil: plain HTTP.
    public var tls: DownstreamTLS?
    public var http: HTTPConnectionManager
    /// Set on an L4 listener: each accepted TCP connection is glued to one endpoint of the cluster (`http`
    /// is then unused).
    public var tcpProxy: TCPProxySettings?
    /// Set on a UDP listener: datagrams of each client address go to one endpoint of the cluster (a session),
    /// and the endpoint's answers come back to that client.
    public var udpProxy: UDPProxySettings?
    /// Set on a forward-proxy listener that takes connections the kernel redirected (transparent capture)
    /// instead of requests addressed to a proxy.
    public var intercept: InterceptSettings?

    public init(name: String, address: HostPort, unixSocket: String? = nil, http: HTTPConnectionManager) {
        self.name = name
        self.address = address
        self.unixSocket = unixSocket
        self.http = http
    }

    /// Where it listens, as written in logs: `host:port` or the socket path.
    public var endpoint: String { unixSocket ?? address.description }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case name, address, unixSocket = "unix_socket", tls, http, tcpProxy = "tcp_proxy", udpProxy = "udp_proxy", intercept }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(name, forKey: .name)
        if let unixSocket { try c.encode(unixSocket, forKey: .unixSocket) } else { try c.encode(address, forKey: .address) }
        try c.encodeIfPresent(tls, forKey: .tls)
        try c.encodeIfPresent(intercept, forKey: .intercept)
        if let tcpProxy {
            try c.encode(tcpProxy, forKey: .tcpProxy)
        } else if let udpProxy {
            try c.encode(udpProxy, forKey: .udpProxy)
        } else {
            try c.encode(http, forKey: .http)
        }
    }
}

/// The HTTP terminal action of a listener: limits, timeouts and the route table.
public struct HTTPConnectionManager: Sendable, Encodable {
    public var limits: HTTPLimits
    public var timeouts: HTTPTimeouts
    public var virtualHosts: [VirtualHost]
    /// Set on a forward-proxy listener: absolute-form requests and CONNECT go where the client asks,
    /// when the policy allows; origin-form requests are refused with a hint.
    public var forwardProxy: ForwardProxySettings?
    /// How request paths are canonicalised before anything routes or checks them (origin-form requests).
    public var pathNormalization = PathNormalization()
    /// Whose forwarding fields are believed (default: nobody's; Ferry is the edge).
    public var forwardedTrust = ForwardedTrust()
    /// The protocols a request may upgrade to (default: `websocket`).
    public var upgradeProtocols = UpgradeProtocols()
    /// HTTP/2 to clients: offered by ALPN on TLS listeners, by prior knowledge on cleartext ones when asked.
    public var http2 = DownstreamHTTP2()

    public init(limits: HTTPLimits = HTTPLimits(), timeouts: HTTPTimeouts = HTTPTimeouts(), virtualHosts: [VirtualHost], forwardProxy: ForwardProxySettings? = nil) {
        self.limits = limits
        self.timeouts = timeouts
        self.virtualHosts = virtualHosts
        self.forwardProxy = forwardProxy
    }

    enum CodingKeys: String, CodingKey {
        case limits, timeouts, virtualHosts = "virtual_hosts", forwardProxy = "forward_proxy"
        case pathNormalization = "normalize_path", forwardedTrust = "forwarded", upgradeProtocols = "upgrade_protocols"
        case http2
    }
}

/// How a forward-proxy listener decides and reaches destinations.
public struct ForwardProxySettings: Sendable, Encodable {
    public var policy: AccessPolicy
    /// Names answered without DNS (an `/etc/hosts`-format file), consulted first.
    public var hosts: [String: [IPAddress]]
    public var connectTimeout: Duration
    /// Parent proxies, first match wins; requests that match none go direct.
    public var upstreamProxies: [UpstreamProxyRule]
    /// When set, every request must carry `Proxy-Authorization: Basic` for one of these users (else 407).
    public var users: ProxyUsers?
    /// The Pods behind client addresses (a watch of the Kubernetes API), for rules that select namespaces
    /// or Pod labels and for the audit line; nil: sources are addresses only.
    public var sourceIdentities: (any SourceIdentityLookup)?
    /// `watch_pods: true` in YAML: `ferry run` watches the cluster's Pods and sets `sourceIdentities`.
    public var watchPods = false

    public init(policy: AccessPolicy, hosts: [String: [IPAddress]] = [:], connectTimeout: Duration = .seconds(5), upstreamProxies: [UpstreamProxyRule] = [], users: ProxyUsers? = nil) {
        self.users = users
        self.policy = policy
        self.hosts = hosts
        self.connectTimeout = connectTimeout
        self.upstreamProxies = upstreamProxies
    }

    /// The parent proxy for `host`, or nil to go direct.
    public func upstreamProxy(for host: HostName) -> HostPort? {
        for rule in upstreamProxies {
            if rule.domains.isEmpty { return rule.proxy }
            if case .name(let n) = host, rule.domains.contains(where: { $0.matches(n) }) { return rule.proxy }
        }
        return nil
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case policy, hosts, connectTimeout = "connect_timeout", upstreamProxies = "upstream_proxies", users, watchPods = "watch_pods" }
        var c = encoder.container(keyedBy: K.self)
        if watchPods { try c.encode(true, forKey: .watchPods) }
        if let users { try c.encode(users.users.keys.sorted(), forKey: .users) }
        try c.encode(policy, forKey: .policy)
        if !upstreamProxies.isEmpty { try c.encode(upstreamProxies.map(\.description), forKey: .upstreamProxies) }
        try c.encode(hosts.mapValues { $0.map(\.description) }, forKey: .hosts)
        try c.encode(DurationText(connectTimeout), forKey: .connectTimeout)
    }

    /// Parses `/etc/hosts` text: `ADDRESS NAME [ALIAS...]`, `#` comments. Names are normalised; bad lines are
    /// returned as (line number, message).
    public static func parseHosts(_ text: String) -> (hosts: [String: [IPAddress]], problems: [(Int, String)]) {
        var hosts: [String: [IPAddress]] = [:]
        var problems: [(Int, String)] = []
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = fields.first else { continue }
            guard let address = IPAddress(parsing: first) else {
                problems.append((index + 1, "\"\(first)\" is not an IP address"))
                continue
            }
            if fields.count < 2 { problems.append((index + 1, "an address needs at least one name")) }
            for name in fields.dropFirst() {
                guard case .name(let n)? = HostName(normalising: String(name)) else {
                    problems.append((index + 1, "\"\(name)\" is not a host name"))
                    continue
                }
                hosts[n, default: []].append(address.unmappingIPv4)
            }
        }
        return (hosts, problems)
    }
}

/// Sizes a downstream peer controls. Defaults follow `reliability.md` §3.
public struct HTTPLimits: Sendable, Encodable, Hashable {
    /// Longest request line (method, target, version); longer → 414.
    public var maxRequestLineBytes: Int = 16 * 1024
    /// Largest header block; larger → 431.
    public var maxHeaderBytes: Int = 64 * 1024
    /// Most header fields; more → 431.
    public var maxHeaderCount: Int = 100
    /// Requests served on one downstream connection before it is closed.
    public var maxRequestsPerConnection: Int = 1000
    /// Largest request body; larger → 413. `nil` = unlimited (bodies stream).
    public var maxRequestBodyBytes: Int? = nil
    /// Open downstream connections per listener; a connection beyond it gets 503 and is closed.
    public var maxConnections: Int = 10_000
    /// Longest chunk-size line (size and extensions) of a chunked request body; longer → 400 and close.
    public var maxChunkLineBytes: Int = 4096

    public init() {}

    enum CodingKeys: String, CodingKey {
        case maxRequestLineBytes = "max_request_line"
        case maxHeaderBytes = "max_header_bytes"
        case maxHeaderCount = "max_headers"
        case maxRequestsPerConnection = "max_requests_per_connection"
        case maxRequestBodyBytes = "max_request_body"
        case maxConnections = "max_connections"
        case maxChunkLineBytes = "max_chunk_line"
    }
}

/// Downstream deadlines.
public struct HTTPTimeouts: Sendable, Encodable, Hashable {
    /// From the first byte of a request until its header block is complete; late → 408.
    public var requestHeaders: Duration = .seconds(30)
    /// An idle keep-alive connection is closed after this long.
    public var idle: Duration = .seconds(60)

    public init() {}

    enum CodingKeys: String, CodingKey {
        case requestHeaders = "request_headers", idle
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(DurationText(requestHeaders), forKey: .requestHeaders)
        try c.encode(DurationText(idle), forKey: .idle)
    }
}

/// `[DOMAIN=]URL`: send requests for DOMAIN (all when absent) through the parent proxy at URL
/// (`http://host:port`), or direct with `none`.
public struct UpstreamProxyRule: Sendable, Hashable, CustomStringConvertible {
    public var domains: [DomainMatcher]
    /// Nil: go direct.
    public var proxy: HostPort?

    public init(domains: [DomainMatcher], proxy: HostPort?) {
        self.domains = domains
        self.proxy = proxy
    }

    /// Parses `http://corp:3128`, `.example.com=http://corp:3128` or `.internal.example=none`.
    public static func parse(_ text: String) -> Result<UpstreamProxyRule, AccessRuleError> {
        var domains: [DomainMatcher] = []
        var target = Substring(text)
        if let eq = text.firstIndex(of: "="), !text[..<eq].contains("://") {
            for d in text[..<eq].split(separator: ",") {
                guard let m = DomainMatcher.parse(String(d)) else { return .failure(AccessRuleError(text, "\"\(d)\" is not a domain (example.com, .example.com, *.example.com)")) }
                domains.append(m)
            }
            target = text[text.index(after: eq)...]
        }
        if target == "none" { return .success(UpstreamProxyRule(domains: domains, proxy: nil)) }
        var rest = target
        if rest.hasPrefix("http://") { rest = rest.dropFirst(7) } else if rest.contains("://") {
            return .failure(AccessRuleError(text, "a parent proxy is reached over http://, as http://proxy.corp:3128"))
        }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let hp = HostPort(parsing: String(rest)), hp.port > 0 else {
            return .failure(AccessRuleError(text, "expected http://HOST:PORT (or none)"))
        }
        return .success(UpstreamProxyRule(domains: domains, proxy: hp))
    }

    public var description: String {
        let target = proxy.map { "http://\($0)" } ?? "none"
        return domains.isEmpty ? target : domains.map(\.description).joined(separator: ",") + "=" + target
    }
}

/// The TCP proxy terminal action of a listener (Envoy `tcp_proxy`, nginx `stream`).
public struct TCPProxySettings: Sendable, Hashable, Encodable {
    public var cluster: String

    public init(cluster: String) {
        self.cluster = cluster
    }
}

/// The UDP proxy terminal action of a listener: a session per client address, expired when idle, in a
/// bounded table.
public struct UDPProxySettings: Sendable, Hashable, Encodable {
    public var cluster: String
    /// A session with no datagram either way for this long is forgotten.
    public var idleTimeout: Duration
    /// At most this many sessions; datagrams of new clients beyond it are dropped.
    public var maxSessions: Int

    public init(cluster: String, idleTimeout: Duration = .seconds(30), maxSessions: Int = 10_000) {
        self.cluster = cluster
        self.idleTimeout = idleTimeout
        self.maxSessions = maxSessions
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case cluster, idleTimeout = "idle_timeout", maxSessions = "max_sessions" }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(cluster, forKey: .cluster)
        try c.encode(DurationText(idleTimeout), forKey: .idleTimeout)
        try c.encode(maxSessions, forKey: .maxSessions)
    }
}

/// HTTP/2 to clients (RFC 9113) and its limits. Each stream is one exchange, served by the same routing and
/// proxying as an HTTP/1.1 request.
public struct DownstreamHTTP2: Sendable, Hashable, Encodable {
    /// Offer `h2` by ALPN on TLS listeners (ingress-nginx `use-http2`, default on).
    public var enabled = true
    /// On a cleartext listener, accept HTTP/2 from clients that start with its connection preface (h2c with
    /// prior knowledge). The `Upgrade: h2c` dance stays refused.
    public var priorKnowledge = false
    /// SETTINGS_MAX_CONCURRENT_STREAMS (nginx: 128).
    public var maxConcurrentStreams = 128
    /// SETTINGS_MAX_HEADER_LIST_SIZE, decoded bytes with RFC 7541's 32 per field (nginx's budget: 32 KiB).
    public var maxHeaderListSize = 32 * 1024
    /// RST_STREAM frames a client may send per 30 s before the connection is closed with GOAWAY
    /// ENHANCE_YOUR_CALM (the rapid-reset defence).
    public var maxResetsPer30s = 200

    public init() {}

    enum CodingKeys: String, CodingKey {
        case enabled, priorKnowledge = "prior_knowledge", maxConcurrentStreams = "max_concurrent_streams"
        case maxHeaderListSize = "max_header_list_size", maxResetsPer30s = "max_resets_per_30s"
    }
}
