import FerryModel

/// The node-level settings that change kube-proxy's rules (its flags of the same names), for both IP
/// families and both kinds of kernel rules (iptables and nftables); `forFamily(ipv6:)` gives the view one
/// family's rules are rendered with.
public struct ServiceRuleOptions: Sendable, Hashable {
    /// `--hostname-override`: which endpoints are local.
    public var nodeName: String
    /// The family rendered: IPv4 (iptables, table `ip`) or IPv6 (ip6tables, table `ip6`).
    public var isIPv6 = false
    /// `--node-ip`: the node's addresses (a load-balancer source range containing one also admits the node).
    public var nodeIPs: [IPAddress]
    /// `--cluster-cidr`: Pod traffic (the local-traffic detector), a CIDR per family; none: not detected.
    public var clusterCIDRs: [IPRange]
    /// `--masquerade-all`: SNAT all traffic to ClusterIPs.
    public var masqueradeAll = false
    /// `--masquerade-bit` (0…31, default 14): the mark bit for traffic needing SNAT.
    public var masqueradeBit = 14
    /// `--nodeport-addresses`: node IPs NodePorts answer on; empty: every local address.
    public var nodePortAddresses: [IPAddress] = []
    /// The Service CIDRs (kube-apiserver's `--service-cluster-ip-range`): in nftables mode, traffic to an
    /// address in them that no Service holds is dropped.
    public var serviceCIDRs: [IPRange] = []
    /// `--iptables-localhost-nodeports` (default true).
    public var localhostNodePorts = true
    /// iptables supports `--random-fully` on MASQUERADE.
    public var randomFully = true
    /// `net.netfilter.nf_conntrack_tcp_be_liberal` is set: no DROP of INVALID packets.
    public var conntrackTCPLiberal = false

    public init(nodeName: String, nodeIP: IPAddress? = nil, clusterCIDR: IPRange? = nil) {
        self.nodeName = nodeName
        self.nodeIPs = nodeIP.map { [$0] } ?? []
        self.clusterCIDRs = clusterCIDR.map { [$0] } ?? []
    }

    /// The node's address in the family rendered.
    public var nodeIP: IPAddress? { nodeIPs.first { $0.isIPv6 == isIPv6 } }
    /// The Pod CIDR of the family rendered.
    public var clusterCIDR: IPRange? { clusterCIDRs.first { $0.base.isIPv6 == isIPv6 } }

    /// These options for one family's rules: its addresses only.
    public func forFamily(ipv6: Bool) -> ServiceRuleOptions {
        var options = self
        options.isIPv6 = ipv6
        options.nodePortAddresses = nodePortAddresses.filter { $0.isIPv6 == ipv6 }
        options.serviceCIDRs = serviceCIDRs.filter { $0.base.isIPv6 == ipv6 }
        return options
    }

    /// `0x4000` for bit 14.
    public var masqueradeMark: String { "0x" + String(1 << masqueradeBit, radix: 16) }
}
