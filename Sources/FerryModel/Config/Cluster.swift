/// A named set of endpoints and how to pick one of them.
public struct Cluster: Sendable, Encodable {
    public var name: String
    public var endpoints: [HostPort]
    public var loadBalancing: LoadBalancingPolicy
    public var connectTimeout: Duration
    /// TLS to the endpoints; nil: plain TCP.
    public var tls: UpstreamTLS?
    /// TCP keep-alive probes on upstream connections: idle time before the first and between probes;
    /// nil: the system's default (off).
    public var tcpKeepalive: Duration?
    /// An HTTP proxy to reach the endpoints through, with CONNECT (a kubeconfig's `proxy-url`); the endpoints'
    /// names are then resolved by that proxy, not here.
    public var parentProxy: HostPort?
    /// ClientIP session affinity of L4 listeners (a Service's `sessionAffinity: ClientIP`): a client address
    /// keeps the endpoint it was given while it comes back within this time; nil: none.
    public var sessionAffinity: Duration?
    /// The HTTP version spoken to the endpoints: HTTP/1.1, or HTTP/2 (`h2`: ALPN over TLS, prior knowledge
    /// in the clear), each request one stream on a shared connection (gRPC needs it).
    public var httpProtocol: UpstreamHTTPProtocol = .http1

    public init(
        name: String,
        endpoints: [HostPort],
        loadBalancing: LoadBalancingPolicy = .roundRobin,
        connectTimeout: Duration = .seconds(5),
        tls: UpstreamTLS? = nil
    ) {
        self.tls = tls
        self.name = name
        self.endpoints = endpoints
        self.loadBalancing = loadBalancing
        self.connectTimeout = connectTimeout
    }

    enum CodingKeys: String, CodingKey {
        case name, endpoints, loadBalancing = "load_balancing", connectTimeout = "connect_timeout", tls, tcpKeepalive = "tcp_keepalive", parentProxy = "parent_proxy"
        case sessionAffinity = "session_affinity", httpProtocol = "protocol"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(endpoints, forKey: .endpoints)
        try c.encode(loadBalancing.description, forKey: .loadBalancing)
        try c.encode(DurationText(connectTimeout), forKey: .connectTimeout)
        try c.encodeIfPresent(tls, forKey: .tls)
        try c.encodeIfPresent(tcpKeepalive.map(DurationText.init), forKey: .tcpKeepalive)
        try c.encodeIfPresent(parentProxy, forKey: .parentProxy)
        try c.encodeIfPresent(sessionAffinity.map(DurationText.init), forKey: .sessionAffinity)
        if httpProtocol != .http1 { try c.encode(httpProtocol.rawValue, forKey: .httpProtocol) }
    }
}

/// `protocol:` of a cluster.
public enum UpstreamHTTPProtocol: String, Sendable, Hashable, CaseIterable {
    case http1 = "http1"
    case h2
}

/// How Ferry speaks TLS to a cluster's endpoints.
public struct UpstreamTLS: Sendable, Hashable, Encodable {
    /// PEM file of the CAs to trust; nil: the system's trust roots.
    public var caFile: String?
    /// The same, inline (a kubeconfig's `certificate-authority-data`).
    public var caPEM: [UInt8]?
    /// The name sent as SNI and checked against the certificate; nil: the endpoint's host when it is a name
    /// (for an IP address only the chain is checked).
    public var serverName: String?
    public var insecureSkipVerify: Bool
    public var clientCertificateFile: String?
    public var clientKeyFile: String?
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?

    public init(caFile: String? = nil, caPEM: [UInt8]? = nil, serverName: String? = nil, insecureSkipVerify: Bool = false,
                clientCertificateFile: String? = nil, clientKeyFile: String? = nil, clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil) {
        self.caFile = caFile
        self.caPEM = caPEM
        self.serverName = serverName
        self.insecureSkipVerify = insecureSkipVerify
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case caFile = "ca_file", serverName = "server_name", insecureSkipVerify = "insecure_skip_verify", clientCertificate = "client_certificate" }
        var c = encoder.container(keyedBy: K.self)
        try c.encodeIfPresent(caFile ?? (caPEM != nil ? "(inline)" : nil), forKey: .caFile)
        try c.encodeIfPresent(serverName, forKey: .serverName)
        if insecureSkipVerify { try c.encode(true, forKey: .insecureSkipVerify) }
        if clientCertificateFile != nil || clientCertificatePEM != nil { try c.encode(clientCertificateFile ?? "(inline)", forKey: .clientCertificate) }
    }
}

public enum LoadBalancingPolicy: Sendable, Hashable, CustomStringConvertible {
    case roundRobin
    /// Power of two choices: of two random endpoints, the one with fewer active requests.
    case leastRequest
    case random
    /// Consistent hashing of a request key onto a ring of endpoints.
    case ringHash(RingHashKey)

    public var description: String {
        switch self {
        case .roundRobin: "round_robin"
        case .leastRequest: "least_request"
        case .random: "random"
        case .ringHash(.header(let name)): "ring_hash(header: \(name))"
        case .ringHash(.sourceAddress): "ring_hash(source_address)"
        case .ringHash(.cookie(let name)): "ring_hash(cookie: \(name))"
        case .ringHash(.requestURI): "ring_hash(request_uri)"
        }
    }
}

public enum RingHashKey: Sendable, Hashable {
    /// The value of a request header (lower-case name); requests without it hash like an empty key.
    case header(String)
    /// The downstream client's IP address.
    case sourceAddress
    /// The value of a cookie; requests without it hash like an empty key.
    case cookie(String)
    /// The request target as received (path and query).
    case requestURI
}
