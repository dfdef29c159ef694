import FerryDataplane
import FerryModel
import Testing

/// Packet flows of kube-proxy's nftables tests (TestNoEndpointsReject, TestClusterIPGeneral, TestLoadBalancer)
/// followed through Ferry's rendered table.
@Suite struct NFTablesTracerTests {
    static func ip(_ text: String) -> IPAddress { IPAddress(parsing: text)! }
    static let node = ip("192.168.0.2")

    static let ruleset: NFTablesRuleset = {
        func ep(_ text: String, _ port: Int = 80) -> ProxiedEndpoint { ProxiedEndpoint(ip: ip(text), port: port) }
        let table = ServicePortTable(ports: [
            // No endpoints at all: REJECT everywhere.
            ProxiedServicePort(namespace: "ns0", service: "empty", portName: "p80", clusterIP: ip("172.30.0.40"), port: 80, nodePort: 3001,
                               externalIPs: [ip("192.168.99.11")], loadBalancerIPs: [ip("1.2.3.4")]),
            ProxiedServicePort(namespace: "ns1", service: "svc1", portName: "http", clusterIP: ip("172.30.0.41"), port: 80, endpoints: [ep("10.180.0.1")]),
            ProxiedServicePort(namespace: "ns2", service: "svc2", portName: "http", clusterIP: ip("172.30.0.42"), port: 80, endpoints: [ep("10.180.0.1"), ep("10.180.2.1")]),
            ProxiedServicePort(namespace: "ns2", service: "svc2", portName: "dns-udp", protocol: .udp, clusterIP: ip("172.30.0.42"), port: 53,
                               endpoints: [ep("10.180.0.1", 53), ep("10.180.2.1", 53)]),
            ProxiedServicePort(namespace: "ns2", service: "svc2", portName: "dns-tcp", clusterIP: ip("172.30.0.42"), port: 53,
                               endpoints: [ep("10.180.0.1", 5353), ep("10.180.2.1", 5353)]),
            // A load balancer with source ranges.
            ProxiedServicePort(namespace: "ns5", service: "lb", portName: "p80", clusterIP: ip("172.30.0.45"), port: 80, nodePort: 3005,
                               loadBalancerIPs: [ip("5.6.7.8")], loadBalancerSourceRanges: [IPRange(parsing: "203.0.113.0/25")!], endpoints: [ep("10.180.0.3")]),
        ])
        var options = ServiceRuleOptions(nodeName: "test-node", nodeIP: node, clusterCIDR: IPRange(parsing: "10.0.0.0/8"))
        options.nodePortAddresses = [node]
        options.serviceCIDRs = [IPRange(parsing: "172.30.0.0/16")!]
        return NFTablesRenderer.render(table, options: options).ruleset
    }()

    static func trace(_ source: String, _ destination: String, _ port: Int, _ proto: TransportProtocol = .tcp) -> [RuleTrace.Outcome] {
        NFTablesTracer.trace(.init(source: ip(source), destination: ip(destination), destinationPort: port, protocol: proto), through: ruleset, localAddresses: [node])
    }

    @Test(arguments: [("10.0.0.2", "172.30.0.40", 80), ("203.0.113.2", "192.168.99.11", 80), ("10.0.0.2", "192.168.0.2", 3001),
                      ("203.0.113.2", "192.168.0.2", 3001), ("10.0.0.2", "1.2.3.4", 80), ("203.0.113.2", "1.2.3.4", 80)])
    func aServiceWithoutEndpointsRejects(source: String, destination: String, port: Int) {
        let outcomes = Self.trace(source, destination, port)
        #expect(outcomes.map(\.action) == ["REJECT"], "\(outcomes)")
        #expect(outcomes.first?.reason == "ns0/empty:p80 has no endpoints")
    }

    @Test func clusterIPs() {
        let simple = Self.trace("10.180.0.2", "172.30.0.41", 80)
        #expect(simple.map(\.action) == ["DNAT 10.180.0.1:80"] && !simple[0].masqueraded)
        #expect(simple[0].chains.count == 4 && simple[0].chains.prefix(2) == ["nat-prerouting", "services"])
        #expect(simple[0].chains[2].hasPrefix("service-") && simple[0].chains[3].hasPrefix("endpoint-"))
        let hairpin = Self.trace("10.180.0.1", "172.30.0.41", 80)
        #expect(hairpin.map(\.action) == ["DNAT 10.180.0.1:80"] && hairpin[0].masqueraded)
        let spread = Self.trace("10.180.0.2", "172.30.0.42", 80)
        #expect(spread.map(\.action).sorted() == ["DNAT 10.180.0.1:80", "DNAT 10.180.2.1:80"])
        #expect(spread.allSatisfy { abs($0.probability - 0.5) < 1e-9 })
        #expect(Self.trace("10.180.0.2", "172.30.0.42", 53).map(\.action).sorted() == ["DNAT 10.180.0.1:5353", "DNAT 10.180.2.1:5353"])
        #expect(Self.trace("10.180.0.2", "172.30.0.42", 53, .udp).map(\.action).sorted() == ["DNAT 10.180.0.1:53", "DNAT 10.180.2.1:53"])
        // From outside the Pod CIDR: masqueraded.
        #expect(Self.trace("192.168.7.7", "172.30.0.41", 80).allSatisfy { $0.masqueraded })
    }

    @Test func invalidPortsAndUnallocatedAddresses() {
        let udpOnTCPPort = Self.trace("10.180.0.2", "172.30.0.42", 80, .udp)
        #expect(udpOnTCPPort.map(\.action) == ["REJECT"] && udpOnTCPPort[0].reason == "Reject traffic to invalid ports of ClusterIPs")
        #expect(Self.trace("10.180.0.2", "172.30.0.41", 443).map(\.action) == ["REJECT"])
        let unallocated = Self.trace("10.180.0.2", "172.30.0.50", 80)
        #expect(unallocated.map(\.action) == ["DROP"] && unallocated[0].reason == "Drop traffic to unallocated ClusterIPs")
        #expect(Self.trace("10.180.0.2", "8.8.8.8", 80).map(\.action) == ["no match"])
    }

    @Test func loadBalancerSourceRanges() {
        let accepted = Self.trace("203.0.113.2", "5.6.7.8", 80)
        #expect(accepted.map(\.action) == ["DNAT 10.180.0.3:80"] && accepted[0].masqueraded)
        let blocked = Self.trace("203.0.113.130", "5.6.7.8", 80)
        #expect(blocked.map(\.action) == ["DROP"] && blocked[0].reason?.contains("loadBalancerSourceRanges") == true, "\(blocked)")
        #expect(blocked[0].chains.first == "filter-prerouting-pre-dnat")
        // NodePorts are not subject to the source ranges.
        #expect(Self.trace("203.0.113.130", "192.168.0.2", 3005).map(\.action) == ["DNAT 10.180.0.3:80"])
        let text = RuleTrace.describe(Self.trace("10.180.0.2", "172.30.0.42", 80), packet: .init(source: Self.ip("10.180.0.2"), destination: Self.ip("172.30.0.42"), destinationPort: 80, protocol: .tcp))
        #expect(text.contains("DNAT 10.180.2.1:80 p=0.5000"), "\(text)")
    }
}
