import FerryDataplane
import FerryModel
import FerryTestSupport
import Foundation
import Testing

/// `ferry service-proxy` configured by the API server while writing real kernel rules inside a network
/// namespace ("node"). The node namespace has no route to the test's network: the fake API server also
/// listens on a Unix socket, and a relay inside the node namespace carries 127.0.0.1:6443 to it. kubectl
/// changes an EndpointSlice; the ClusterIP follows within the sync interval; a Node being deleted fails
/// `/healthz`.
@Suite(.serialized)
struct ServiceProxyAPINamespaceTests {
    /// bench/unix-relay.py: TCP 127.0.0.1:PORT (in the namespace it runs in) → a Unix socket.
    static let relay = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("bench/unix-relay.py").path

    static func slice(_ addresses: [String]) -> [String: Any] {
        ["apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": ["labels": ["kubernetes.io/service-name": "web"]],
         "addressType": "IPv4", "ports": [["name": "http", "port": 8080, "protocol": "TCP"]],
         "endpoints": addresses.map { ["addresses": [$0], "conditions": ["ready": true], "nodeName": "node"] }]
    }

    static func node(deleting: Bool) -> [String: Any] {
        var metadata: [String: Any] = [:]
        if deleting { metadata["deletionTimestamp"] = "2026-12-06T00:00:00Z" }
        return ["apiVersion": "v1", "kind": "Node", "metadata": metadata,
                "status": ["addresses": [["type": "InternalIP", "address": "10.244.1.1"], ["type": "Hostname", "address": "node"]]]]
    }

