/// A named set of endpoints and how to pick one of them.
public struct Cluster: Sendable, Encodable {
    public var name: String
    public var endpoints: [HostPort]
    public var loadBalancing: LoadBalancingPolicy
    public var connectTimeout: Duration

    public init(
        name: String,
        endpoints: [HostPort],
        loadBalancing: LoadBalancingPolicy = .roundRobin,
        connectTimeout: Duration = .seconds(5)
    ) {
        self.name = name
        self.endpoints = endpoints
        self.loadBalancing = loadBalancing
        self.connectTimeout = connectTimeout
    }

    enum CodingKeys: String, CodingKey {
        case name, endpoints, loadBalancing = "load_balancing", connectTimeout = "connect_timeout"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(endpoints, forKey: .endpoints)
        try c.encode(loadBalancing.description, forKey: .loadBalancing)
        try c.encode(DurationText(connectTimeout), forKey: .connectTimeout)
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
