import FerryModel

/// The content of kube-proxy's nftables table, as objects: chains with their rules, sets and maps with
/// their elements. Rendered by `NFTablesRenderer`, written with `nft -f`, followed by `NFTablesTracer`.
public struct NFTablesRuleset: Sendable, Hashable {
    public struct Rule: Sendable, Hashable {
        /// The rule in nft syntax, without the comment.
        public var text: String
        public var comment: String?
    }

    public struct Chain: Sendable, Hashable {
        public var name: String
        /// `type filter hook prerouting priority -110` for a base chain.
        public var hook: String?
        public var comment: String?
        public var rules: [Rule] = []
    }

    public struct Element: Sendable, Hashable {
        /// `172.30.0.41 . tcp . 80` (the parts of a concatenated key joined by ` . `).
        public var key: String
        public var comment: String?
        /// The verdict of a map element (`goto service-…`, `drop`); nil in a set.
        public var value: String?
    }

    /// A set or a map (a map has `: verdict` in its type).
    public struct Collection: Sendable, Hashable {
        public var name: String
        public var type: String
        public var flags: String?
        public var timeoutSeconds: Int?
        public var comment: String?
        public var elements: [Element] = []
        public var isMap: Bool { type.hasSuffix(": verdict") }
    }

    /// `ip` (IPv4); kube-proxy writes a second table in `ip6`.
    public var family = "ip"
    public var comment = "rules for kube-proxy"
    public var chains: [Chain] = []
    public var collections: [Collection] = []

    public func chain(_ name: String) -> Chain? { chains.first { $0.name == name } }
    public func collection(_ name: String) -> Collection? { collections.first { $0.name == name } }

    var prefix: String { "\(family) \(NFTablesNames.table)" }

