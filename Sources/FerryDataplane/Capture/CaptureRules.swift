import FerryModel

/// The kernel rules that force outbound TCP into Ferry's intercept port (transparent egress capture), for
/// iptables (`iptables-restore --noflush` input, one per family) and nftables (one `inet` table). Pure:
/// `ferry rules capture` prints or applies them.
///
/// - **Pod** scope (an init container's rules, Istio's scheme): every TCP connection the Pod's network
///   namespace opens goes to the proxy port, except the proxy's own (its UID/GID, 1337 by default, so its
///   upstream connections are never captured again), loopback, and the ports and CIDRs excluded.
/// - **Node** scope (the article's `OUTPUT … DNAT --to-destination PROXY:3128`, made safe): connections from
///   Pods on the node (PREROUTING) and from the node itself (OUTPUT), except those to the cluster, Service
///   and node CIDRs — Kubernetes' own routing, kube-proxy's Service addresses included, keeps working — and
///   the proxy's own.
public struct CaptureOptions: Sendable, Hashable {
    public enum Scope: String, Sendable, CaseIterable { case pod, node }

    public var scope: Scope = .pod
    public var proxyPort = 15001
    public var proxyUID = 1337
    public var proxyGID: Int? = 1337
    /// Node scope: DNAT to this address — one of the node's own, where a hostNetwork Ferry listens (the
    /// original destination is in this node's conntrack); nil: REDIRECT.
    public var proxyAddress: IPAddress?
    /// Only connections to these ports are captured (empty: every port).
    public var includePorts: [Int] = []
    public var excludePorts: [Int] = []
    public var excludeCIDRs: [IPRange] = []
    /// Node scope: never captured (Pods, Services, nodes).
    public var clusterCIDRs: [IPRange] = []
    public var serviceCIDRs: [IPRange] = []
    public var nodeCIDRs: [IPRange] = []
    /// Pod scope: connections arriving for these ports (the app's) go to the sidecar's inbound listener
    /// instead (Istio's ISTIO_INBOUND); the sidecar reaches the app over loopback, which is not captured.
    public var inboundPorts: [Int] = []
    public var inboundProxyPort = 15006

    public init() {}

    /// Every destination range left alone, in order: loopback, then the cluster's own, then the user's.
    func excluded(ipv6: Bool) -> [IPRange] {
        let loopback = IPRange(parsing: ipv6 ? "::1/128" : "127.0.0.0/8")!
        let ranges = [loopback] + (scope == .node ? clusterCIDRs + serviceCIDRs + nodeCIDRs : []) + excludeCIDRs
        return ranges.filter { range in if case .v6 = range.base { ipv6 } else { !ipv6 } }
    }
}

public enum CaptureRules {
    /// The chains Ferry owns in the nat table.
    public static let outputChain = "FERRY-CAPTURE-OUTPUT"
    public static let preroutingChain = "FERRY-CAPTURE-PREROUTING"
    public static let redirectChain = "FERRY-CAPTURE-REDIRECT"
    public static let inboundChain = "FERRY-CAPTURE-INBOUND"
    /// The nftables table (family `inet`: IPv4 and IPv6 in one).
    public static let table = "ferry-capture"

    static let outputJump = (chain: "OUTPUT", rule: ["-p", "tcp", "-j", outputChain])
    static let preroutingJump = (chain: "PREROUTING", rule: ["-p", "tcp", "-j", preroutingChain])
    static let inboundJump = (chain: "PREROUTING", rule: ["-p", "tcp", "-j", inboundChain])

    /// The jump rules from the built-in chains, as `(chain, rule)`: ensured first in their chain.
    public static func jumps(_ options: CaptureOptions) -> [(chain: String, rule: [String])] {
        var jumps = [outputJump]
        if options.scope == .node { jumps.append(preroutingJump) }
        if options.scope == .pod, !options.inboundPorts.isEmpty { jumps.append(inboundJump) }
        return jumps
    }

    /// Every jump and chain Ferry may have added, whatever the options were (what `--cleanup` removes).
    public static let everyJump = [outputJump, preroutingJump, inboundJump]
    public static let everyChain = [outputChain, preroutingChain, redirectChain, inboundChain]

