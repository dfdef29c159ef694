import FerryTestSupport
import Foundation
import Testing

/// Egress rules per source namespace and Pod labels: `ferry egress --watch-pods` against the fake API server,
/// clients on loopback addresses that are the Pods' IPs (curl --interface), two namespaces with their own
/// rules, an unknown source on the default, and a Pod that moves to another address.
@Suite(.serialized)
struct EgressNamespacePolicyTests {
    static func pod(ip: String, labels: [String: String]) -> [String: Any] {
        ["apiVersion": "v1", "kind": "Pod", "metadata": ["labels": labels],
         "spec": ["containers": [["name": "app", "image": "app"]]], "status": ["phase": "Running", "podIP": ip, "podIPs": [["ip": ip]]]]
    }

    /// An origin, the fake API server serving Pods, and Pod shop/cart on 127.0.0.2.
    static func withCart(_ body: (_ dir: String, _ api: FakeAPIServer, _ origin: TestOrigin) async throws -> Void) async throws {
        let origin = try TestOrigin(name: "site", group: Fixtures.originGroup)
        defer { origin.close() }
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(["v1/pods"])
            api.put("v1/pods", namespace: "shop", name: "cart", object: Self.pod(ip: "127.0.0.2", labels: ["app": "cart"]))
            try await body(dir, api, origin)
        }
    }

    @Test(.requires("curl")) func rulesSelectTheSourcePodsNamespaceAndLabels() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withCart { dir, api, origin in
            api.put("v1/pods", namespace: "web", name: "front", object: Self.pod(ip: "127.0.0.3", labels: ["app": "front", "tier": "edge"]))
            try "127.0.0.1 pay.test cdn.test news.test\n".write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
            let ferry = try await FerryProcess(binary: binary, arguments: [
                "egress", "--watch-pods", "--kubeconfig", dir + "/config", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1",
                "--hosts-file", dir + "/hosts", "--no-squid-guards",
                "--allow", "pay.test namespaces shop", "--allow", "cdn.test namespaces web pods tier=edge", "--allow", "news.test",
            ])
            defer { Task { await ferry.stop() } }
            let proxy = "http://127.0.0.1:\(try #require(ferry.port("egress")))"
            @Sendable func status(_ host: String, from source: String) async throws -> Int {
                try await Curl.request("http://\(host):\(origin.port)/", ["-x", proxy, "--interface", source]).status
            }
            // shop/cart may pay, not fetch from the CDN; web/front the other way round; both read the news.
            #expect(try await status("pay.test", from: "127.0.0.2") == 200)
            #expect(try await status("cdn.test", from: "127.0.0.2") == 403)
            #expect(try await status("cdn.test", from: "127.0.0.3") == 200)
            #expect(try await status("pay.test", from: "127.0.0.3") == 403)
            #expect(try await status("news.test", from: "127.0.0.3") == 200)
            // An address no Pod holds: only the rules that select no Pod apply.
            #expect(try await status("pay.test", from: "127.0.0.4") == 403)
            #expect(try await status("news.test", from: "127.0.0.4") == 200)
            // The audit line names the Pod.
            #expect(await Waiting.until { ferry.accessLog.contains { $0.contains(#""source_namespace":"shop""#) && $0.contains(#""source_pod":"cart""#) && $0.contains("pay.test") } },
                    "\(ferry.accessLog)")
            // shop/cart moves to 127.0.0.4: its rules follow it, and its old address is nobody's.
            api.put("v1/pods", namespace: "shop", name: "cart", object: Self.pod(ip: "127.0.0.4", labels: ["app": "cart"]))
            #expect(await Waiting.untilAsync(timeout: .seconds(10)) { (try? await status("pay.test", from: "127.0.0.4")) == 200 })
            #expect(try await status("pay.test", from: "127.0.0.2") == 403)
            // A Pod that loses its labels loses what they allowed.
            api.put("v1/pods", namespace: "web", name: "front", object: Self.pod(ip: "127.0.0.3", labels: ["app": "front"]))
            #expect(await Waiting.untilAsync(timeout: .seconds(10)) { (try? await status("cdn.test", from: "127.0.0.3")) == 403 })
            // And a deleted Pod's address is unknown again.
            api.remove("v1/pods", namespace: "shop", name: "cart")
            #expect(await Waiting.untilAsync(timeout: .seconds(10)) { (try? await status("pay.test", from: "127.0.0.4")) == 403 })
        }
    }

    @Test func rulesWithPodSelectorsReadBackAsWritten() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let r = try await Subprocess.run(binary, ["egress", "--allow", "pay.test namespaces shop,billing pods app=cart", "--explain", "http://pay.test/"], timeout: .seconds(20))
        // Without a source Pod the rule does not apply: the default decides, and the explanation says so.
        #expect(r.stdout.contains("verdict: DENY") && r.stdout.contains("rules that select namespaces or Pod labels do not apply"), "\(r.stdout)")
        let pod = try await Subprocess.run(binary, ["egress", "--allow", "pay.test namespaces shop,billing pods app=cart", "--explain", "http://pay.test/",
                                                    "--source-namespace", "billing", "--source-labels", "app=cart,tier=x"], timeout: .seconds(20))
        #expect(pod.stdout.contains("from a Pod in namespace billing with labels app=cart,tier=x") && pod.stdout.contains("verdict: ALLOW — rule 1"), "\(pod.stdout)")
        let bad = try await Subprocess.run(binary, ["egress", "--allow", "pay.test pods app", "--explain", "http://pay.test/"], timeout: .seconds(20))
        #expect(bad.status != 0 && bad.stderr.contains("\"app\" after \"pods\" is not a label KEY=VALUE"), "\(bad.stderr)")
    }

    /// The same from `ferry run`: `forward_proxy.watch_pods: true` and rules with `namespaces` in YAML.
    @Test(.requires("curl")) func aConfigFileWatchesPodsToo() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withCart { dir, _, origin in
            try "127.0.0.1 pay.test\n".write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
            try """
            admin: {address: "127.0.0.1:0"}
            listeners:
              - name: egress
                address: "127.0.0.1:0"
                forward_proxy: {policy: out, hosts_file: hosts, watch_pods: true}
            policies:
              - name: out
                guards: none
                rules:
                  - allow: {domains: [pay.test], namespaces: [shop], pod_labels: {app: cart}}
            clusters: []
            """.write(toFile: dir + "/ferry.yaml", atomically: true, encoding: .utf8)
            let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", dir + "/ferry.yaml", "--kubeconfig", dir + "/config", "--threads", "1"], configPath: dir + "/ferry.yaml")
            defer { Task { await ferry.stop() } }
            let proxy = "http://127.0.0.1:\(try #require(ferry.port("egress")))"
            #expect(try await Curl.request("http://pay.test:\(origin.port)/", ["-x", proxy, "--interface", "127.0.0.2"]).status == 200)
            #expect(try await Curl.request("http://pay.test:\(origin.port)/", ["-x", proxy, "--interface", "127.0.0.3"]).status == 403)
            // A reload keeps the watch's answers.
            try String(contentsOfFile: dir + "/ferry.yaml", encoding: .utf8).replacingOccurrences(of: "guards: none", with: "guards: none\n    default: deny")
                .write(toFile: dir + "/ferry.yaml", atomically: true, encoding: .utf8)
            #expect(await Waiting.until(timeout: .seconds(10)) { ferry.appliedReloads >= 1 }, "\(ferry.stderr)")
            #expect(try await Curl.request("http://pay.test:\(origin.port)/", ["-x", proxy, "--interface", "127.0.0.2"]).status == 200)
        }
    }
}
