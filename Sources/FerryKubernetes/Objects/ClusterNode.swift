import FerryModel

/// v1 Node (named apart from YAML's Node), as a service proxy reads its own: its addresses (the node IPs when `--node-ip` is not given),
/// its Pod CIDRs, and whether it is leaving (kube-proxy's `/healthz` fails then, so load balancers drain it).
public struct ClusterNode: Sendable {
    public var metadata: ObjectMeta
    /// `status.addresses`: type (`InternalIP`, `ExternalIP`, `Hostname`...) and address, in order.
    public var addresses: [(type: String, address: String)] = []
    public var podCIDRs: [String] = []
    /// `metadata.deletionTimestamp` is set: the Node is being deleted.
    public var deleting = false
    /// The keys of `spec.taints`.
    public var taintKeys: [String] = []

    public init(metadata: ObjectMeta) {
        self.metadata = metadata
    }

    /// The node's IP per family, as kube-proxy picks them: the first InternalIP of each family, else the
    /// first ExternalIP.
    public var nodeIPs: [IPAddress] {
        var result: [IPAddress] = []
        for ipv6 in [false, true] {
            let parsed = addresses.compactMap { entry in IPAddress(parsing: entry.address).map { (entry.type, $0) } }.filter { $0.1.isIPv6 == ipv6 }
            if let ip = parsed.first(where: { $0.0 == "InternalIP" })?.1 ?? parsed.first(where: { $0.0 == "ExternalIP" })?.1 { result.append(ip) }
        }
        return result
    }

    /// kube-proxy's node eligibility for `/healthz`: not being deleted, not tainted for removal by the
    /// cluster autoscaler.
    public var eligible: Bool {
        !deleting && !taintKeys.contains("ToBeDeletedByClusterAutoscaler")
    }
}
