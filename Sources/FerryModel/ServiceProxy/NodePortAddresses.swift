/// kube-proxy's `--nodeport-addresses`: the node addresses NodePorts answer on, as CIDRs (`10.0.0.0/8`,
/// `fd00::/64`; a bare address is a CIDR of one) or `primary` (the node's primary IPs, `--node-ip`).
/// Unset: every local address in iptables mode, `primary` in nftables mode (kube-proxy 1.31 and later).
public enum NodePortAddresses {
    public enum Spec: Sendable, Hashable {
        case primary
        case cidrs([IPRange])
    }

    /// Nil for no items (the mode's default); a message saying what to fix otherwise.
    public static func parse(_ items: [String]) -> Result<Spec?, NodePortAddressesError> {
        if items.isEmpty { return .success(nil) }
        if items.contains("primary") {
            guard items.count == 1 else { return .failure(NodePortAddressesError(description: "--nodeport-addresses: primary cannot be combined with CIDRs")) }
            return .success(.primary)
        }
        var ranges: [IPRange] = []
        for item in items {
            guard let range = IPRange(parsing: item) else {
                return .failure(NodePortAddressesError(description: "--nodeport-addresses expects CIDRs such as 10.0.0.0/8 or fd00::/64, or primary, not \"\(item)\""))
            }
            ranges.append(range)
        }
        return .success(.cidrs(ranges))
    }

    /// The addresses to render rules for; empty means every local address. `local` are the node's
    /// interface addresses, `nodeIPs` its primary ones. A CIDR of one address is used as given, so rules
    /// can be rendered for another node.
    public static func resolve(_ spec: Spec?, local: [IPAddress], nodeIPs: [IPAddress]) -> Result<[IPAddress], NodePortAddressesError> {
        switch spec {
        case nil:
            return .success([])
        case .primary:
            guard !nodeIPs.isEmpty else {
                return .failure(NodePortAddressesError(description: "--nodeport-addresses primary (the nftables mode's default) needs the node's IPs: pass --node-ip, or --nodeport-addresses 0.0.0.0/0 for every local address"))
            }
            return .success(nodeIPs)
        case .cidrs(let ranges):
            if ranges.contains(where: { $0.prefixLength == 0 }) { return .success([]) }
            var addresses: [IPAddress] = []
            for range in ranges {
                let single = range.prefixLength == (range.base.isIPv6 ? 128 : 32)
                for address in single ? [range.base] : local.filter({ range.contains($0) }) where !addresses.contains(address) {
                    addresses.append(address)
                }
            }
            guard !addresses.isEmpty else {
                return .failure(NodePortAddressesError(description: "--nodeport-addresses \(ranges.map(\.description).joined(separator: ",")) matches none of this node's addresses (\(local.map(\.description).joined(separator: ", ")))"))
            }
            return .success(addresses)
        }
    }
}

public struct NodePortAddressesError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