    @Test(.requiresRoot, .requires("ip", "iptables", "iptables-restore", "iptables-save", "curl", "python3", "openssl", "kubectl")) func iptablesRulesFollowTheClusterAndTheNodeLeaving() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "iptables", "iptables-restore", "iptables-save", "curl", "python3", "openssl", "kubectl"),
              let binary = Prerequisites.ferryBinary(), let kubectl = Prerequisites.path(of: "kubectl") else { return }
        try await ServiceProxyNamespaceTests.withNamespaces("service-proxy-api") { net, dir, processes in
            let (cert, key) = try await TLSFixtures.certificate(in: dir, name: "kubernetes", extraSANs: ["IP:127.0.0.1"])
            let socket = dir + "/api.sock"
            let api = try FakeAPIServer(group: Fixtures.originGroup, certificate: cert, key: key, token: "t0k3n", unixSocketPath: socket)
            defer { api.close() }
            api.serve(["v1/services", "discovery.k8s.io/v1/endpointslices", "networking.k8s.io/v1/servicecidrs", "v1/nodes"])
            api.put("v1/services", namespace: "demo", name: "web", object: IngressAPITests.service)
            api.put("discovery.k8s.io/v1/endpointslices", namespace: "demo", name: "web-1", object: Self.slice(["10.244.1.5"]))
            api.put("v1/nodes", namespace: nil, name: "node", object: Self.node(deleting: false))
            // Exactly the permissions deploy/service-proxy grants its ServiceAccount.
            let grants = DeployManifestTests.grants(for: "ferry-service-proxy", namespace: "kube-system", in: try await DeployManifestTests.render("service-proxy/base"))
            api.enforce(grants, user: "system:serviceaccount:kube-system:ferry-service-proxy")
            // The same kubeconfig for Ferry in the node namespace (through the relay) and kubectl here (direct).
            try APIProxyProcessTests.kubeconfig(dir: dir, apiPort: 6443, user: "token: t0k3n").write(toFile: dir + "/node-config", atomically: true, encoding: .utf8)
            // kubectl as the cluster admin (basic credentials), Ferry as its ServiceAccount (the token).
            try APIProxyProcessTests.kubeconfig(dir: dir, apiPort: api.port, user: "username: admin\npassword: secret").write(toFile: dir + "/config", atomically: true, encoding: .utf8)
            let (relayTool, relayArgs) = net.exec(in: net.node, "python3", [Self.relay, "6443", socket])
            processes.add(try Subprocess(relayTool, relayArgs))

            try await ServiceProxyNamespaceTests.startOrigins(["10.244.1.5", "10.244.2.7"], in: net, dir: dir, processes: processes)
            try await NetworkNamespaces.ip(["-n", net.node, "route", "add", "10.96.0.0/16", "dev", "vn1"])
            let (tool, args) = net.exec(in: net.node, binary, ["service-proxy", "--kubeconfig", dir + "/node-config", "--cluster-cidr", "10.244.0.0/16", "--hostname-override", "node"])
            let ferry = try Subprocess(tool, args)
            processes.add(ferry)
            #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.contains("rules synced") }, "\(ferry.stderr)")
            // Its own Node is watched, by name.
            #expect(api.requests.contains { $0.hasPrefix("GET /api/v1/nodes?") && $0.removingPercentEncoding?.contains("fieldSelector=metadata.name=node") == true }, "\(api.requests)")

            @Sendable func fetch() async throws -> String {
                let (curlTool, curlArgs) = net.exec(in: net.node, "curl", ["-sS", "--max-time", "5", "http://10.96.0.10/"])
                return try await Subprocess.run(curlTool, curlArgs, timeout: .seconds(10)).stdout
            }
            #expect(try await fetch() == "pod1\n")
            // kubectl moves the endpoint to pod2: the kernel rules follow within the sync interval.
            let manifest = dir + "/slice.yaml"
            try """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
            addressType: IPv4
            ports: [{name: http, port: 8080, protocol: TCP}]
            endpoints:
            - {addresses: [10.244.2.7], conditions: {ready: true}, nodeName: node}
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
            let applied = try await Subprocess.run(kubectl, ["--kubeconfig", dir + "/config", "apply", "--validate=false", "-f", manifest])
            #expect(applied.status == 0, "\(applied.stderr)")
            #expect(await Waiting.untilAsync(timeout: .seconds(10)) { (try? await fetch()) == "pod2\n" }, "\(ferry.stderr)")

            @Sendable func health(_ path: String) async throws -> String {
                let (healthTool, healthArgs) = net.exec(in: net.node, "curl", ["-sS", "-w", "%{http_code}", "http://127.0.0.1:10256" + path])
                return try await Subprocess.run(healthTool, healthArgs).stdout
            }
            let healthy = try await health("/healthz")
            #expect(healthy.contains("\"nodeEligible\": true") && healthy.hasSuffix("200"), "\(healthy)")
            // The Node is being deleted: /healthz fails (load balancers drain the node), /livez does not.
            api.put("v1/nodes", namespace: nil, name: "node", object: Self.node(deleting: true))
            #expect(await Waiting.untilAsync(timeout: .seconds(10)) { (try? await health("/healthz"))?.hasSuffix("503") == true })
            let leaving = try await health("/healthz")
            #expect(leaving.contains("\"nodeEligible\": false"), "\(leaving)")
            #expect(try await health("/livez").hasSuffix("200"))
            ferry.signal(SIGTERM)
            #expect(await ferry.waitForExit(timeout: .seconds(20)) == 0, "\(ferry.stderr)")
            #expect(api.refused.isEmpty, "missing permissions: \(api.refused)")
            let granted = grants.reduce(into: Set<String>()) { $0.formUnion($1.permissions) }
            #expect(granted.subtracting(api.usedPermissions).isEmpty, "granted but never used: \(granted.subtracting(api.usedPermissions).sorted())")
        }
    }
}

/// A partial nftables sync leaves the kernel's table exactly as a full sync of the same Services does
/// (checked in scratch network namespaces with the real nft).
@Suite struct NFTablesPartialSyncKernelTests {
    @Test(.requiresRoot, .requires("nft", "unshare")) func partialThenStaleDeletionEqualsAFullSync() async throws {
        guard Prerequisites.root(), Prerequisites.have("nft", "unshare") else { return }
        let dir = try TLSFixtures.folder("nft-partial")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ip = { (t: String) in IPAddress(parsing: t)! }
        func port(_ name: String, _ clusterIP: String, _ endpoints: [String], nodePort: Int? = nil) -> ProxiedServicePort {
            ProxiedServicePort(namespace: "demo", service: name, portName: "http", clusterIP: ip(clusterIP), port: 80, nodePort: nodePort,
                               endpoints: endpoints.map { ProxiedEndpoint(ip: ip($0), port: 8080) })
        }
        var options = ServiceRuleOptions(nodeName: "node", nodeIP: ip("10.0.0.1"), clusterCIDR: IPRange(parsing: "10.244.0.0/16"))
        options.nodePortAddresses = [ip("10.0.0.1")]
        let before = ServicePortTable(ports: [port("a", "10.96.0.1", ["10.244.1.1", "10.244.1.2"]), port("b", "10.96.0.2", ["10.244.2.1"], nodePort: 30080),
                                              port("c", "10.96.0.3", [])])
        let after = ServicePortTable(ports: [port("a", "10.96.0.1", ["10.244.1.1", "10.244.1.3"]), port("c", "10.96.0.3", ["10.244.3.1"]),
                                             port("d", "10.96.0.4", ["10.244.4.1"], nodePort: 30081)])
        let first = NFTablesRenderer.render(before, options: options)
        let next = NFTablesRenderer.render(after, options: options, existingChains: Set(first.ruleset.chains.map(\.name)), existingSets: Set(first.ruleset.collections.map(\.name)))
        try first.script.write(toFile: dir + "/1.nft", atomically: true, encoding: .utf8)
        try next.script(after: first.ruleset).write(toFile: dir + "/2.nft", atomically: true, encoding: .utf8)
        try NFTablesTransaction.deleteChains(next.staleChains).write(toFile: dir + "/3.nft", atomically: true, encoding: .utf8)
        try NFTablesRenderer.render(after, options: options).script.write(toFile: dir + "/full.nft", atomically: true, encoding: .utf8)
        let partial = try await Subprocess.run("/usr/bin/unshare", ["--net", "sh", "-c", "nft -f \(dir)/1.nft && nft -f \(dir)/2.nft && nft -f \(dir)/3.nft && nft list table ip kube-proxy"])
        let full = try await Subprocess.run("/usr/bin/unshare", ["--net", "sh", "-c", "nft -f \(dir)/full.nft && nft list table ip kube-proxy"])
        #expect(partial.status == 0 && full.status == 0, "\(partial.stderr)\(full.stderr)")
        #expect(!next.staleChains.isEmpty, "b's chains and a's removed endpoint are stale")
        let differences = NFTablesDiff.diff(current: partial.stdout, next: full.stdout)
        #expect(differences.isEmpty, "\(NFTablesDiff.describe(differences, family: "ip"))")
        // The comparison does see differences: the table before the change is not the one after.
        let old = try await Subprocess.run("/usr/bin/unshare", ["--net", "sh", "-c", "nft -f \(dir)/1.nft && nft list table ip kube-proxy"])
        #expect(NFTablesDiff.diff(current: old.stdout, next: full.stdout).count > 5)
        #expect(partial.stdout.contains("10.244.4.1") && !partial.stdout.contains("10.244.2.1") && !partial.stdout.contains("10.244.1.2"))
    }
}

/// A partial iptables sync (the top-level chains whole, only changed service and endpoint chains, stale
/// ones deleted) leaves the kernel's rules as a full sync of the same Services does, checked in a scratch
/// network namespace with the real iptables-restore and iptables-save.
@Suite struct IPTablesPartialSyncKernelTests {
    @Test(.requiresRoot, .requires("iptables-restore", "iptables-save", "unshare")) func partialEqualsAFullSync() async throws {
        guard Prerequisites.root(), Prerequisites.have("iptables-restore", "iptables-save", "unshare") else { return }
        let dir = try TLSFixtures.folder("ipt-partial")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ip = { (t: String) in IPAddress(parsing: t)! }
        func port(_ name: String, _ clusterIP: String, _ endpoints: [String], nodePort: Int? = nil) -> ProxiedServicePort {
            ProxiedServicePort(namespace: "demo", service: name, portName: "http", clusterIP: ip(clusterIP), port: 80, nodePort: nodePort,
                               endpoints: endpoints.map { ProxiedEndpoint(ip: ip($0), port: 8080) })
        }
        let options = ServiceRuleOptions(nodeName: "node", nodeIP: ip("10.0.0.1"), clusterCIDR: IPRange(parsing: "10.244.0.0/16"))
        let before = ServicePortTable(ports: [port("a", "10.96.0.1", ["10.244.1.1", "10.244.1.2"]), port("b", "10.96.0.2", ["10.244.2.1"], nodePort: 30080),
                                              port("c", "10.96.0.3", []), port("e", "10.96.0.5", ["10.244.5.1"])])
        let after = ServicePortTable(ports: [port("a", "10.96.0.1", ["10.244.1.1", "10.244.1.3"]), port("c", "10.96.0.3", ["10.244.3.1"]),
                                             port("d", "10.96.0.4", ["10.244.4.1"], nodePort: 30081), port("e", "10.96.0.5", ["10.244.5.1"])])
        let first = IPTablesRenderer.render(before, options: options)
        let next = IPTablesRenderer.render(after, options: options, existingNATChains: first.activeNATChains)
        let partial = next.restoreInput(after: first)
        // e did not change: its chains are not in the partial input at all.
        let eChain = try #require(first.natRules.first { $0.contains("demo/e:http") && $0.contains("-j KUBE-SVC-") }?.split(separator: " ").last.map(String.init))
        #expect(!partial.contains(":\(eChain) ") && next.restoreInput.contains(":\(eChain) "))
        #expect(partial.split(separator: "\n").count < next.restoreInput.split(separator: "\n").count)
        try first.restoreInput.write(toFile: dir + "/1.rules", atomically: true, encoding: .utf8)
        try partial.write(toFile: dir + "/2.rules", atomically: true, encoding: .utf8)
        let applied = try await Subprocess.run("/usr/bin/unshare", ["--net", "sh", "-c",
            "iptables-restore --noflush < \(dir)/1.rules && iptables-restore --noflush < \(dir)/2.rules && iptables-save"])
        #expect(applied.status == 0, "\(applied.stderr)")
        // The jumps from the built-in chains are ensured one by one by the applier, not by the restore input:
        // everything in the KUBE chains must be equal.
        let builtIn = ["-A INPUT ", "-A FORWARD ", "-A OUTPUT ", "-A PREROUTING ", "-A POSTROUTING "]
        let inRestore = IPTablesDiff.diff(saved: applied.stdout, next: next).filter { change in !builtIn.contains { change.line.hasPrefix($0) } }
        #expect(inRestore.isEmpty, "\(IPTablesDiff.describe(inRestore))")
        // Not vacuous: the table before the change differs from the one after.
        let old = try await Subprocess.run("/usr/bin/unshare", ["--net", "sh", "-c", "iptables-restore --noflush < \(dir)/1.rules && iptables-save"])
        #expect(IPTablesDiff.diff(saved: old.stdout, next: next).count > inRestore.count + 3)
    }
}
