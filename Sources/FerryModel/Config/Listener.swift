/// An address Ferry accepts connections on, and what it does with them.
public struct Listener: Sendable, Encodable {
    public var name: String
    public var address: HostPort
    public var http: HTTPConnectionManager

    public init(name: String, address: HostPort, http: HTTPConnectionManager) {
        self.name = name
        self.address = address
        self.http = http
    }
}

/// The HTTP terminal action of a listener: limits, timeouts and the route table.
public struct HTTPConnectionManager: Sendable, Encodable {
    public var limits: HTTPLimits
    public var timeouts: HTTPTimeouts
    public var virtualHosts: [VirtualHost]

    public init(limits: HTTPLimits = HTTPLimits(), timeouts: HTTPTimeouts = HTTPTimeouts(), virtualHosts: [VirtualHost]) {
        self.limits = limits
        self.timeouts = timeouts
        self.virtualHosts = virtualHosts
    }

    enum CodingKeys: String, CodingKey {
        case limits, timeouts, virtualHosts = "virtual_hosts"
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

    public init() {}

    enum CodingKeys: String, CodingKey {
        case maxRequestLineBytes = "max_request_line"
        case maxHeaderBytes = "max_header_bytes"
        case maxHeaderCount = "max_headers"
        case maxRequestsPerConnection = "max_requests_per_connection"
        case maxRequestBodyBytes = "max_request_body"
        case maxConnections = "max_connections"
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
