import FerryModel

/// The userspace mode's redirect rules (kube-proxy's former userspace "portals"): connections to a Service's
/// cluster IP or external IPs and port are redirected to the local port where Ferry's TCP proxy listens for
/// that Service port, from other hosts and Pods (`KUBE-PORTALS-CONTAINER`, nat PREROUTING) and from the
/// node itself (`KUBE-PORTALS-HOST`, nat OUTPUT). Pure.
public enum PortalRenderer {
    public struct Portal: Sendable, Hashable {
        public var name: String
        public var addresses: [IPAddress]
        public var port: Int
        public var `protocol`: TransportProtocol
        /// The port Ferry listens on for this Service port (traffic from other hosts and Pods).
        public var listenerPort: Int
        /// The port for traffic from the node itself. UDP needs a listener on 127.0.0.1 there: a redirected
        /// datagram's answer must leave from 127.0.0.1 for conntrack to give it the Service's address back.
        public var hostListenerPort: Int

        public init(name: String, addresses: [IPAddress], port: Int, protocol: TransportProtocol, listenerPort: Int, hostListenerPort: Int? = nil) {
            self.name = name
            self.addresses = addresses
            self.port = port
            self.protocol = `protocol`
            self.listenerPort = listenerPort
            self.hostListenerPort = hostListenerPort ?? listenerPort
        }
    }

    public static let chains = ["KUBE-PORTALS-CONTAINER", "KUBE-PORTALS-HOST"]

    public static let jumpRules: [IPTablesTransaction.JumpRule] = [
        .init(table: "nat", chain: "PREROUTING", arguments: ["-m", "comment", "--comment", "handle ClusterIPs; NOTE: this must be before the NodePort rules", "-j", "KUBE-PORTALS-CONTAINER"]),
        .init(table: "nat", chain: "OUTPUT", arguments: ["-m", "comment", "--comment", "handle ClusterIPs; NOTE: this must be before the NodePort rules", "-j", "KUBE-PORTALS-HOST"]),
    ]

    public static func render(_ portals: [Portal]) -> IPTablesTransaction {
        var rules: [String] = []
        for chain in chains {
            for portal in portals.sorted(by: { $0.name < $1.name }) {
                let proto = portal.protocol.rawValue
                for address in portal.addresses where IPTablesRenderer.isV4(address) {
                    let target = chain == "KUBE-PORTALS-HOST" ? portal.hostListenerPort : portal.listenerPort
                    rules.append("-A \(chain) -m comment --comment \"\(portal.name)\" -m \(proto) -p \(proto) -d \(address)/32 --dport \(portal.port) -j REDIRECT --to-ports \(target)")
                }
            }
        }
        return IPTablesTransaction(jumpRules: jumpRules, filterChains: [], filterRules: [], natChains: chains, natRules: rules, activeNATChains: Set(chains))
    }
}
