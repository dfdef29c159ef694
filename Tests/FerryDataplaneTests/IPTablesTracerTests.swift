import FerryDataplane
import FerryModel
import Testing

@Suite struct IPTablesTracerTests {
    static func ip(_ text: String) -> IPAddress { IPAddress(parsing: text)! }
    static let node = ip("192.168.0.2")

    static let transaction: IPTablesTransaction = {
        func ep(_ text: String) -> ProxiedEndpoint { ProxiedEndpoint(ip: ip(text), port: 80) }
        let table = ServicePortTable(ports: [
            ProxiedServicePort(namespace: "ns3", service: "svc3", portName: "p80", clusterIP: ip("172.30.0.43"), port: 80, nodePort: 3003, endpoints: [ep("10.180.0.3")]),
            ProxiedServicePort(namespace: "ns4", service: "svc4", portName: "p80", clusterIP: ip("172.30.0.44"), port: 80, endpoints: [ep("10.180.0.4"), ep("10.180.0.5"), ep("10.180.0.6")]),
            ProxiedServicePort(namespace: "ns5", service: "svc5", portName: "p80", clusterIP: ip("172.30.0.45"), port: 80, loadBalancerIPs: [ip("5.6.7.8")],
                               loadBalancerSourceRanges: [IPRange(parsing: "203.0.113.0/25")!], endpoints: [ep("10.180.0.3")]),
            ProxiedServicePort(namespace: "ns6", service: "svc6", portName: "p80", clusterIP: ip("172.30.0.46"), port: 80),
        ])
        return IPTablesRenderer.render(table, options: ServiceRuleOptions(nodeName: "node", nodeIP: node, clusterCIDR: IPRange(parsing: "10.0.0.0/8")))
    }()

    static func trace(_ source: String, _ destination: String, _ port: Int, _ proto: TransportProtocol = .tcp) -> [IPTablesTracer.Outcome] {
        IPTablesTracer.trace(.init(source: ip(source), destination: ip(destination), destinationPort: port, protocol: proto), through: transaction, localAddresses: [node])
    }

    @Test func aClusterIPSpreadsEvenlyOverItsEndpoints() {
        let outcomes = Self.trace("10.0.0.99", "172.30.0.44", 80)
        #expect(outcomes.map(\.action).sorted() == ["DNAT 10.180.0.4:80", "DNAT 10.180.0.5:80", "DNAT 10.180.0.6:80"])
        for o in outcomes { #expect(abs(o.probability - 1.0 / 3) < 1e-6 && !o.masqueraded) }
        #expect(outcomes[0].chains.prefix(3) == ["nat PREROUTING", "KUBE-SERVICES", "KUBE-SVC-4SW47YFZTEDKD3PK"])
        // From outside the Pod CIDR the packet is masqueraded.
        let outside = Self.trace("192.168.7.7", "172.30.0.44", 80)
        #expect(outside.count == 3 && outside.allSatisfy { $0.masqueraded })
    }

    @Test func noEndpointsRejectsAndAFirewallDrops() {
        let rejected = Self.trace("10.0.0.99", "172.30.0.46", 80)
        #expect(rejected.map(\.action) == ["REJECT"] && rejected[0].reason == "ns6/svc6:p80 has no endpoints")
        let allowed = Self.trace("203.0.113.7", "5.6.7.8", 80)
        #expect(allowed.map(\.action) == ["DNAT 10.180.0.3:80"] && allowed[0].masqueraded)
        let dropped = Self.trace("8.8.8.8", "5.6.7.8", 80)
        #expect(dropped.map(\.action) == ["DROP"] && dropped[0].reason?.contains("traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C") == true, "\(dropped)")
    }

    @Test func nodePortsAndMisses() {
        let nodePort = Self.trace("198.51.100.1", "192.168.0.2", 3003)
        #expect(nodePort.map(\.action) == ["DNAT 10.180.0.3:80"])
        #expect(nodePort[0].chains.contains("KUBE-NODEPORTS"))
        #expect(Self.trace("10.0.0.99", "172.30.0.44", 81).map(\.action) == ["no match"])
        #expect(Self.trace("10.0.0.99", "172.30.0.44", 80, .udp).map(\.action) == ["no match"])
        let text = RuleTrace.describe(Self.trace("10.0.0.99", "172.30.0.44", 80), packet: .init(source: Self.ip("10.0.0.99"), destination: Self.ip("172.30.0.44"), destinationPort: 80, protocol: .tcp))
        #expect(text.contains("DNAT 10.180.0.4:80 p=0.3333"), "\(text)")
    }
}
