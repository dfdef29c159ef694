/// What a service proxy (kube-proxy's job) serves: each port of each Service with its virtual addresses,
/// policies and endpoints. Built from Services and EndpointSlices by a source (manifests today, the API
/// later); rendered into kernel rules or served by the userspace L4 proxy. Pure values.
public struct ServicePortTable: Sendable, Hashable {
    public var ports: [ProxiedServicePort]

    public init(ports: [ProxiedServicePort]) {
        // kube-proxy iterates a map; Ferry renders in one order (by name, IPv4 first) so that output can be diffed.
        self.ports = ports.sorted { ($0.name, $0.isIPv6 ? 1 : 0) < ($1.name, $1.isIPv6 ? 1 : 0) }
    }
}

public enum TransportProtocol: String, Sendable, Hashable, CaseIterable {
    case tcp, udp, sctp
}

/// One port of one Service in one IP family: `ns/name:portName` (kube-proxy's ServicePortName). A
/// dual-stack Service has an entry per family, each with that family's addresses and endpoints.
public struct ProxiedServicePort: Sendable, Hashable {
    public var namespace: String
    public var service: String
    /// The port's name; empty when the Service has a single unnamed port.
    public var portName: String
    public var `protocol`: TransportProtocol
    public var clusterIP: IPAddress?
    public var port: Int
    public var nodePort: Int?
    public var externalIPs: [IPAddress]
    public var loadBalancerIPs: [IPAddress]
    public var loadBalancerSourceRanges: [IPRange]
    /// `sessionAffinity: ClientIP` with its timeout in seconds (default 10800); nil: none.
    public var affinityTimeoutSeconds: Int?
    public var internalTrafficLocal: Bool
    public var externalTrafficLocal: Bool
    public var healthCheckNodePort: Int?
    /// Endpoints in kube-proxy's order: by `ip:port` as text.
    public var endpoints: [ProxiedEndpoint]

    public init(namespace: String, service: String, portName: String = "", protocol: TransportProtocol = .tcp, clusterIP: IPAddress?, port: Int,
                nodePort: Int? = nil, externalIPs: [IPAddress] = [], loadBalancerIPs: [IPAddress] = [], loadBalancerSourceRanges: [IPRange] = [],
                affinityTimeoutSeconds: Int? = nil, internalTrafficLocal: Bool = false, externalTrafficLocal: Bool = false,
                healthCheckNodePort: Int? = nil, endpoints: [ProxiedEndpoint] = []) {
        self.namespace = namespace
        self.service = service
        self.portName = portName
        self.protocol = `protocol`
        self.clusterIP = clusterIP
        self.port = port
        self.nodePort = nodePort
        self.externalIPs = externalIPs
        self.loadBalancerIPs = loadBalancerIPs
        self.loadBalancerSourceRanges = loadBalancerSourceRanges
        self.affinityTimeoutSeconds = affinityTimeoutSeconds
        self.internalTrafficLocal = internalTrafficLocal
        self.externalTrafficLocal = externalTrafficLocal
        self.healthCheckNodePort = healthCheckNodePort
        self.endpoints = endpoints.sorted { $0.hostPort < $1.hostPort }
    }

    /// `ns/name:portName`, or `ns/name` for an unnamed port (kube-proxy's ServicePortName string).
    public var name: String {
        portName.isEmpty ? "\(namespace)/\(service)" : "\(namespace)/\(service):\(portName)"
    }

    /// The entry's IP family is its cluster IP's.
    public var isIPv6: Bool { clusterIP?.isIPv6 ?? false }

    /// Reachable from outside the cluster: a NodePort, external IPs or load-balancer IPs.
    public var externallyAccessible: Bool {
        nodePort != nil || !externalIPs.isEmpty || !loadBalancerIPs.isEmpty
    }

    /// Which endpoints serve the Cluster policy, which the Local one (on `node`), and whether any is usable
    /// at all (kube-proxy's CategorizeEndpoints): ready endpoints; when none is ready, serving and
    /// terminating ones.
    public func categorized(node: String) -> (cluster: [ProxiedEndpoint], local: [ProxiedEndpoint], hasEndpoints: Bool) {
        func usable(_ list: [ProxiedEndpoint]) -> [ProxiedEndpoint] {
            let ready = list.filter(\.ready)
            return ready.isEmpty ? list.filter { $0.serving && $0.terminating } : ready
        }
        let cluster = usable(endpoints)
        let local = usable(endpoints.filter { $0.nodeName == node })
        return (cluster, local, !cluster.isEmpty)
    }
}

public struct ProxiedEndpoint: Sendable, Hashable {
    public var ip: IPAddress
    public var port: Int
    public var nodeName: String?
    public var ready: Bool
    public var serving: Bool
    public var terminating: Bool

    public init(ip: IPAddress, port: Int, nodeName: String? = nil, ready: Bool = true, serving: Bool = true, terminating: Bool = false) {
        self.ip = ip
        self.port = port
        self.nodeName = nodeName
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
    }

    /// `10.180.0.1:80`, `[fd00::1]:80` (Go's JoinHostPort).
    public var hostPort: String {
        if case .v6 = ip { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}
