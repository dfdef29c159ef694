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
    /// TCP 127.0.0.1:6443 (in the namespace it runs in) → the Unix socket at argv[1].
    static let relay = """
    import socket, sys, threading
    path = sys.argv[1]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 6443))
    listener.listen(64)
    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
    while True:
        client, _ = listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(path)
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
    """

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

    @Test func iptablesRulesFollowTheClusterAndTheNodeLeaving() async throws {
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
            // The same kubeconfig for Ferry in the node namespace (through the relay) and kubectl here (direct).
            try APIProxyProcessTests.kubeconfig(dir: dir, apiPort: 6443, user: "token: t0k3n").write(toFile: dir + "/node-config", atomically: true, encoding: .utf8)
            try APIProxyProcessTests.kubeconfig(dir: dir, apiPort: api.port, user: "token: t0k3n").write(toFile: dir + "/config", atomically: true, encoding: .utf8)
            try Self.relay.write(toFile: dir + "/relay.py", atomically: true, encoding: .utf8)
            let (relayTool, relayArgs) = net.exec(in: net.node, "python3", [dir + "/relay.py", socket])
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
        }
    }
}
