import FerryModel

/// v1 Service: what an Ingress backend and a service proxy need.
public struct Service: Sendable {
    public var metadata: ObjectMeta
    public var origin: ManifestOrigin?
    /// ClusterIP, NodePort, LoadBalancer or ExternalName.
    public var type: String
    public var ports: [ServicePort]
    public var externalName: String?
    /// `spec.clusterIP` (`None` for a headless Service, nil when not allocated).
    public var clusterIP: String?
    /// `spec.clusterIPs`: one address per IP family of a dual-stack Service (the first is `clusterIP`).
    public var clusterIPs: [String] = []
    public var externalIPs: [String] = []
    /// `status.loadBalancer.ingress[].ip`.
    public var loadBalancerIPs: [String] = []
    /// `status.loadBalancer.ingress`, hostnames included (what an Ingress controller publishes).
    public var loadBalancer: [LoadBalancerAddress] = []
    public var loadBalancerSourceRanges: [String] = []
    /// `ClientIP` or `None`.
    public var sessionAffinity = "None"
    /// `sessionAffinityConfig.clientIP.timeoutSeconds` (Kubernetes' default 10800).
    public var sessionAffinityTimeoutSeconds = 10800
    /// `Cluster` or `Local`.
    public var internalTrafficPolicy = "Cluster"
    public var externalTrafficPolicy = "Cluster"
    public var healthCheckNodePort: Int?
    public var publishNotReadyAddresses = false

    public init(metadata: ObjectMeta, origin: ManifestOrigin? = nil, type: String = "ClusterIP", ports: [ServicePort], externalName: String? = nil) {
        self.metadata = metadata
        self.origin = origin
        self.type = type
        self.ports = ports
        self.externalName = externalName
    }
}

public struct ServicePort: Sendable, Hashable {
    public var name: String?
    public var port: Int
    public var targetPort: ServicePortReference?
    public var `protocol`: String
    public var nodePort: Int?

    public init(name: String? = nil, port: Int, targetPort: ServicePortReference? = nil, protocol: String = "TCP") {
        self.name = name
        self.port = port
        self.targetPort = targetPort
        self.protocol = `protocol`
    }
}

/// discovery.k8s.io/v1 EndpointSlice.
public struct EndpointSlice: Sendable {
    public var metadata: ObjectMeta
    public var origin: ManifestOrigin?
    /// IPv4, IPv6 or FQDN.
    public var addressType: String
    public var endpoints: [SliceEndpoint]
    public var ports: [EndpointPort]

    public init(metadata: ObjectMeta, origin: ManifestOrigin? = nil, addressType: String = "IPv4", endpoints: [SliceEndpoint], ports: [EndpointPort]) {
        self.metadata = metadata
        self.origin = origin
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }

    /// The Service it belongs to: label `kubernetes.io/service-name`.
    public var serviceName: String? { metadata.labels["kubernetes.io/service-name"] }
}

public struct SliceEndpoint: Sendable, Hashable {
    public var addresses: [String]
    /// The node the endpoint runs on (for `Local` traffic policies).
    public var nodeName: String?
    /// Nil means unknown, which Kubernetes says to read as ready (and as serving).
    public var ready: Bool?
    public var serving: Bool?
    public var terminating: Bool?

    public init(addresses: [String], ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil) {
        self.addresses = addresses
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
    }

    public var isReady: Bool { ready ?? true }
    public var isServing: Bool { serving ?? ready ?? true }
    public var isTerminating: Bool { terminating ?? false }
}

public struct EndpointPort: Sendable, Hashable {
    public var name: String?
    public var port: Int?
    public var `protocol`: String

    public init(name: String? = nil, port: Int?, protocol: String = "TCP") {
        self.name = name
        self.port = port
        self.protocol = `protocol`
    }
}

/// v1 Secret: its type and key names, and the values of the keys TLS serving reads (`tls.crt`, `tls.key`,
/// `ca.crt`), decoded from base64; other values are never kept.
public struct Secret: Sendable {
    public var metadata: ObjectMeta
    public var origin: ManifestOrigin?
    public var type: String
    public var keys: [String]
    /// `tls.crt`, `tls.key`, `ca.crt` → their text; a value that is not base64 of UTF-8 text is absent here
    /// (and named in `undecodable`).
    public var tlsValues: [String: String] = [:]
    public var undecodable: [String] = []

    /// The keys whose values are kept.
    public static let tlsKeys: Set<String> = ["tls.crt", "tls.key", "ca.crt"]

    public init(metadata: ObjectMeta, origin: ManifestOrigin? = nil, type: String, keys: [String], tlsValues: [String: String] = [:]) {
        self.metadata = metadata
        self.origin = origin
        self.type = type
        self.keys = keys
        self.tlsValues = tlsValues
    }
}

/// `networking.k8s.io/v1` ServiceCIDR: ranges ClusterIPs are allocated from. kube-proxy drops traffic to an
/// address in them that no Service holds (nftables mode).
public struct ServiceCIDR: Sendable {
    public var metadata: ObjectMeta
    public var cidrs: [IPRange]
}
