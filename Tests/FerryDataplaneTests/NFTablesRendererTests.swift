import FerryDataplane
import FerryModel
import Testing

@Suite struct NFTablesRendererTests {
    static func ip(_ text: String) -> IPAddress { IPAddress(parsing: text)! }
    static func ep(_ text: String, node: String? = nil) -> ProxiedEndpoint { ProxiedEndpoint(ip: ip(text), port: 80, nodeName: node) }

    /// The six Services of kube-proxy's TestOverallNFTablesRules, with its node settings.
    static let overall = ServicePortTable(ports: [
        ProxiedServicePort(namespace: "ns1", service: "svc1", portName: "p80", clusterIP: ip("172.30.0.41"), port: 80, endpoints: [ep("10.180.0.1")]),
        ProxiedServicePort(namespace: "ns2", service: "svc2", portName: "p80", clusterIP: ip("172.30.0.42"), port: 80, nodePort: 3001,
                           externalIPs: [ip("192.168.99.22")], loadBalancerIPs: [ip("1.2.3.4")], externalTrafficLocal: true,
                           healthCheckNodePort: 30000, endpoints: [ep("10.180.0.2")]),
        ProxiedServicePort(namespace: "ns3", service: "svc3", portName: "p80", clusterIP: ip("172.30.0.43"), port: 80, nodePort: 3003, endpoints: [ep("10.180.0.3")]),
        ProxiedServicePort(namespace: "ns4", service: "svc4", portName: "p80", clusterIP: ip("172.30.0.44"), port: 80, externalIPs: [ip("192.168.99.33")],
                           endpoints: [ep("10.180.0.4"), ep("10.180.0.5", node: "test-node")]),
        ProxiedServicePort(namespace: "ns5", service: "svc5", portName: "p80", clusterIP: ip("172.30.0.45"), port: 80, nodePort: 3002,
                           loadBalancerIPs: [ip("5.6.7.8")], loadBalancerSourceRanges: [IPRange(parsing: "203.0.113.0/25")!], affinityTimeoutSeconds: 10800,
                           healthCheckNodePort: 30000, endpoints: [ep("10.180.0.3")]),
        ProxiedServicePort(namespace: "ns6", service: "svc6", portName: "p80", clusterIP: ip("172.30.0.46"), port: 80),
    ])

    static var options: ServiceRuleOptions {
        var options = ServiceRuleOptions(nodeName: "test-node", nodeIP: ip("192.168.0.2"), clusterCIDR: IPRange(parsing: "10.0.0.0/8"))
        options.nodePortAddresses = [ip("192.168.0.2")]
        options.serviceCIDRs = [IPRange(parsing: "172.30.0.0/16")!]
        return options
    }

    @Test func namesAreKubeProxys() {
        let svc = ProxiedServicePort(namespace: "ns1", service: "svc1", portName: "p80", clusterIP: Self.ip("172.30.0.41"), port: 80)
        #expect(NFTablesNames.service(svc) == "service-ULMVA6XW-ns1/svc1/tcp/p80")
        #expect(NFTablesNames.endpoint(svc, Self.ep("10.180.0.1")) == "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80")
        let v6 = ProxiedEndpoint(ip: Self.ip("fd00::1"), port: 80)
        #expect(NFTablesNames.endpoint(svc, v6).hasSuffix("-ns1/svc1/tcp/p80__fd00..1/80"))
        let long = ProxiedServicePort(namespace: String(repeating: "n", count: 63), service: String(repeating: "s", count: 63), portName: String(repeating: "p", count: 63),
                                      clusterIP: Self.ip("172.30.0.41"), port: 80)
        let name = NFTablesNames.endpoint(long, ProxiedEndpoint(ip: Self.ip("fd00:1234:5678:9abc:def0:1234:5678:9abc"), port: 65535))
        #expect(name.count == "endpoint-".count + 240 && name.hasSuffix("..."))
    }