    /// The table as `add` commands in kube-proxy's spelling (what its tests compare): table, sets and maps,
    /// chains, rules, elements.
    public var commands: [String] {
        var lines = [#"add table \#(prefix) { comment "\#(comment)" ; }"#]
        lines += collections.map(addCommand)
        lines += chains.map(addCommand)
        for chain in chains { lines += chain.rules.map { ruleCommand(chain.name, $0) } }
        for collection in collections { lines += collection.elements.map { elementCommand(collection.name, $0) } }
        return lines
    }

    func addCommand(_ c: Collection) -> String {
        var properties = ["type \(c.type)"]
        if let flags = c.flags { properties.append("flags \(flags)") }
        if let timeout = c.timeoutSeconds { properties.append("timeout \(timeout)s") }
        if let comment = c.comment { properties.append(#"comment "\#(comment)""#) }
        return "add \(c.isMap ? "map" : "set") \(prefix) \(c.name) { " + properties.joined(separator: " ; ") + " ; }"
    }

    func addCommand(_ chain: Chain) -> String {
        var properties: [String] = []
        if let hook = chain.hook { properties.append(hook) }
        if let comment = chain.comment { properties.append(#"comment "\#(comment)""#) }
        return "add chain \(prefix) \(chain.name)" + (properties.isEmpty ? "" : " { " + properties.joined(separator: " ; ") + " ; }")
    }

    func ruleCommand(_ chain: String, _ rule: Rule) -> String {
        "add rule \(prefix) \(chain) \(rule.text)" + (rule.comment.map { #" comment "\#($0)""# } ?? "")
    }

    func elementCommand(_ collection: String, _ e: Element) -> String {
        "add element \(prefix) \(collection) { \(e.key)" + (e.comment.map { #" comment "\#($0)""# } ?? "") + (e.value.map { " : \($0)" } ?? "") + " }"
    }

    public var ruleCount: Int { chains.reduce(0) { $0 + $1.rules.count } }
}

/// One sync's `nft -f` input: the whole table rebuilt in one transaction (every chain, set and map Ferry
/// owns is flushed and refilled, so the kernel switches from the old rules to the new ones at once), stale
/// service chains flushed (they are deleted by a later transaction, at least a second on, as kube-proxy
/// does because kernels before 6.2 notice late that a map element no longer points at them), and stale
/// affinity sets deleted.
public struct NFTablesTransaction: Sendable, Hashable {
    public var ruleset: NFTablesRuleset
    /// Service and endpoint chains present in the kernel that this sync no longer uses.
    public var staleChains: [String]
    public var staleSets: [String]
    /// No `--nodeport-addresses`: the `nodeport-ips` set is removed (created first, so removing it cannot fail).
    var removesNodePortSet: Bool

    /// The `nft -f` input.
    public var script: String {
        let r = ruleset
        var lines = [#"add table \#(r.prefix) { comment "\#(r.comment)" ; }"#]
        for chain in r.chains { lines += [r.addCommand(chain), "flush chain \(r.prefix) \(chain.name)"] }
        lines += staleChains.map { "flush chain \(r.prefix) \($0)" }
        for c in r.collections {
            lines.append(r.addCommand(c))
            // Affinity sets keep their entries (the clients' remembered endpoints) across syncs.
            if !NFTablesNames.isAffinitySet(c.name) { lines.append("flush \(c.isMap ? "map" : "set") \(r.prefix) \(c.name)") }
        }
        if removesNodePortSet {
            let set = NFTablesRuleset.Collection(name: "nodeport-ips", type: r.family == "ip" ? "ipv4_addr" : "ipv6_addr", comment: NFTablesRenderer.nodePortIPsComment)
            lines += [r.addCommand(set), "delete set \(r.prefix) nodeport-ips"]
        }
        lines += staleSets.map { "delete set \(r.prefix) \($0)" }
        for chain in r.chains { lines += chain.rules.map { r.ruleCommand(chain.name, $0) } }
        for c in r.collections { lines += c.elements.map { r.elementCommand(c.name, $0) } }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Only what changed since `previous` (the ruleset of the last sync that was applied, in full or in
    /// part), as kube-proxy's partial syncs write: new chains and chains whose rules changed (flushed and
    /// refilled), stale chains flushed, map and set elements deleted and added one by one. Unchanged chains
    /// and elements are not touched, so one changed Service is a few lines instead of the whole table.
    /// Without `previous`, or when a set's or map's definition changed, the whole table (`script`).
    public func script(after previous: NFTablesRuleset?) -> String {
        guard let previous, previous.family == ruleset.family else { return script }
        let r = ruleset
        let oldChains = Dictionary(previous.chains.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let oldCollections = Dictionary(previous.collections.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for c in r.collections {
            if let old = oldCollections[c.name], old.type != c.type || old.flags != c.flags || old.timeoutSeconds != c.timeoutSeconds { return script }
        }
        var lines = [#"add table \#(r.prefix) { comment "\#(r.comment)" ; }"#]
        var refill: [NFTablesRuleset.Chain] = []
        for chain in r.chains where oldChains[chain.name] != chain {
            lines.append(r.addCommand(chain))
            if oldChains[chain.name] != nil { lines.append("flush chain \(r.prefix) \(chain.name)") }
            refill.append(chain)
        }
        lines += staleChains.map { "flush chain \(r.prefix) \($0)" }
        var additions: [String] = []
        for c in r.collections {
            guard let old = oldCollections[c.name] else {
                lines.append(r.addCommand(c))
                additions += c.elements.map { r.elementCommand(c.name, $0) }
                continue
            }
            let before = Dictionary(old.elements.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            let after = Dictionary(c.elements.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            for element in old.elements where after[element.key] != element {
                lines.append("delete element \(r.prefix) \(c.name) { \(element.key) }")
            }
            additions += c.elements.filter { before[$0.key] != $0 }.map { r.elementCommand(c.name, $0) }
        }
        lines += staleSets.map { "delete set \(r.prefix) \($0)" }
        for chain in refill { lines += chain.rules.map { r.ruleCommand(chain.name, $0) } }
        lines += additions
        return lines.joined(separator: "\n") + "\n"
    }

    /// The later transaction that deletes chains found stale by an earlier sync.
    public static func deleteChains(_ chains: [String], family: String = "ip") -> String {
        chains.map { "delete chain \(family) \(NFTablesNames.table) \($0)" }.joined(separator: "\n") + "\n"
    }
}

/// Renders a `ServicePortTable` into kube-proxy's nftables layout (`pkg/proxy/nftables/proxier.go`, the
/// layout of kube-proxy 1.31 and later): table `kube-proxy`, base chains before and at DNAT, the
/// `service-ips` / `service-nodeports` dispatch maps, `no-endpoint-*` verdict maps that reject or drop,
/// `firewall-ips` for load-balancer source ranges, `numgen random` spreading over endpoint chains, and
/// per-endpoint affinity sets. Pure; the chains and sets in the kernel tell which are stale.
public enum NFTablesRenderer {
    static let nodePortIPsComment = "IPs that accept NodePort traffic"

    static let baseChains: [(String, String)] = [
        ("filter-prerouting-pre-dnat", "type filter hook prerouting priority -110"),
        ("filter-output-pre-dnat", "type filter hook output priority -110"),
        ("filter-forward", "type filter hook forward priority 0"),
        ("filter-input", "type filter hook input priority 0"),
        ("filter-output", "type filter hook output priority 0"),
        ("nat-output", "type nat hook output priority -100"),
        ("nat-postrouting", "type nat hook postrouting priority 100"),
        ("nat-prerouting", "type nat hook prerouting priority -100"),
    ]

    /// Renders the table of the family `options.isIPv6` names (`ip kube-proxy` or `ip6 kube-proxy`).
    public static func render(_ table: ServicePortTable, options: ServiceRuleOptions, existingChains: Set<String> = [], existingSets: Set<String> = []) -> NFTablesTransaction {
        var w = Writer(options: options.forFamily(ipv6: options.isIPv6))
        w.setup()
        for port in table.ports where port.clusterIP != nil && port.isIPv6 == options.isIPv6 {
            w.service(port)
        }
        let active = Set(w.ruleset.chains.map(\.name))
        let activeSets = Set(w.ruleset.collections.map(\.name))
        return NFTablesTransaction(
            ruleset: w.ruleset,
            staleChains: existingChains.filter { NFTablesNames.isServiceChain($0) && !active.contains($0) }.sorted(),
            staleSets: existingSets.filter { NFTablesNames.isAffinitySet($0) && !activeSets.contains($0) }.sorted(),
            removesNodePortSet: options.nodePortAddresses.isEmpty)
    }

    struct Writer {
        let options: ServiceRuleOptions
        var ruleset = NFTablesRuleset()
        var chainIndex: [String: Int] = [:]
        var collectionIndex: [String: Int] = [:]

        init(options: ServiceRuleOptions) {
            self.options = options
            ruleset.family = options.isIPv6 ? "ip6" : "ip"
            addr = options.isIPv6 ? "ipv6_addr" : "ipv4_addr"
            ipX = options.isIPv6 ? "ip6" : "ip"
            noLocalhost = options.isIPv6 ? "ip6 daddr != ::1" : "ip daddr != 127.0.0.0/8"
        }

        mutating func chain(_ name: String, hook: String? = nil, comment: String? = nil) {
            guard chainIndex[name] == nil else { return }
            chainIndex[name] = ruleset.chains.count
            ruleset.chains.append(.init(name: name, hook: hook, comment: comment))
        }

        mutating func rule(_ chain: String, _ text: String, comment: String? = nil) {
            ruleset.chains[chainIndex[chain]!].rules.append(.init(text: text, comment: comment))
        }

        mutating func collection(_ name: String, type: String, flags: String? = nil, timeout: Int? = nil, comment: String? = nil) {
            guard collectionIndex[name] == nil else { return }
            collectionIndex[name] = ruleset.collections.count
            ruleset.collections.append(.init(name: name, type: type, flags: flags, timeoutSeconds: timeout, comment: comment))
        }

        mutating func element(_ collection: String, _ key: String, _ value: String? = nil, comment: String? = nil) {
            ruleset.collections[collectionIndex[collection]!].elements.append(.init(key: key, comment: comment, value: value))
        }

        let addr: String
        let ipX: String
        /// NodePorts are not served on loopback.
        let noLocalhost: String

        /// The fixed part: sets and maps, base chains and the chains they jump to.
        mutating func setup() {
            let mark = options.masqueradeMark
            collection("cluster-ips", type: addr, comment: "Active ClusterIPs")
            if !options.nodePortAddresses.isEmpty {
                collection("nodeport-ips", type: addr, comment: NFTablesRenderer.nodePortIPsComment)
                for ip in options.nodePortAddresses where !isLoopback(ip) { element("nodeport-ips", ip.description) }
            }
            collection("firewall-ips", type: "\(addr) . inet_proto . inet_service : verdict", comment: "destinations that are subject to LoadBalancerSourceRanges")
            collection("no-endpoint-nodeports", type: "inet_proto . inet_service : verdict", comment: "vmap to drop or reject packets to service nodeports with no endpoints")
            collection("no-endpoint-services", type: "\(addr) . inet_proto . inet_service : verdict", comment: "vmap to drop or reject packets to services with no endpoints")
            collection("service-ips", type: "\(addr) . inet_proto . inet_service : verdict", comment: "ClusterIP, ExternalIP and LoadBalancer IP traffic")
            collection("service-nodeports", type: "inet_proto . inet_service : verdict", comment: "NodePort traffic")

            for (name, hook) in NFTablesRenderer.baseChains { chain(name, hook: hook) }
            for name in ["cluster-ips-check", "firewall-check", "mark-for-masquerade", "masquerading", "nodeport-endpoints-check"] { chain(name) }
            chain("reject-chain", comment: "helper for @no-endpoint-services / @no-endpoint-nodeports")
            chain("services")
            chain("service-endpoints-check")

            rule("cluster-ips-check", "\(ipX) daddr @cluster-ips reject", comment: "Reject traffic to invalid ports of ClusterIPs")
            if !options.serviceCIDRs.isEmpty {
                rule("cluster-ips-check", "\(ipX) daddr { " + options.serviceCIDRs.map(\.description).joined(separator: ", ") + " } drop", comment: "Drop traffic to unallocated ClusterIPs")
            }
            rule("filter-prerouting-pre-dnat", "ct state new jump firewall-check")
            rule("filter-output-pre-dnat", "ct state new jump firewall-check")
            rule("filter-forward", "ct state new jump service-endpoints-check")
            rule("filter-forward", "ct state new jump cluster-ips-check")
            rule("filter-input", "ct state new jump nodeport-endpoints-check")
            rule("filter-input", "ct state new jump service-endpoints-check")
            rule("filter-output", "ct state new jump service-endpoints-check")
            rule("filter-output", "ct state new jump cluster-ips-check")
            rule("firewall-check", "\(ipX) daddr . meta l4proto . th dport vmap @firewall-ips")
            rule("mark-for-masquerade", "mark set mark or \(mark)")
            rule("masquerading", "mark and \(mark) == 0 return")
            rule("masquerading", "mark set mark xor \(mark)")
            rule("masquerading", "masquerade fully-random")
            rule("nat-output", "jump services")
            rule("nat-postrouting", "jump masquerading")
            rule("nat-prerouting", "jump services")
            rule("reject-chain", "reject")
            rule("services", "\(ipX) daddr . meta l4proto . th dport vmap @service-ips")
            if options.nodePortAddresses.isEmpty {
                rule("nodeport-endpoints-check", "\(noLocalhost) meta l4proto . th dport vmap @no-endpoint-nodeports")
                rule("services", "fib daddr type local \(noLocalhost) meta l4proto . th dport vmap @service-nodeports")
            } else {
                rule("nodeport-endpoints-check", "\(ipX) daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports")
                rule("services", "\(ipX) daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports")
            }
            rule("service-endpoints-check", "\(ipX) daddr . meta l4proto . th dport vmap @no-endpoint-services")
        }

        func isLoopback(_ ip: IPAddress) -> Bool {
            if case .v4(let bits) = ip { return bits >> 24 == 127 }
            return ip == IPAddress(parsing: "::1")
        }

        mutating func service(_ svc: ProxiedServicePort) {
            let plan = TrafficPolicyPlan(svc, node: options.nodeName)
            let proto = svc.protocol.rawValue
            let name = svc.name
            let clusterChain = NFTablesNames.service(svc)
            let localChain = NFTablesNames.serviceLocal(svc)
            let externalChain = NFTablesNames.external(svc)
            let internalChain = svc.internalTrafficLocal ? localChain : clusterChain
            let externalPolicyChain = svc.externalTrafficLocal ? localChain : clusterChain
            let clusterIP = svc.clusterIP!.description
            func key(_ ip: IPAddress) -> String { "\(ip) . \(proto) . \(svc.port)" }

            // Chains first: every element and rule below may point at them.
            for endpoint in plan.reachableEndpoints { chain(NFTablesNames.endpoint(svc, endpoint)) }
            if plan.usesClusterChain { chain(clusterChain) }
            if plan.usesLocalChain { chain(localChain) }
            if plan.usesExternalChain { chain(externalChain) }

            // Where traffic without (local) endpoints ends: REJECT without any endpoint, DROP without a local one.
            let noEndpointVerdict = plan.hasEndpoints ? "drop" : "goto reject-chain"

            element("cluster-ips", clusterIP)
            if plan.hasInternalEndpoints {
                element("service-ips", key(svc.clusterIP!), "goto \(internalChain)")
            } else {
                element("no-endpoint-services", key(svc.clusterIP!), noEndpointVerdict, comment: name)
            }
            for ip in svc.externalIPs {
                if plan.hasEndpoints { element("service-ips", key(ip), "goto \(externalChain)") }
                if !plan.hasExternalEndpoints { element("no-endpoint-services", key(ip), noEndpointVerdict, comment: name) }
            }
            let firewallChain = NFTablesNames.firewall(svc)
            if !svc.loadBalancerIPs.isEmpty && !svc.loadBalancerSourceRanges.isEmpty {
                chain(firewallChain)
                var sources = svc.loadBalancerSourceRanges.map(\.description)
                if let nodeIP = options.nodeIP, svc.loadBalancerSourceRanges.contains(where: { $0.contains(nodeIP) }) {
                    // A request from the node to a VIP held locally arrives with the VIP as its source.
                    sources += svc.loadBalancerIPs.map(\.description)
                }
                rule(firewallChain, "\(ipX) saddr != { " + sources.joined(separator: ", ") + " } drop")
                for ip in svc.loadBalancerIPs { element("firewall-ips", key(ip), "goto \(firewallChain)") }
            }
            for ip in svc.loadBalancerIPs where plan.hasEndpoints { element("service-ips", key(ip), "goto \(externalChain)") }
            if !plan.hasExternalEndpoints {
                for ip in svc.loadBalancerIPs { element("no-endpoint-services", key(ip), noEndpointVerdict, comment: name) }
            }
            if let nodePort = svc.nodePort {
                if plan.hasEndpoints { element("service-nodeports", "\(proto) . \(nodePort)", "goto \(externalChain)") }
                if !plan.hasExternalEndpoints { element("no-endpoint-nodeports", "\(proto) . \(nodePort)", noEndpointVerdict, comment: name) }
            }

            if plan.hasInternalEndpoints {
                if options.masqueradeAll {
                    rule(internalChain, "\(ipX) daddr \(clusterIP) jump mark-for-masquerade")
                } else if let cidr = options.clusterCIDR {
                    // Off-cluster traffic to a ClusterIP may bounce off-node: masquerade it.
                    rule(internalChain, "\(ipX) daddr \(clusterIP) \(ipX) saddr != \(cidr) jump mark-for-masquerade")
                }
            }
            if plan.usesExternalChain {
                if !svc.externalTrafficLocal {
                    rule(externalChain, "jump mark-for-masquerade")
                } else {
                    if let cidr = options.clusterCIDR {
                        rule(externalChain, "\(ipX) saddr \(cidr) goto \(clusterChain)", comment: "short-circuit pod traffic")
                    }
                    rule(externalChain, "fib saddr type local jump mark-for-masquerade", comment: "masquerade local traffic")
                    rule(externalChain, "fib saddr type local goto \(clusterChain)", comment: "short-circuit local traffic")
                }
                if plan.hasExternalEndpoints { rule(externalChain, "goto \(externalPolicyChain)") }
            }

            if let timeout = svc.affinityTimeoutSeconds {
                for endpoint in plan.reachableEndpoints {
                    collection(NFTablesNames.affinity(svc, endpoint), type: addr, flags: "dynamic,timeout", timeout: timeout)
                }
            }
            if plan.usesClusterChain { endpointJumps(svc, chain: clusterChain, endpoints: plan.clusterEndpoints) }
            if plan.usesLocalChain { endpointJumps(svc, chain: localChain, endpoints: plan.localEndpoints) }

            for endpoint in plan.reachableEndpoints {
                let chain = NFTablesNames.endpoint(svc, endpoint)
                // Hairpin: a Pod reaching itself through the Service is masqueraded.
                rule(chain, "\(ipX) saddr \(endpoint.ip) jump mark-for-masquerade")
                if svc.affinityTimeoutSeconds != nil { rule(chain, "update @\(NFTablesNames.affinity(svc, endpoint)) { \(ipX) saddr }") }
                rule(chain, "meta l4proto \(proto) dnat to \(endpoint.hostPort)")
            }
        }

        /// Affinity rules first (a remembered client goes back to its endpoint), then the random spread.
        mutating func endpointJumps(_ svc: ProxiedServicePort, chain: String, endpoints: [ProxiedEndpoint]) {
            if svc.affinityTimeoutSeconds != nil {
                for endpoint in endpoints {
                    rule(chain, "\(ipX) saddr @\(NFTablesNames.affinity(svc, endpoint)) goto \(NFTablesNames.endpoint(svc, endpoint))")
                }
            }
            let targets = endpoints.enumerated().map { "\($0.offset) : goto \(NFTablesNames.endpoint(svc, $0.element))" }
            rule(chain, "numgen random mod \(endpoints.count) vmap { " + targets.joined(separator: " , ") + " }")
        }
    }
}
