import FerryDataplane
import FerryModel
import Testing

/// The capture rules as text: the order of the exclusions (the proxy's own traffic and loopback first, the
/// cluster's ranges before anything is redirected), both families, and nftables' one table. Applying them
/// is tested in network namespaces (InterceptNamespaceTests).
struct CaptureRulesTests {
    static func range(_ text: String) -> IPRange { IPRange(parsing: text)! }

    @Test func podRulesSendEverythingButTheProxyAndLoopbackToItsPort() {
        var options = CaptureOptions()
        options.excludePorts = [22]
        options.excludeCIDRs = [Self.range("10.0.0.0/8"), Self.range("fd00::/8")]
        #expect(CaptureRules.iptables(options) == """
        *nat
        :FERRY-CAPTURE-OUTPUT - [0:0]
        :FERRY-CAPTURE-REDIRECT - [0:0]
        -A FERRY-CAPTURE-REDIRECT -p tcp -m comment --comment "ferry capture: to the proxy" -j REDIRECT --to-ports 15001
        -A FERRY-CAPTURE-OUTPUT -m owner --uid-owner 1337 -m comment --comment "ferry capture: the proxy's own connections" -j RETURN
        -A FERRY-CAPTURE-OUTPUT -m owner --gid-owner 1337 -m comment --comment "ferry capture: the proxy's own connections" -j RETURN
        -A FERRY-CAPTURE-OUTPUT -o lo -m comment --comment "ferry capture: loopback" -j RETURN
        -A FERRY-CAPTURE-OUTPUT -d 127.0.0.0/8 -j RETURN
        -A FERRY-CAPTURE-OUTPUT -d 10.0.0.0/8 -j RETURN
        -A FERRY-CAPTURE-OUTPUT -p tcp -m multiport --dports 22 -j RETURN
        -A FERRY-CAPTURE-OUTPUT -p tcp -j FERRY-CAPTURE-REDIRECT
        COMMIT

        """)
        // The IPv6 table gets the IPv6 ranges only.
        let v6 = CaptureRules.iptables(options, ipv6: true)
        #expect(v6.contains("-A FERRY-CAPTURE-OUTPUT -d ::1/128 -j RETURN") && v6.contains("-d fd00::/8 -j RETURN") && !v6.contains("10.0.0.0/8"))
        #expect(CaptureRules.jumps(options).map(\.chain) == ["OUTPUT"])
    }

    @Test func nodeRulesLeaveTheClusterAloneAndMayDNATElsewhere() {
        var options = CaptureOptions()
        options.scope = .node
        options.proxyAddress = IPAddress(parsing: "10.0.5.9")
        options.includePorts = [80, 443]
        options.clusterCIDRs = [Self.range("10.244.0.0/16")]
        options.serviceCIDRs = [Self.range("10.96.0.0/12")]
        options.nodeCIDRs = [Self.range("192.168.1.0/24")]
        let rules = CaptureRules.iptables(options)
        for chain in ["FERRY-CAPTURE-OUTPUT", "FERRY-CAPTURE-PREROUTING"] {
            let lines = rules.split(separator: "\n").filter { $0.hasPrefix("-A \(chain) ") }.map { String($0.dropFirst("-A \(chain) ".count)) }
            // Exclusions come before the one capturing rule, which names the ports.
            #expect(lines.suffix(4) == ["-d 10.244.0.0/16 -j RETURN", "-d 10.96.0.0/12 -j RETURN", "-d 192.168.1.0/24 -j RETURN",
                                        "-p tcp -m multiport --dports 80,443 -j FERRY-CAPTURE-REDIRECT"], "\(chain): \(lines)")
        }
        // PREROUTING cannot match owners.
        #expect(!rules.contains("-A FERRY-CAPTURE-PREROUTING -m owner"))
        #expect(rules.contains("-j DNAT --to-destination 10.0.5.9:15001"))
        #expect(CaptureRules.jumps(options).map(\.chain) == ["OUTPUT", "PREROUTING"])
    }

    @Test func nftablesIsOneTableReplacedWhole() {
        var options = CaptureOptions()
        options.excludePorts = [22, 53]
        let script = CaptureRules.nftables(options)
        #expect(script.hasPrefix("table inet ferry-capture\ndelete table inet ferry-capture\ntable inet ferry-capture {\n"))
        #expect(script.contains("meta skuid 1337 return") && script.contains("tcp dport { 22, 53 } return") && script.contains("meta l4proto tcp redirect to :15001"))
        #expect(!script.contains("chain prerouting"))
        options.scope = .node
        options.clusterCIDRs = [Self.range("10.244.0.0/16")]
        options.proxyAddress = IPAddress(parsing: "fd00::9")
        let node = CaptureRules.nftables(options)
        #expect(node.contains("chain prerouting") && node.contains("meta nfproto ipv6 dnat ip6 to [fd00::9]:15001"))
    }

    @Test func manyPortsAreSplitForMultiport() {
        var options = CaptureOptions()
        options.excludePorts = Array(1...20)
        let lines = CaptureRules.iptables(options).split(separator: "\n").filter { $0.contains("--dports") }
        #expect(lines.count == 2 && lines[1].contains("--dports 16,17,18,19,20"))
    }

    /// The tracer reads the rendered rules back: what each kind of connection meets and where it goes.
    @Test func theTracerFollowsTheRenderedRules() {
        var options = CaptureOptions()
        options.excludePorts = [22]
        options.inboundPorts = [8080]
        func trace(_ dst: String, _ port: Int, origin: CaptureTracer.Origin = .local, uid: Int = 0) -> String {
            CaptureTracer.trace(CaptureTracer.Connection(destination: IPAddress(parsing: dst)!, destinationPort: port, origin: origin, uid: uid, gid: uid), options: options).action
        }
        #expect(trace("93.184.216.34", 443) == "REDIRECT to :15001")
        #expect(trace("93.184.216.34", 443, uid: 1337) == "not captured (the proxy's own connections)")
        #expect(trace("93.184.216.34", 22) == "not captured")
        #expect(trace("127.0.0.1", 8080) == "not captured (loopback)")
        #expect(trace("2001:db8::1", 443) == "REDIRECT to :15001")
        #expect(trace("10.244.1.5", 8080, origin: .arriving) == "REDIRECT to :15006")
        #expect(trace("10.244.1.5", 9090, origin: .arriving).hasPrefix("not captured"))
        options = CaptureOptions()
        options.scope = .node
        options.serviceCIDRs = [Self.range("10.96.0.0/12")]
        options.proxyAddress = IPAddress(parsing: "10.0.5.9")
        #expect(trace("10.96.0.10", 80, origin: .arriving) == "not captured")
        #expect(trace("93.184.216.34", 80, origin: .arriving) == "DNAT to 10.0.5.9:15001")
        let steps = CaptureTracer.trace(CaptureTracer.Connection(destination: IPAddress(parsing: "93.184.216.34")!, destinationPort: 80, origin: .arriving), options: options).steps
        #expect(steps.map(\.chain) == ["PREROUTING", "FERRY-CAPTURE-PREROUTING", "FERRY-CAPTURE-REDIRECT"])
    }
}