    /// kube-proxy's expected state for its overall test, line for line (compared as sets, as its test does).
    @Test func theOverallLayoutMatchesKubeProxy() {
        let t = NFTablesRenderer.render(Self.overall, options: Self.options)
        let expected = #"""
        add table ip kube-proxy { comment "rules for kube-proxy" ; }
        add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
        add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
        add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
        add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
        add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
        add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
        add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
        add chain ip kube-proxy cluster-ips-check
        add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
        add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }
        add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
        add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }
        add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
        add chain ip kube-proxy firewall-check
        add chain ip kube-proxy mark-for-masquerade
        add chain ip kube-proxy masquerading
        add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
        add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
        add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
        add chain ip kube-proxy nodeport-endpoints-check
        add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
        add chain ip kube-proxy services
        add chain ip kube-proxy service-endpoints-check
        add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
        add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
        add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
        add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
        add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
        add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
        add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
        add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
        add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
        add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
        add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
        add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
        add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
        add rule ip kube-proxy masquerading mark set mark xor 0x4000
        add rule ip kube-proxy masquerading masquerade fully-random
        add rule ip kube-proxy nat-output jump services
        add rule ip kube-proxy nat-postrouting jump masquerading
        add rule ip kube-proxy nat-prerouting jump services
        add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
        add rule ip kube-proxy reject-chain reject
        add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
        add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
        add element ip kube-proxy nodeport-ips { 192.168.0.2 }
        add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
        add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
        add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
        add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }
        add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
        add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
        add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80
        add element ip kube-proxy cluster-ips { 172.30.0.41 }
        add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
        add chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
        add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
        add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
        add chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
        add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
        add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
        add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
        add chain ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80
        add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
        add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80
        add element ip kube-proxy cluster-ips { 172.30.0.42 }
        add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }
        add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
        add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
        add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
        add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }
        add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }
        add element ip kube-proxy no-endpoint-services { 192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop }
        add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
        add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
        add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
        add chain ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80
        add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
        add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
        add chain ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
        add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
        add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
        add element ip kube-proxy cluster-ips { 172.30.0.43 }
        add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
        add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }
        add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
        add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
        add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
        add chain ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80
        add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade
        add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80
        add chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
        add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
        add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80
        add chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
        add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
        add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80
        add element ip kube-proxy cluster-ips { 172.30.0.44 }
        add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
        add element ip kube-proxy service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }
        add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
        add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
        add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
        add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
        add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
        add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
        add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
        add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80
        add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
        add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
        add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
        add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
        add chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
        add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop
        add element ip kube-proxy cluster-ips { 172.30.0.45 }
        add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
        add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
        add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
        add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }
        add element ip kube-proxy cluster-ips { 172.30.0.46 }
        add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
        """#
        let want = Set(expected.split(separator: "\n").map(String.init))
        let got = Set(t.ruleset.commands)
        #expect(got == want, "missing: \(want.subtracting(got).sorted())\nextra: \(got.subtracting(want).sorted())")
        #expect(t.ruleset.commands.count == got.count, "no line twice")
    }

    /// The transaction creates every chain and set before anything refers to it, keeps affinity entries,
    /// flushes stale service chains (deleted later) and deletes stale affinity sets at once.
    @Test func theTransactionOrdersItsCommandsAndHandlesStaleObjects() {
        let stale = "service-AAAAAAAA-gone/svc/tcp/p80"
        let staleSet = "affinity-AAAAAAAA-gone/svc/tcp/p80__10.0.0.9/80"
        let t = NFTablesRenderer.render(Self.overall, options: Self.options, existingChains: [stale, "services", "service-ULMVA6XW-ns1/svc1/tcp/p80"], existingSets: [staleSet, "cluster-ips"])
        #expect(t.staleChains == [stale])
        #expect(t.staleSets == [staleSet])
        let lines = t.script.split(separator: "\n").map(String.init)
        func index(_ prefix: String) -> Int { lines.firstIndex { $0.hasPrefix(prefix) }! }
        #expect(lines.contains("flush chain ip kube-proxy \(stale)"))
        #expect(!lines.contains("delete chain ip kube-proxy \(stale)"))
        #expect(lines.contains("delete set ip kube-proxy \(staleSet)"))
        #expect(!lines.contains { $0.hasPrefix("flush set ip kube-proxy affinity-") })
        #expect(lines.contains("flush map ip kube-proxy service-ips"))
        #expect(index("add chain ip kube-proxy endpoint-") < index("add rule "))
        #expect(index("add set ip kube-proxy affinity-") < index("add rule "))
        #expect(index("delete set") > index("flush chain ip kube-proxy \(stale)"))
        #expect(index("add rule ") < index("add element "))
        #expect(NFTablesTransaction.deleteChains([stale]) == "delete chain ip kube-proxy \(stale)\n")
    }

    /// Without --nodeport-addresses NodePorts answer on every local address except loopback, and the
    /// nodeport-ips set goes away.
    @Test func nodePortsOnEveryLocalAddress() {
        var options = Self.options
        options.nodePortAddresses = []
        options.serviceCIDRs = []
        let t = NFTablesRenderer.render(Self.overall, options: options)
        #expect(t.ruleset.chain("services")!.rules.map(\.text).contains("fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"))
        #expect(t.ruleset.collection("nodeport-ips") == nil)
        #expect(t.script.contains("delete set ip kube-proxy nodeport-ips"))
        #expect(t.ruleset.chain("cluster-ips-check")!.rules.count == 1)
    }

    /// Local policies: internal Local without a local endpoint drops ClusterIP traffic; both Local with a
    /// local endpoint uses the local chain and still writes the cluster chain for the short-circuit rules.
    @Test func localTrafficPolicies() {
        let noLocal = ProxiedServicePort(namespace: "ns", service: "a", portName: "p", clusterIP: Self.ip("172.30.0.50"), port: 80, internalTrafficLocal: true,
                                         endpoints: [Self.ep("10.180.0.7", node: "elsewhere")])
        let bothLocal = ProxiedServicePort(namespace: "ns", service: "b", portName: "p", clusterIP: Self.ip("172.30.0.51"), port: 80, nodePort: 30080,
                                           internalTrafficLocal: true, externalTrafficLocal: true,
                                           endpoints: [Self.ep("10.180.0.8", node: "test-node"), Self.ep("10.180.0.9", node: "elsewhere")])
        let t = NFTablesRenderer.render(ServicePortTable(ports: [noLocal, bothLocal]), options: Self.options)
        let noEndpoint = t.ruleset.collection("no-endpoint-services")!.elements
        #expect(noEndpoint.contains { $0.key == "172.30.0.50 . tcp . 80" && $0.value == "drop" && $0.comment == "ns/a:p" })
        let ips = t.ruleset.collection("service-ips")!.elements
        #expect(ips.contains { $0.key == "172.30.0.51 . tcp . 80" && $0.value == "goto \(NFTablesNames.serviceLocal(bothLocal))" })
        #expect(t.ruleset.chain(NFTablesNames.service(bothLocal)) != nil)
        #expect(t.ruleset.chain(NFTablesNames.serviceLocal(bothLocal))!.rules.last!.text.hasPrefix("numgen random mod 1 vmap"))
        #expect(t.ruleset.chain(NFTablesNames.external(bothLocal))!.rules.last!.text == "goto \(NFTablesNames.serviceLocal(bothLocal))")
    }

    /// IPv6: the same layout in an `ip6` table, with IPv6 types and matches; each family's render holds only
    /// its own Service ports. The tracer follows an IPv6 packet through it.
    @Test func anIPv6TableForIPv6Services() {
        let v6 = ProxiedServicePort(namespace: "demo", service: "web", portName: "http", clusterIP: Self.ip("fd00:10:96::10"), port: 80, nodePort: 30080,
                                    endpoints: [ProxiedEndpoint(ip: Self.ip("fd00:10:244:1::5"), port: 8080), ProxiedEndpoint(ip: Self.ip("fd00:10:244:2::7"), port: 8080)])
        let v4 = ProxiedServicePort(namespace: "demo", service: "web", portName: "http", clusterIP: Self.ip("10.96.0.10"), port: 80, endpoints: [Self.ep("10.244.1.5")])
        let table = ServicePortTable(ports: [v6, v4])
        var options = ServiceRuleOptions(nodeName: "node")
        options.clusterCIDRs = [IPRange(parsing: "10.244.0.0/16")!, IPRange(parsing: "fd00:10:244::/56")!]
        options.nodeIPs = [Self.ip("192.168.0.2"), Self.ip("2001:db8::2")]
        let t = NFTablesRenderer.render(table, options: options.forFamily(ipv6: true))
        let lines = Set(t.ruleset.commands)
        let service = NFTablesNames.service(v6)
        let endpoint = NFTablesNames.endpoint(v6, v6.endpoints[0])
        #expect(endpoint.hasSuffix("-demo/web/tcp/http__fd00.10.244.1..5/8080"))
        for line in [
            #"add table ip6 kube-proxy { comment "rules for kube-proxy" ; }"#,
            #"add set ip6 kube-proxy cluster-ips { type ipv6_addr ; comment "Active ClusterIPs" ; }"#,
            #"add map ip6 kube-proxy service-ips { type ipv6_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }"#,
            "add rule ip6 kube-proxy services ip6 daddr . meta l4proto . th dport vmap @service-ips",
            "add rule ip6 kube-proxy services fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @service-nodeports",
            "add rule ip6 kube-proxy \(service) ip6 daddr fd00:10:96::10 ip6 saddr != fd00:10:244::/56 jump mark-for-masquerade",
            "add rule ip6 kube-proxy \(endpoint) ip6 saddr fd00:10:244:1::5 jump mark-for-masquerade",
            "add rule ip6 kube-proxy \(endpoint) meta l4proto tcp dnat to [fd00:10:244:1::5]:8080",
            "add element ip6 kube-proxy service-ips { fd00:10:96::10 . tcp . 80 : goto \(service) }",
        ] {
            #expect(lines.contains(line), "\(line)")
        }
        #expect(!t.script.contains("10.96.0.10") && t.script.contains("delete set ip6 kube-proxy nodeport-ips"))
        let ipv4 = NFTablesRenderer.render(table, options: options)
        #expect(ipv4.ruleset.family == "ip" && !ipv4.script.contains("fd00:") && ipv4.script.contains("10.96.0.10 . tcp . 80"))

        let packet = RuleTrace.Packet(source: Self.ip("fd00:10:244:3::9"), destination: Self.ip("fd00:10:96::10"), destinationPort: 80, protocol: .tcp)
        let outcomes = NFTablesTracer.trace(packet, through: t.ruleset, localAddresses: options.nodeIPs)
        #expect(outcomes.map(\.action).sorted() == ["DNAT [fd00:10:244:1::5]:8080", "DNAT [fd00:10:244:2::7]:8080"] && outcomes.allSatisfy { !$0.masqueraded })
        let nodePort = NFTablesTracer.trace(.init(source: Self.ip("2001:db8:9::1"), destination: Self.ip("2001:db8::2"), destinationPort: 30080, protocol: .tcp),
                                            through: t.ruleset, localAddresses: options.nodeIPs)
        #expect(nodePort.count == 2 && nodePort.allSatisfy { $0.masqueraded && $0.action.hasPrefix("DNAT [fd00:10:244:") }, "\(nodePort)")
    }
}

/// Partial syncs: only what changed since the last applied ruleset is written.
@Suite struct NFTablesPartialSyncTests {
    typealias R = NFTablesRendererTests

    /// The overall table with svc4's second endpoint moved and svc6 (no endpoints) gone.
    static var changed: ServicePortTable {
        var ports = R.overall.ports.filter { $0.service != "svc6" }
        let i = ports.firstIndex { $0.service == "svc4" }!
        ports[i].endpoints = [R.ep("10.180.0.4"), R.ep("10.180.0.9", node: "test-node")]
        return ServicePortTable(ports: ports)
    }

    @Test func aChangeWritesOnlyItsChainsAndElements() {
        let first = NFTablesRenderer.render(R.overall, options: R.options)
        let next = NFTablesRenderer.render(Self.changed, options: R.options, existingChains: Set(first.ruleset.chains.map(\.name)), existingSets: Set(first.ruleset.collections.map(\.name)))
        let script = next.script(after: first.ruleset)
        let lines = script.split(separator: "\n").map(String.init)
        // svc4's service chain is refilled (its endpoint list changed), the new endpoint chain added, the
        // old one flushed as stale; svc6's map elements deleted; nothing of svc1 is written.
        let svc4 = next.ruleset.chains.first { $0.name.hasPrefix("service-") && $0.name.hasSuffix("ns4/svc4/tcp/p80") }!.name
        #expect(lines.contains("flush chain ip kube-proxy \(svc4)"))
        #expect(lines.contains { $0.hasPrefix("add chain ip kube-proxy endpoint-") && $0.contains("ns4/svc4/tcp/p80__10.180.0.9/80") })
        #expect(lines.contains { $0.hasPrefix("flush chain ip kube-proxy endpoint-") && $0.contains("__10.180.0.5/80") })
        #expect(lines.contains { $0.hasPrefix("delete element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80") })
        #expect(!script.contains("ns1/svc1"), "\(script)")
        #expect(lines.count < 30, "\(lines.count) lines: \(script)")
        #expect(!lines.contains { $0.hasPrefix("flush map") || $0.hasPrefix("flush set") })
        // Without a previous ruleset, or when nothing changed: the whole table, or almost nothing.
        #expect(next.script(after: nil) == next.script)
        let same = NFTablesRenderer.render(Self.changed, options: R.options, existingChains: Set(next.ruleset.chains.map(\.name)), existingSets: Set(next.ruleset.collections.map(\.name)))
        #expect(same.script(after: next.ruleset).split(separator: "\n").count == 1, "only the table's add: \(same.script(after: next.ruleset))")
    }
}
