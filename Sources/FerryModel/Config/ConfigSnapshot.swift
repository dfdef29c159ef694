/// One validated, immutable, versioned view of the whole configuration: the only thing that is ever swapped.
public struct ConfigSnapshot: Sendable, Encodable {
    public var version: Int
    /// Where the configuration came from (a file path, `demo`, ...), for diagnostics and `/config_dump`.
    public var source: String
    public var admin: AdminSettings?
    public var accessLog: AccessLogSettings
    public var drainTimeout: Duration
    public var listeners: [Listener]
    public var clusters: [Cluster]
    /// Problems the source reported without refusing the configuration (a missing Service, an ignored
    /// annotation), each once; shown in `/config_dump` and logged when the configuration is applied.
    public var notes: [String] = []

    public init(
        version: Int = 1,
        source: String = "",
        admin: AdminSettings? = AdminSettings(),
        accessLog: AccessLogSettings = AccessLogSettings(),
        drainTimeout: Duration = .seconds(25),
        listeners: [Listener],
        clusters: [Cluster]
    ) {
        self.version = version
        self.source = source
        self.admin = admin
        self.accessLog = accessLog
        self.drainTimeout = drainTimeout
        self.listeners = listeners
        self.clusters = clusters
    }

    public func cluster(named name: String) -> Cluster? {
        clusters.first { $0.name == name }
    }

    enum CodingKeys: String, CodingKey {
        case version, source, admin, accessLog = "access_log", drainTimeout = "drain_timeout", listeners, clusters, notes
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(source, forKey: .source)
        try c.encodeIfPresent(admin, forKey: .admin)
        try c.encode(accessLog, forKey: .accessLog)
        try c.encode(DurationText(drainTimeout), forKey: .drainTimeout)
        try c.encode(listeners, forKey: .listeners)
        try c.encode(clusters, forKey: .clusters)
        if !notes.isEmpty { try c.encode(notes, forKey: .notes) }
    }
}

public struct AdminSettings: Sendable, Encodable, Hashable {
    public var address: HostPort
    public init(address: HostPort = HostPort(host: "127.0.0.1", port: 9901)) {
        self.address = address
    }
}

public struct AccessLogSettings: Sendable, Encodable, Hashable {
    public enum Format: String, Sendable, Encodable, CaseIterable {
        case json, envoy, combined, squid, none
    }
    public var format: Format
    public init(format: Format = .json) {
        self.format = format
    }
}
