import FerryModel

/// The conntrack entries to delete after a sync, as kube-proxy deletes them, so that UDP clients are not
/// black-holed by entries that still point at an endpoint that went away (or at nothing, from the time a
/// Service had no endpoints). TCP needs none: its connections end and new ones are rewritten afresh.
public enum ConntrackCleanup {
    /// `conntrack` argument lists: for each UDP endpoint no longer used, entries to each of the Service's
    /// addresses (and its NodePort) NATed to that endpoint; for each UDP Service that got endpoints back,
    /// every entry to its addresses.
    public static func commands(previous: ServicePortTable, next: ServicePortTable, node: String) -> [[String]] {
        var previousByName: [String: ProxiedServicePort] = [:]
        func key(_ port: ProxiedServicePort) -> String { port.name + "/" + port.protocol.rawValue + (port.isIPv6 ? "/ipv6" : "") }
        // conntrack defaults to IPv4; IPv6 entries need the family named.
        func family(_ port: ProxiedServicePort) -> [String] { port.isIPv6 ? ["-f", "ipv6"] : [] }
        for port in previous.ports { previousByName[key(port)] = port }
        var commands: [[String]] = []
        for port in next.ports where port.protocol == .udp {
            let addresses = ([port.clusterIP].compactMap { $0 } + port.externalIPs + port.loadBalancerIPs).map(\.description)
            let now = Set(port.categorized(node: node).cluster.map(\.ip))
            guard let before = previousByName[key(port)] else { continue }
            let then = Set(before.categorized(node: node).cluster.map(\.ip))
            for gone in then.subtracting(now).sorted(by: { $0.description < $1.description }) {
                for address in addresses { commands.append(["-D"] + family(port) + ["-p", "udp", "--orig-dst", address, "--dst-nat", gone.description]) }
                if let nodePort = port.nodePort { commands.append(["-D"] + family(port) + ["-p", "udp", "--orig-port-dst", String(nodePort), "--dst-nat", gone.description]) }
            }
            if then.isEmpty && !now.isEmpty {
                for address in addresses { commands.append(["-D"] + family(port) + ["-p", "udp", "--orig-dst", address]) }
            }
        }
        // A UDP Service removed altogether: its addresses are free again.
        let nextNames = Set(next.ports.map(key))
        for port in previous.ports where port.protocol == .udp && !nextNames.contains(key(port)) {
            for address in ([port.clusterIP].compactMap { $0 } + port.externalIPs + port.loadBalancerIPs) {
                commands.append(["-D"] + family(port) + ["-p", "udp", "--orig-dst", address.description])
            }
        }
        return commands
    }
}
