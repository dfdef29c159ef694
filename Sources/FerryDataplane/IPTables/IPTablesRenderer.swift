import FerryModel

/// One sync's worth of iptables state, as kube-proxy writes it: the jump rules from the built-in chains
/// (ensured one by one, never replaced) and one `iptables-restore --noflush` input with the filter and nat
/// tables.
public struct IPTablesTransaction: Sendable, Hashable {
    public struct JumpRule: Sendable, Hashable {
        public var table: String
        public var chain: String
        /// Arguments after `-A CHAIN` (the same for `-C` to check and `-I` to insert).
        public var arguments: [String]
    }

    public var jumpRules: [JumpRule]
    public var filterChains: [String]
    public var filterRules: [String]
    public var natChains: [String]
    public var natRules: [String]
    /// The per-service and per-endpoint nat chains this sync keeps.
    public var activeNATChains: Set<String>

    /// The `iptables-restore --noflush` input.
    public var restoreInput: String {
        (["*filter"] + filterChains.map { ":\($0) - [0:0]" } + filterRules + ["COMMIT", "*nat"]
            + natChains.map { ":\($0) - [0:0]" } + natRules + ["COMMIT"]).joined(separator: "\n") + "\n"
    }

    /// A partial sync's input, as kube-proxy writes one: the filter table and the top-level nat chains
    /// (KUBE-SERVICES, KUBE-NODEPORTS...) whole, but of the per-service and per-endpoint chains only those
    /// whose rules differ from `previous` (the transaction last applied) — with `--noflush`, a chain the
    /// input does not declare is left as it is — and the stale ones deleted. Without `previous`, the
    /// whole input.
    public func restoreInput(after previous: IPTablesTransaction?) -> String {
        guard let previous else { return restoreInput }
        let before = previous.natRulesByChain
        let now = natRulesByChain
        let deleted = Set(natRules.filter { $0.hasPrefix("-X ") }.compactMap(Self.chain(of:)))
        let written = Set(natChains.filter { chain in
            !ChainNames.isServiceChain(chain) || deleted.contains(chain) || before[chain] != now[chain]
        })
        let rules = natRules.filter { line in
            guard let chain = Self.chain(of: line) else { return true }
            return written.contains(chain)
        }
        return (["*filter"] + filterChains.map { ":\($0) - [0:0]" } + filterRules + ["COMMIT", "*nat"]
            + natChains.filter(written.contains).map { ":\($0) - [0:0]" } + rules + ["COMMIT"]).joined(separator: "\n") + "\n"
    }

    /// The nat rules of each chain, in order.
    var natRulesByChain: [String: [String]] {
        var result: [String: [String]] = [:]
        for line in natRules {
            if let chain = Self.chain(of: line), line.hasPrefix("-A ") { result[chain, default: []].append(line) }
        }
        return result
    }

    /// The chain an `-A CHAIN ...` or `-X CHAIN` line is about.
    static func chain(of line: String) -> String? {
        guard line.hasPrefix("-A ") || line.hasPrefix("-X ") else { return nil }
        return line.dropFirst(3).split(separator: " ", maxSplits: 1).first.map(String.init)
    }
}

/// Renders a `ServicePortTable` into kube-proxy's iptables layout (`pkg/proxy/iptables/proxier.go`): chain
/// names and hashes, rule text, probabilities, comments, masquerading, the no-endpoint REJECT/DROP rules.
/// Pure; `existingNATChains` (from `iptables-save -t nat`) tells which stale service chains to delete.
public enum IPTablesRenderer {
    /// Above this many endpoints kube-proxy leaves comments out of per-endpoint rules ("large cluster mode").
    public static let largeClusterEndpointsThreshold = 1000

