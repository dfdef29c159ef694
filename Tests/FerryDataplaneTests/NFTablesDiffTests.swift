import FerryDataplane
import Foundation
import Testing

/// `ferry rules diff` in nftables mode compares two `nft list table` listings.
@Suite struct NFTablesDiffTests {
    static let current = """
    table ip kube-proxy {
    \tcomment "rules for kube-proxy"
    \tmap no-endpoint-services {
    \t\ttype ipv4_addr . inet_proto . inet_service : verdict
    \t\tcomment "vmap to drop or reject packets to services with no endpoints"
    \t\telements = { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain,
    \t\t\t     172.30.0.47 . tcp . 80 comment "ns7/svc7:p80, old" : drop }
    \t}

    \tset affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 {
    \t\ttype ipv4_addr
    \t\tsize 65535
    \t\tflags dynamic,timeout
    \t\ttimeout 3h
    \t\telements = { 203.0.113.9 expires 2h59m }
    \t}

    \tchain services {
    \t\tip daddr . meta l4proto . th dport vmap @service-ips
    \t}

    \tchain service-OLD-ns/gone/tcp/p {
    \t\tnumgen random mod 1 vmap { 0 : goto endpoint-OLD-ns/gone/tcp/p__10.0.0.9/80 }
    \t}
    }
    """

    @Test func chainsRulesAndElementsAreComparedButNotClientsInAffinitySets() {
        let next = Self.current
            .replacingOccurrences(of: ",\n\t\t\t     172.30.0.47 . tcp . 80 comment \"ns7/svc7:p80, old\" : drop", with: "")
            .replacingOccurrences(of: "203.0.113.9 expires 2h59m", with: "198.51.100.1 expires 1h")
            .replacingOccurrences(of: "\tchain service-OLD-ns/gone/tcp/p {\n\t\tnumgen random mod 1 vmap { 0 : goto endpoint-OLD-ns/gone/tcp/p__10.0.0.9/80 }\n\t}\n", with: "")
            .replacingOccurrences(of: "ip daddr . meta l4proto . th dport vmap @service-ips", with: "ip daddr . meta l4proto . th dport vmap @service-ips\n\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports")
        let changes = NFTablesDiff.diff(current: Self.current, next: next)
        #expect(changes.map { "\($0.sign) \($0.line)" } == [
            "+ rule services: fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
            "- chain service-OLD-ns/gone/tcp/p",
            "- element no-endpoint-services: 172.30.0.47 . tcp . 80 comment \"ns7/svc7:p80, old\" : drop",
            "- rule service-OLD-ns/gone/tcp/p: numgen random mod 1 vmap { 0 : goto endpoint-OLD-ns/gone/tcp/p__10.0.0.9/80 }",
        ])
        #expect(NFTablesDiff.diff(current: Self.current, next: Self.current).isEmpty)
        #expect(NFTablesDiff.describe([]) == "no changes: the rules in the kernel are what the manifests make\n")
        #expect(NFTablesDiff.describe(changes, family: "ip6").hasPrefix("# nftables table ip6 kube-proxy\n+ rule services: "))
    }
}
