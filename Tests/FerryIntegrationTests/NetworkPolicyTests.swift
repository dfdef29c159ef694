import FerryModel
import FerryTestSupport
import Foundation
import Testing
import Yams

/// The egress lock-down of deploy/egress, checked by evaluating its NetworkPolicies for pairs of (source
/// Pod, destination) with the API's documented semantics (networking.k8s.io/v1 NetworkPolicy): a Pod
/// selected by a policy with the Egress type is isolated for egress and may send only what some such
/// policy's rules allow; the same for Ingress at the destination; a connection needs both.
@Suite struct NetworkPolicyTests {
    struct Pod {
        var namespace: String
        var labels: [String: String]
        var ip: String
    }

    enum Destination {
        case pod(Pod)
        case external(String)
        var ip: String {
            switch self {
            case .pod(let p): p.ip
            case .external(let ip): ip
            }
        }
    }

    /// Namespaces and their labels (with kubernetes.io/metadata.name, as the API server sets it).
    let namespaces: [String: [String: String]]
    let policies: [(namespace: String, spec: [String: Any])]

    static func matches(_ selector: [String: Any]?, _ labels: [String: String]) -> Bool {
        guard let selector else { return true }
        let required = selector["matchLabels"] as? [String: String] ?? [:]
        return required.allSatisfy { labels[$0.key] == $0.value }
    }

    /// Whether a peer (`from`/`to` entry) of a policy in `policyNamespace` matches the other end.
    func peerMatches(_ peer: [String: Any], policyNamespace: String, other: Destination) -> Bool {
        if let block = peer["ipBlock"] as? [String: Any] {
            // ipBlock is meant for addresses outside the cluster: Pods are matched by selectors.
            guard case .external(let ip) = other, let address = IPAddress(parsing: ip), let cidr = (block["cidr"] as? String).flatMap(IPRange.init(parsing:)) else { return false }
            let excepted = (block["except"] as? [String] ?? []).compactMap(IPRange.init(parsing:)).contains { $0.contains(address) }
            return cidr.contains(address) && !excepted
        }
        guard case .pod(let pod) = other else { return false }
        let podSelector = peer["podSelector"] as? [String: Any]
        if let namespaceSelector = peer["namespaceSelector"] as? [String: Any] {
            return Self.matches(namespaceSelector, namespaces[pod.namespace] ?? [:]) && Self.matches(podSelector, pod.labels)
        }
        return pod.namespace == policyNamespace && Self.matches(podSelector, pod.labels)
    }

    func portMatches(_ rule: [String: Any], port: Int, proto: String) -> Bool {
        guard let ports = rule["ports"] as? [[String: Any]], !ports.isEmpty else { return true }
        return ports.contains { ($0["port"] as? Int).map { $0 == port } ?? true && (($0["protocol"] as? String) ?? "TCP") == proto }
    }

    /// Whether `pod` may send to (`direction` "Egress") or receive from ("Ingress") `other` on port/proto.
    func allows(_ pod: Pod, _ direction: String, other: Destination, port: Int, proto: String) -> Bool {
        let selecting = policies.filter { policy in
            policy.namespace == pod.namespace && Self.matches(policy.spec["podSelector"] as? [String: Any], pod.labels)
                && (policy.spec["policyTypes"] as? [String] ?? ["Ingress"]).contains(direction)
        }
        if selecting.isEmpty { return true }
        let key = direction == "Egress" ? "egress" : "ingress"
        let peersKey = direction == "Egress" ? "to" : "from"
        return selecting.contains { policy in
            (policy.spec[key] as? [[String: Any]] ?? []).contains { rule in
                let peers = rule[peersKey] as? [[String: Any]] ?? []
                return (peers.isEmpty || peers.contains { peerMatches($0, policyNamespace: policy.namespace, other: other) }) && portMatches(rule, port: port, proto: proto)
            }
        }
    }

    func connects(_ source: Pod, _ destination: Destination, port: Int, proto: String = "TCP") -> Bool {
        guard allows(source, "Egress", other: destination, port: port, proto: proto) else { return false }
        if case .pod(let target) = destination { return allows(target, "Ingress", other: .pod(source), port: port, proto: proto) }
        return true
    }

    init(policies: [(namespace: String, spec: [String: Any])], namespaces: [String: [String: String]]) {
        self.policies = policies
        self.namespaces = namespaces
    }

    init() throws {
        let deploy = DeployManifestTests.deploy
        func load(_ file: String) throws -> [[String: Any]] {
            try Yams.load_all(yaml: String(contentsOfFile: deploy + "/" + file, encoding: .utf8)).compactMap { $0 as? [String: Any] }
        }
        // The proxy's policy in its namespace; the lock-down applied into namespace app.
        let proxyPolicies = try load("egress/base/networkpolicy.yaml").map { (namespace: "ferry-egress", spec: $0["spec"] as? [String: Any] ?? [:]) }
        let lockdown = try load("egress/lockdown/networkpolicy.yaml").map { (namespace: "app", spec: $0["spec"] as? [String: Any] ?? [:]) }
        policies = proxyPolicies + lockdown
        namespaces = [
            "ferry-egress": ["kubernetes.io/metadata.name": "ferry-egress"],
            "kube-system": ["kubernetes.io/metadata.name": "kube-system"],
            "app": ["kubernetes.io/metadata.name": "app", "ferry.dev/egress": "locked"],
            "other": ["kubernetes.io/metadata.name": "other"],
        ]
    }