    /// `iptables-restore --noflush` input for the nat table of one family: Ferry's chains, flushed and
    /// written whole (the jumps into them are `jumps`).
    public static func iptables(_ options: CaptureOptions, ipv6: Bool = false) -> String {
        var lines = ["*nat", ":\(outputChain) - [0:0]", ":\(redirectChain) - [0:0]"]
        if options.scope == .node { lines.append(":\(preroutingChain) - [0:0]") }
        if options.scope == .pod, !options.inboundPorts.isEmpty {
            lines.append(":\(inboundChain) - [0:0]")
            for group in portGroups(options.inboundPorts) {
                lines.append("-A \(inboundChain) -p tcp -m multiport --dports \(group) -m comment --comment \"ferry capture: inbound to the sidecar\" -j REDIRECT --to-ports \(options.inboundProxyPort)")
            }
        }
        // Where captured connections go.
        if let address = options.proxyAddress, options.scope == .node {
            let target = ipv6 ? "[\(address)]:\(options.proxyPort)" : "\(address):\(options.proxyPort)"
            lines.append("-A \(redirectChain) -p tcp -m comment --comment \"ferry capture: to the proxy\" -j DNAT --to-destination \(target)")
        } else {
            lines.append("-A \(redirectChain) -p tcp -m comment --comment \"ferry capture: to the proxy\" -j REDIRECT --to-ports \(options.proxyPort)")
        }
        // The node's (or Pod's) own processes: the proxy's connections leave as they are.
        lines.append("-A \(outputChain) -m owner --uid-owner \(options.proxyUID) -m comment --comment \"ferry capture: the proxy's own connections\" -j RETURN")
        if let gid = options.proxyGID {
            lines.append("-A \(outputChain) -m owner --gid-owner \(gid) -m comment --comment \"ferry capture: the proxy's own connections\" -j RETURN")
        }
        lines.append("-A \(outputChain) -o lo -m comment --comment \"ferry capture: loopback\" -j RETURN")
        var chains = [outputChain]
        if options.scope == .node { chains.append(preroutingChain) }
        for chain in chains {
            for range in options.excluded(ipv6: ipv6) {
                lines.append("-A \(chain) -d \(range) -j RETURN")
            }
            for group in portGroups(options.excludePorts) {
                lines.append("-A \(chain) -p tcp -m multiport --dports \(group) -j RETURN")
            }
            if options.includePorts.isEmpty {
                lines.append("-A \(chain) -p tcp -j \(redirectChain)")
            } else {
                for group in portGroups(options.includePorts) {
                    lines.append("-A \(chain) -p tcp -m multiport --dports \(group) -j \(redirectChain)")
                }
            }
        }
        lines.append("COMMIT")
        return lines.joined(separator: "\n") + "\n"
    }

    /// An `nft -f` script that replaces Ferry's table atomically (created empty first, so the delete
    /// never fails). Its chains run just before the nat table's own (priority -110, kube-proxy's at -100).
    public static func nftables(_ options: CaptureOptions) -> String {
        var out = "table inet \(table)\ndelete table inet \(table)\ntable inet \(table) {\n"
        func chain(_ name: String, hook: String, owner: Bool) {
            out += "\tchain \(name) {\n\t\ttype nat hook \(hook) priority -110; policy accept;\n"
            out += "\t\tmeta l4proto != tcp return\n"
            if owner {
                out += "\t\tmeta skuid \(options.proxyUID) return comment \"the proxy's own connections\"\n"
                if let gid = options.proxyGID { out += "\t\tmeta skgid \(gid) return\n" }
                out += "\t\toifname \"lo\" return comment \"loopback\"\n"
            }
            let v4 = options.excluded(ipv6: false), v6 = options.excluded(ipv6: true)
            if !v4.isEmpty { out += "\t\tip daddr { \(v4.map(\.description).joined(separator: ", ")) } return\n" }
            if !v6.isEmpty { out += "\t\tip6 daddr { \(v6.map(\.description).joined(separator: ", ")) } return\n" }
            if !options.excludePorts.isEmpty { out += "\t\ttcp dport { \(options.excludePorts.map(String.init).joined(separator: ", ")) } return\n" }
            let ports = options.includePorts.isEmpty ? "meta l4proto tcp " : "tcp dport { \(options.includePorts.map(String.init).joined(separator: ", ")) } "
            if let address = options.proxyAddress, options.scope == .node {
                if case .v6 = address {
                    out += "\t\t\(ports)meta nfproto ipv6 dnat ip6 to [\(address)]:\(options.proxyPort) comment \"to the proxy\"\n"
                } else {
                    out += "\t\t\(ports)meta nfproto ipv4 dnat ip to \(address):\(options.proxyPort) comment \"to the proxy\"\n"
                }
            } else {
                out += "\t\t\(ports)redirect to :\(options.proxyPort) comment \"to the proxy\"\n"
            }
            out += "\t}\n"
        }
        chain("output", hook: "output", owner: true)
        if options.scope == .node { chain("prerouting", hook: "prerouting", owner: false) }
        if options.scope == .pod, !options.inboundPorts.isEmpty {
            out += "\tchain inbound {\n\t\ttype nat hook prerouting priority -110; policy accept;\n"
            out += "\t\ttcp dport { \(options.inboundPorts.map(String.init).joined(separator: ", ")) } redirect to :\(options.inboundProxyPort) comment \"inbound to the sidecar\"\n\t}\n"
        }
        out += "}\n"
        return out
    }

    /// Ports for `-m multiport --dports`, at most 15 per rule (the module's limit).
    static func portGroups(_ ports: [Int]) -> [String] {
        stride(from: 0, to: ports.count, by: 15).map { start in
            ports[start..<min(start + 15, ports.count)].map(String.init).joined(separator: ",")
        }
    }
}