    public static let jumpRules: [IPTablesTransaction.JumpRule] = {
        let newOnly = ["-m", "conntrack", "--ctstate", "NEW"]
        func jump(_ table: String, _ chain: String, _ target: String, _ comment: String, _ extra: [String] = []) -> IPTablesTransaction.JumpRule {
            IPTablesTransaction.JumpRule(table: table, chain: chain, arguments: extra + ["-m", "comment", "--comment", comment, "-j", target])
        }
        return [
            jump("filter", "INPUT", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals", newOnly),
            jump("filter", "FORWARD", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals", newOnly),
            jump("filter", "INPUT", "KUBE-NODEPORTS", "kubernetes health check service ports"),
            jump("filter", "FORWARD", "KUBE-SERVICES", "kubernetes service portals", newOnly),
            jump("filter", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", newOnly),
            jump("filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules"),
            jump("filter", "INPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", newOnly),
            jump("filter", "OUTPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", newOnly),
            jump("filter", "FORWARD", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", newOnly),
            jump("nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals"),
            jump("nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals"),
            jump("nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules"),
        ]
    }()

    /// kubelet's jumps to KUBE-FIREWALL (filter INPUT and OUTPUT, no comment), which kube-proxy ensures too
    /// so that the chain blocking incoming localnet connections is reached even where kubelet did not add
    /// them. Like kube-proxy, `--cleanup` leaves them (they are kubelet's).
    public static let kubeletJumpRules: [IPTablesTransaction.JumpRule] = [
        IPTablesTransaction.JumpRule(table: "filter", chain: "INPUT", arguments: ["-j", "KUBE-FIREWALL"]),
        IPTablesTransaction.JumpRule(table: "filter", chain: "OUTPUT", arguments: ["-j", "KUBE-FIREWALL"]),
    ]

    /// `%0.10f` of 1/n, as kube-proxy prints probabilities.
    public static func probability(_ n: Int) -> String {
        let scaled = (1.0 / Double(n) * 1e10).rounded()
        let whole = Int(scaled) / 10_000_000_000
        let fraction = String(Int(scaled) % 10_000_000_000)
        return "\(whole)." + String(repeating: "0", count: 10 - fraction.count) + fraction
    }

    /// Renders the family `options.isIPv6` names (iptables-restore for IPv4, ip6tables-restore for IPv6).
    public static func render(_ table: ServicePortTable, options: ServiceRuleOptions, existingNATChains: Set<String> = []) -> IPTablesTransaction {
        let options = options.forFamily(ipv6: options.isIPv6)
        var w = Writer(options: options)
        w.begin()
        let totalEndpoints = table.ports.reduce(0) { $0 + $1.endpoints.count }
        w.largeCluster = totalEndpoints > largeClusterEndpointsThreshold
        for port in table.ports where port.clusterIP != nil && port.isIPv6 == options.isIPv6 {
            w.service(port)
        }
        for chain in existingNATChains.subtracting(w.activeNATChains).sorted() where ChainNames.isServiceChain(chain) {
            w.natChains.append(chain)
            w.natRules.append("-X \(chain)")
        }
        w.finish()
        return IPTablesTransaction(jumpRules: jumpRules + kubeletJumpRules, filterChains: w.filterChains, filterRules: w.filterRules, natChains: w.natChains, natRules: w.natRules, activeNATChains: w.activeNATChains)
    }

    static func isV4(_ address: IPAddress) -> Bool {
        if case .v4 = address { return true }
        return false
    }

    /// Accumulates the four line buffers of one sync, in kube-proxy's order.
    struct Writer {
        let options: ServiceRuleOptions
        var filterChains: [String] = []
        var filterRules: [String] = []
        var natChains: [String] = []
        var natRules: [String] = []
        var activeNATChains: Set<String> = []
        var largeCluster = false

        init(options: ServiceRuleOptions) {
            self.options = options
        }

        var mark: String { options.masqueradeMark }

        mutating func begin() {
            filterChains = ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"]
            natChains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
            natRules.append("-A KUBE-POSTROUTING -m mark ! --mark \(mark)/\(mark) -j RETURN")
            natRules.append("-A KUBE-POSTROUTING -j MARK --xor-mark \(mark)")
            natRules.append(#"-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE"# + (options.randomFully ? " --random-fully" : ""))
            natRules.append("-A KUBE-MARK-MASQ -j MARK --or-mark \(mark)")
            // Localhost NodePorts exist in IPv4 only (route_localnet).
            if options.localhostNodePorts && !options.isIPv6 {
                filterChains.append("KUBE-FIREWALL")
                filterRules.append(#"-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"#)
            }
        }

        /// `-m comment --comment TEXT`, quoted as kube-proxy quotes it when it has spaces.
        func comment(_ text: String) -> String {
            text.contains(" ") ? "-m comment --comment \"\(text)\"" : "-m comment --comment \(text)"
        }

        /// A per-endpoint comment, left out in large-cluster mode.
        func endpointComment(_ text: String) -> String {
            largeCluster ? "" : " " + comment(text)
        }

        mutating func service(_ svc: ProxiedServicePort) {
            let proto = svc.protocol.rawValue
            let name = svc.name
            let match = "-m \(proto) -p \(proto)"
            let plan = TrafficPolicyPlan(svc, node: options.nodeName)
            let (clusterEndpoints, localEndpoints, hasEndpoints) = (plan.clusterEndpoints, plan.localEndpoints, plan.hasEndpoints)
            let clusterChain = ChainNames.service(svc)
            let localChain = ChainNames.serviceLocal(svc)
            let usesClusterChain = plan.usesClusterChain
            let usesLocalChain = plan.usesLocalChain
            let internalChain = svc.internalTrafficLocal ? localChain : clusterChain
            let hasInternal = plan.hasInternalEndpoints
            let externalPolicyChain = svc.externalTrafficLocal ? localChain : clusterChain
            let hasExternal = plan.hasExternalEndpoints
            let externalChain = ChainNames.external(svc)
            let usesExternalChain = plan.usesExternalChain
            let fwChain = ChainNames.firewall(svc)
            let usesFW = hasEndpoints && !svc.loadBalancerIPs.isEmpty && !svc.loadBalancerSourceRanges.isEmpty
            let lbChain = usesFW ? fwChain : externalChain

            var internalTarget = "", internalComment = "", externalTarget = "", externalComment = ""
            if !hasEndpoints {
                internalTarget = "REJECT"
                internalComment = "\(name) has no endpoints"
                externalTarget = "REJECT"
                externalComment = internalComment
            } else {
                if !hasInternal {
                    internalTarget = "DROP"
                    internalComment = "\(name) has no local endpoints"
                }
                if !hasExternal {
                    externalTarget = "DROP"
                    externalComment = "\(name) has no local endpoints"
                }
            }
            let port = svc.port
            let clusterIP = svc.clusterIP!.description
            if hasInternal {
                natRules.append("-A KUBE-SERVICES \(comment("\(name) cluster IP")) \(match) -d \(clusterIP) --dport \(port) -j \(internalChain)")
            } else {
                filterRules.append("-A KUBE-SERVICES \(comment(internalComment)) \(match) -d \(clusterIP) --dport \(port) -j \(internalTarget)")
            }
            for ip in svc.externalIPs {
                if hasEndpoints {
                    natRules.append("-A KUBE-SERVICES \(comment("\(name) external IP")) \(match) -d \(ip) --dport \(port) -j \(externalChain)")
                }
                if !hasExternal {
                    filterRules.append("-A KUBE-EXTERNAL-SERVICES \(comment(externalComment)) \(match) -d \(ip) --dport \(port) -j \(externalTarget)")
                }
            }
            for ip in svc.loadBalancerIPs {
                if hasEndpoints {
                    natRules.append("-A KUBE-SERVICES \(comment("\(name) loadbalancer IP")) \(match) -d \(ip) --dport \(port) -j \(lbChain)")
                }
                if usesFW {
                    filterRules.append("-A KUBE-PROXY-FIREWALL \(comment("\(name) traffic not accepted by \(fwChain)")) \(match) -d \(ip) --dport \(port) -j DROP")
                }
            }
            if !hasExternal {
                for ip in svc.loadBalancerIPs {
                    filterRules.append("-A KUBE-EXTERNAL-SERVICES \(comment(externalComment)) \(match) -d \(ip) --dport \(port) -j \(externalTarget)")
                }
            }
            if let nodePort = svc.nodePort {
                if hasEndpoints {
                    natRules.append("-A KUBE-NODEPORTS \(comment(name)) \(match) --dport \(nodePort) -j \(externalChain)")
                }
                if !hasExternal {
                    filterRules.append("-A KUBE-EXTERNAL-SERVICES \(comment(externalComment)) -m addrtype --dst-type LOCAL \(match) --dport \(nodePort) -j \(externalTarget)")
                }
            }
            if let health = svc.healthCheckNodePort {
                filterRules.append("-A KUBE-NODEPORTS \(comment("\(name) health check node port")) -m tcp -p tcp --dport \(health) -j ACCEPT")
            }

            if hasInternal {
                let args = "\(comment("\(name) cluster IP")) \(match) -d \(clusterIP) --dport \(port)"
                if options.masqueradeAll {
                    natRules.append("-A \(internalChain) \(args) -j KUBE-MARK-MASQ")
                } else if let cidr = options.clusterCIDR {
                    natRules.append("-A \(internalChain) \(args) ! -s \(cidr) -j KUBE-MARK-MASQ")
                }
            }
            if usesExternalChain {
                natChains.append(externalChain)
                activeNATChains.insert(externalChain)
                if !svc.externalTrafficLocal {
                    natRules.append("-A \(externalChain) \(comment("masquerade traffic for \(name) external destinations")) -j KUBE-MARK-MASQ")
                } else {
                    if let cidr = options.clusterCIDR {
                        natRules.append("-A \(externalChain) \(comment("pod traffic for \(name) external destinations")) -s \(cidr) -j \(clusterChain)")
                    }
                    natRules.append("-A \(externalChain) \(comment("masquerade LOCAL traffic for \(name) external destinations")) -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
                    natRules.append("-A \(externalChain) \(comment("route LOCAL traffic for \(name) external destinations")) -m addrtype --src-type LOCAL -j \(clusterChain)")
                }
                if hasExternal {
                    natRules.append("-A \(externalChain) -j \(externalPolicyChain)")
                }
            }
            if usesFW {
                natChains.append(fwChain)
                activeNATChains.insert(fwChain)
                let head = "-A \(fwChain) \(comment("\(name) loadbalancer IP"))"
                var allowFromNode = false
                for range in svc.loadBalancerSourceRanges {
                    natRules.append("\(head) -s \(range) -j \(externalChain)")
                    if let nodeIP = options.nodeIP, range.contains(nodeIP) { allowFromNode = true }
                }
                if allowFromNode {
                    for ip in svc.loadBalancerIPs { natRules.append("\(head) -s \(ip) -j \(externalChain)") }
                }
                natRules.append("-A \(fwChain) \(comment("other traffic to \(name) will be dropped by KUBE-PROXY-FIREWALL"))")
            }
            if usesClusterChain {
                natChains.append(clusterChain)
                activeNATChains.insert(clusterChain)
                endpointJumps(svc, chain: clusterChain, endpoints: clusterEndpoints)
            }
            if usesLocalChain {
                natChains.append(localChain)
                activeNATChains.insert(localChain)
                endpointJumps(svc, chain: localChain, endpoints: localEndpoints)
            }
            // Every endpoint either policy can reach gets its chain.
            for endpoint in plan.reachableEndpoints {
                let chain = ChainNames.endpoint(svc, endpoint)
                natChains.append(chain)
                activeNATChains.insert(chain)
                let head = "-A \(chain)" + endpointComment(name)
                natRules.append("\(head) -s \(endpoint.ip) -j KUBE-MARK-MASQ")
                let affinity = svc.affinityTimeoutSeconds != nil ? " -m recent --name \(chain) --set" : ""
                natRules.append("\(head)\(affinity) \(match) -j DNAT --to-destination \(endpoint.hostPort)")
            }
        }

        /// Session-affinity rules first, then one probabilistic jump per endpoint, the last unconditional.
        mutating func endpointJumps(_ svc: ProxiedServicePort, chain: String, endpoints: [ProxiedEndpoint]) {
            if let timeout = svc.affinityTimeoutSeconds {
                for endpoint in endpoints {
                    let target = ChainNames.endpoint(svc, endpoint)
                    natRules.append("-A \(chain)" + endpointComment("\(svc.name) -> \(endpoint.hostPort)") + " -m recent --name \(target) --rcheck --seconds \(timeout) --reap -j \(target)")
                }
            }
            for (i, endpoint) in endpoints.enumerated() {
                let target = ChainNames.endpoint(svc, endpoint)
                var line = "-A \(chain)" + endpointComment("\(svc.name) -> \(endpoint.hostPort)")
                if i < endpoints.count - 1 {
                    line += " -m statistic --mode random --probability \(IPTablesRenderer.probability(endpoints.count - i))"
                }
                natRules.append(line + " -j \(target)")
            }
        }

        mutating func finish() {
            let lastComment = #"-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain""#
            if options.nodePortAddresses.isEmpty {
                let localhost = options.isIPv6 ? " ! -d ::1/128" : options.localhostNodePorts ? "" : " ! -d 127.0.0.0/8"
                natRules.append("-A KUBE-SERVICES \(lastComment) -m addrtype --dst-type LOCAL\(localhost) -j KUBE-NODEPORTS")
            } else {
                for ip in options.nodePortAddresses {
                    if case .v4(let bits) = ip, bits >> 24 == 127, !options.localhostNodePorts { continue }
                    if ip == IPAddress(parsing: "::1") { continue }
                    natRules.append("-A KUBE-SERVICES \(lastComment) -d \(ip) -j KUBE-NODEPORTS")
                }
            }
            if !options.conntrackTCPLiberal {
                filterRules.append("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP")
            }
            filterRules.append(#"-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark "# + "\(mark)/\(mark) -j ACCEPT")
            filterRules.append(#"-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"#)
        }
    }
}