    @Test func theProxyIsTheOnlyWayOutOfALockedNamespace() throws {
        let proxy = Pod(namespace: "ferry-egress", labels: ["app.kubernetes.io/name": "egress-proxy"], ip: "10.244.1.10")
        let dns = Pod(namespace: "kube-system", labels: ["k8s-app": "kube-dns"], ip: "10.244.0.5")
        let app = Pod(namespace: "app", labels: ["app": "web"], ip: "10.244.2.20")
        let neighbour = Pod(namespace: "app", labels: ["app": "db"], ip: "10.244.2.21")
        let elsewhere = Pod(namespace: "other", labels: ["app": "api"], ip: "10.244.3.30")
        let internet = Destination.external("140.82.112.3")

        // A locked workload: the proxy's port and cluster DNS, nothing else.
        #expect(connects(app, .pod(proxy), port: 3128))
        #expect(connects(app, .pod(dns), port: 53, proto: "UDP") && connects(app, .pod(dns), port: 53))
        #expect(!connects(app, internet, port: 443), "straight out")
        #expect(!connects(app, .pod(proxy), port: 9901), "the proxy's admin port")
        #expect(!connects(app, .pod(elsewhere), port: 80), "another namespace")
        #expect(!connects(app, .pod(neighbour), port: 5432), "its own namespace too: only the proxy and DNS")
        #expect(!connects(app, .external("169.254.169.254"), port: 80), "the metadata service")
        // The proxy: DNS and the internet, not the cluster's private ranges or the metadata service.
        #expect(connects(proxy, internet, port: 443))
        #expect(connects(proxy, .pod(dns), port: 53, proto: "UDP"))
        #expect(!connects(proxy, .external("10.0.0.5"), port: 443) && !connects(proxy, .external("192.168.1.1"), port: 80))
        #expect(!connects(proxy, .external("169.254.169.254"), port: 80))
        // Namespaces that are not locked keep their own egress, and do not reach the proxy.
        #expect(connects(elsewhere, internet, port: 443))
        #expect(!connects(elsewhere, .pod(proxy), port: 3128))
    }

    /// `ferry deploy render egress --lock-namespace`: the named namespaces are locked without a label, the
    /// proxy admits them, and the others keep their own egress.
    @Test func renderedLocksMakeTheProxyTheWayOutOfEachNamedNamespace() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let r = try await Subprocess.run(binary, ["deploy", "render", "egress", "--namespace", "gw", "--lock-namespace", "shop", "--lock-namespace", "web"], timeout: .seconds(30))
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try Yams.load_all(yaml: r.stdout).compactMap { $0 as? [String: Any] }
        let policies = objects.filter { $0["kind"] as? String == "NetworkPolicy" }.map {
            (namespace: ($0["metadata"] as? [String: Any])?["namespace"] as? String ?? "", spec: $0["spec"] as? [String: Any] ?? [:])
        }
        #expect(Set(policies.map(\.namespace)) == ["gw", "shop", "web"])
        let check = NetworkPolicyTests(policies: policies, namespaces: [
            "gw": ["kubernetes.io/metadata.name": "gw"], "kube-system": ["kubernetes.io/metadata.name": "kube-system"],
            "shop": ["kubernetes.io/metadata.name": "shop"], "web": ["kubernetes.io/metadata.name": "web"], "other": ["kubernetes.io/metadata.name": "other"],
        ])
        let proxy = Pod(namespace: "gw", labels: ["app.kubernetes.io/name": "egress-proxy"], ip: "10.244.1.10")
        let dns = Pod(namespace: "kube-system", labels: ["k8s-app": "kube-dns"], ip: "10.244.0.5")
        let internet = Destination.external("140.82.112.3")
        for namespace in ["shop", "web"] {
            let app = Pod(namespace: namespace, labels: ["app": "a"], ip: "10.244.2.20")
            #expect(check.connects(app, .pod(proxy), port: 3128), "\(namespace) reaches the proxy")
            #expect(check.connects(app, .pod(dns), port: 53, proto: "UDP"))
            #expect(!check.connects(app, internet, port: 443), "\(namespace) does not go straight out")
        }
        let other = Pod(namespace: "other", labels: ["app": "a"], ip: "10.244.3.30")
        #expect(check.connects(other, internet, port: 443) && !check.connects(other, .pod(proxy), port: 3128))
        // Not for other roles, nor the proxy's own namespace.
        let wrong = try await Subprocess.run(binary, ["deploy", "render", "ingress", "--lock-namespace", "shop"], timeout: .seconds(30))
        #expect(wrong.status != 0 && wrong.stderr.contains("--lock-namespace is for egress"), "\(wrong.stderr)")
        let own = try await Subprocess.run(binary, ["deploy", "render", "egress", "--lock-namespace", "ferry-egress"], timeout: .seconds(30))
        #expect(own.status != 0 && own.stderr.contains("is the proxy's own namespace"), "\(own.stderr)")
    }
}
