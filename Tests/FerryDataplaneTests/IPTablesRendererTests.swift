import FerryDataplane
import FerryModel
import Testing

@Suite struct IPTablesRendererTests {
    static func ip(_ text: String) -> IPAddress { IPAddress(parsing: text)! }
    static func ep(_ text: String, node: String? = nil) -> ProxiedEndpoint { ProxiedEndpoint(ip: ip(text), port: 80, nodeName: node) }

    @Test func chainNamesAreKubeProxys() {
        let svc = ProxiedServicePort(namespace: "ns1", service: "svc1", portName: "p80", clusterIP: Self.ip("10.20.30.41"), port: 80)
        #expect(ChainNames.service(svc) == "KUBE-SVC-XPGD46QRK7WJZT7O")
        #expect(ChainNames.endpoint(svc, Self.ep("10.180.0.1")) == "KUBE-SEP-SXIVWICOYRO3J4NJ")
    }

    @Test(arguments: [(2, "0.5000000000"), (3, "0.3333333333"), (4, "0.2500000000"), (7, "0.1428571429"), (1000, "0.0010000000")])
    func probabilitiesPrintAsGoDoes(n: Int, text: String) {
        #expect(IPTablesRenderer.probability(n) == text)
    }

    /// The six Services of kube-proxy's own overall test, and the rules it writes for them (upstream's
    /// expected iptables state, kube-proxy's chains only).
    @Test func theOverallLayoutMatchesKubeProxy() {
        let table = ServicePortTable(ports: [
            ProxiedServicePort(namespace: "ns1", service: "svc1", portName: "p80", clusterIP: Self.ip("172.30.0.41"), port: 80, endpoints: [Self.ep("10.180.0.1")]),
            ProxiedServicePort(namespace: "ns2", service: "svc2", portName: "p80", clusterIP: Self.ip("172.30.0.42"), port: 80, nodePort: 3001,
                               externalIPs: [Self.ip("192.168.99.22")], loadBalancerIPs: [Self.ip("1.2.3.4")], externalTrafficLocal: true,
                               healthCheckNodePort: 30000, endpoints: [Self.ep("10.180.0.2", node: "other-node")]),
            ProxiedServicePort(namespace: "ns3", service: "svc3", portName: "p80", clusterIP: Self.ip("172.30.0.43"), port: 80, nodePort: 3003, endpoints: [Self.ep("10.180.0.3")]),
            ProxiedServicePort(namespace: "ns4", service: "svc4", portName: "p80", clusterIP: Self.ip("172.30.0.44"), port: 80, externalIPs: [Self.ip("192.168.99.33")],
                               endpoints: [Self.ep("10.180.0.5"), Self.ep("10.180.0.4")]),
            ProxiedServicePort(namespace: "ns5", service: "svc5", portName: "p80", clusterIP: Self.ip("172.30.0.45"), port: 80, nodePort: 3002,
                               loadBalancerIPs: [Self.ip("5.6.7.8")], loadBalancerSourceRanges: [IPRange(parsing: "203.0.113.0/25")!], endpoints: [Self.ep("10.180.0.3")]),
            ProxiedServicePort(namespace: "ns6", service: "svc6", portName: "p80", clusterIP: Self.ip("172.30.0.46"), port: 80),
        ])
        var options = ServiceRuleOptions(nodeName: "test-node", nodeIP: Self.ip("192.168.0.2"), clusterCIDR: IPRange(parsing: "10.0.0.0/8"))
        options.randomFully = false
        let t = IPTablesRenderer.render(table, options: options)
        #expect(Set(t.filterChains) == ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"])
        let filter = """
        -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
        -A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
        -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP
        -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
        -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
        -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
        -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
        -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
        -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
        """
        #expect(Set(t.filterRules) == Set(filter.split(separator: "\n").map(String.init)), "\(Set(t.filterRules).symmetricDifference(filter.split(separator: "\n").map(String.init)))")
        #expect(Set(t.natChains) == [
            "KUBE-EXT-4SW47YFZTEDKD3PK", "KUBE-EXT-GNZBNJ2PO5MGZ6GT", "KUBE-EXT-NUKIZ6OKUXPJNT4C", "KUBE-EXT-X27LE4BHSL4DOUIK", "KUBE-FW-NUKIZ6OKUXPJNT4C",
            "KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-SEP-C6EBXVWJJZMIWKLZ", "KUBE-SEP-I77PXRDZVX7PMWMN", "KUBE-SEP-OYPFS5VJICHGATKP",
            "KUBE-SEP-RS4RBKLTHTF2IUXJ", "KUBE-SEP-SXIVWICOYRO3J4NJ", "KUBE-SEP-UKSFD7AGPMPPLUHC", "KUBE-SERVICES", "KUBE-SVC-4SW47YFZTEDKD3PK",
            "KUBE-SVC-GNZBNJ2PO5MGZ6GT", "KUBE-SVC-NUKIZ6OKUXPJNT4C", "KUBE-SVC-X27LE4BHSL4DOUIK", "KUBE-SVC-XPGD46QRK7WJZT7O",
        ])
        let nat = """
        -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
        -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
        -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
        -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
        -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
        -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
        -A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
        -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
        -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
        -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
        -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
        -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
        -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
        -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK
        -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
        -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
        -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
        -A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j KUBE-MARK-MASQ
        -A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK
        -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
        -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
        -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
        -A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
        -A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
        -A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
        -A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
        -A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
        -A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
        -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
        -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
        -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
        -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
        -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
        -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
        -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
        -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
        -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
        -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
        -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
        -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
        -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
        -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
        -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
        -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
        -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
        -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
        """
        let expected = Set(nat.split(separator: "\n").map(String.init))
        #expect(Set(t.natRules) == expected, "\(Set(t.natRules).symmetricDifference(expected).sorted())")
        // Order inside a chain matters: the nodeports jump is the last rule of KUBE-SERVICES.
        #expect(t.natRules.last { $0.hasPrefix("-A KUBE-SERVICES ") }?.contains("KUBE-NODEPORTS") == true)
        #expect(t.restoreInput.hasPrefix("*filter\n:KUBE-SERVICES - [0:0]\n") && t.restoreInput.hasSuffix("COMMIT\n"))
    }

    @Test func sessionAffinityAndStaleChains() {
        let svc = ProxiedServicePort(namespace: "ns1", service: "svc1", portName: "p80", clusterIP: Self.ip("172.30.0.41"), port: 80,
                                     affinityTimeoutSeconds: 10800, endpoints: [Self.ep("10.180.0.1"), Self.ep("10.180.0.2")])
        let t = IPTablesRenderer.render(ServicePortTable(ports: [svc]), options: ServiceRuleOptions(nodeName: "n"), existingNATChains: ["KUBE-SVC-OLDOLDOLDOLDOLDO", "KUBE-SERVICES", "DOCKER"])
        let sep1 = ChainNames.endpoint(svc, Self.ep("10.180.0.1"))
        #expect(t.natRules.contains("-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -m recent --name \(sep1) --rcheck --seconds 10800 --reap -j \(sep1)"))
        #expect(t.natRules.contains("-A \(sep1) -m comment --comment ns1/svc1:p80 -m recent --name \(sep1) --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80"))
        // Without --cluster-cidr no masquerade rule in the service chain (kube-proxy's undetected local traffic).
        #expect(!t.natRules.contains { $0.hasPrefix("-A KUBE-SVC-XPGD46QRK7WJZT7O") && $0.hasSuffix("KUBE-MARK-MASQ") })
        // A stale service chain of an earlier sync is flushed and deleted; other chains are never touched.
        #expect(t.natChains.contains("KUBE-SVC-OLDOLDOLDOLDOLDO") && t.natRules.contains("-X KUBE-SVC-OLDOLDOLDOLDOLDO"))
        #expect(!t.natRules.contains("-X DOCKER") && !t.natRules.contains("-X KUBE-SERVICES"))
        #expect(t.natRules.contains(#"-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully"#))
    }

    /// Both policies Local and a local endpoint: the external chain's short-circuit rules jump to the cluster
    /// chain, so it is written too (kube-proxy's UsesClusterEndpoints), and restore would fail without it.
    @Test func bothPoliciesLocalKeepTheClusterChain() {
        let svc = ProxiedServicePort(namespace: "ns", service: "b", portName: "p", clusterIP: Self.ip("172.30.0.51"), port: 80, nodePort: 30080,
                                     internalTrafficLocal: true, externalTrafficLocal: true,
                                     endpoints: [Self.ep("10.180.0.8", node: "n"), Self.ep("10.180.0.9", node: "elsewhere")])
        let t = IPTablesRenderer.render(ServicePortTable(ports: [svc]), options: ServiceRuleOptions(nodeName: "n"))
        let referenced = Set(t.natRules.compactMap { line -> String? in
            let words = line.split(separator: " ")
            guard let j = words.firstIndex(of: "-j"), j + 1 < words.count, words[j + 1].hasPrefix("KUBE-SVC-") else { return nil }
            return String(words[j + 1])
        })
        #expect(referenced.contains(ChainNames.service(svc)))
        #expect(referenced.isSubset(of: Set(t.natChains)))
    }

    /// IPv6 rules for ip6tables-restore: IPv6 Service ports only, NodePorts on every local address but ::1,
    /// no localhost-NodePort guard (route_localnet is IPv4 only); the tracer reads them back.
    @Test func ip6tablesRulesForIPv6Services() {
        let v6 = ProxiedServicePort(namespace: "demo", service: "web", portName: "http", clusterIP: Self.ip("fd00:10:96::10"), port: 80, nodePort: 30080,
                                    endpoints: [ProxiedEndpoint(ip: Self.ip("fd00:10:244:1::5"), port: 8080)])
        let v4 = ProxiedServicePort(namespace: "demo", service: "web", portName: "http", clusterIP: Self.ip("10.96.0.10"), port: 80, endpoints: [Self.ep("10.244.1.5")])
        var options = ServiceRuleOptions(nodeName: "node")
        options.clusterCIDRs = [IPRange(parsing: "10.244.0.0/16")!, IPRange(parsing: "fd00:10:244::/56")!]
        let t = IPTablesRenderer.render(ServicePortTable(ports: [v4, v6]), options: options.forFamily(ipv6: true))
        let svc = ChainNames.service(v6)
        #expect(t.natRules.contains(#"-A KUBE-SERVICES -m comment --comment "demo/web:http cluster IP" -m tcp -p tcp -d fd00:10:96::10 --dport 80 -j \#(svc)"#))
        #expect(t.natRules.contains(#"-A \#(svc) -m comment --comment "demo/web:http cluster IP" -m tcp -p tcp -d fd00:10:96::10 --dport 80 ! -s fd00:10:244::/56 -j KUBE-MARK-MASQ"#))
        #expect(t.natRules.contains { $0.hasSuffix("-j DNAT --to-destination [fd00:10:244:1::5]:8080") })
        #expect(t.natRules.contains { $0.contains("-m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS") })
        #expect(!t.filterChains.contains("KUBE-FIREWALL") && !t.restoreInput.contains("10.96.0.10"))
        let outcomes = IPTablesTracer.trace(.init(source: Self.ip("fd00:10:244:3::9"), destination: Self.ip("fd00:10:96::10"), destinationPort: 80, protocol: .tcp),
                                            through: t, localAddresses: [])
        #expect(outcomes.map(\.action) == ["DNAT [fd00:10:244:1::5]:8080"], "\(outcomes)")
        #expect(!IPTablesRenderer.render(ServicePortTable(ports: [v4, v6]), options: options).restoreInput.contains("fd00:"))
    }
}
