import FerryTestSupport
import Foundation
import Testing

/// `ferry ingress` configured by the Kubernetes API (the fake server over TLS with a token): the first
/// routing table is the cluster's, and curl through Ferry follows each change of an Ingress and its
/// EndpointSlices, through a dropped watch and a compaction.
@Suite(.serialized)
struct IngressAPITests {
    static func ingress(host: String, path: String = "/") -> [String: Any] {
        ["apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "spec": ["ingressClassName": "ferry", "rules": [["host": host, "http": ["paths": [["path": path, "pathType": "Prefix", "backend": ["service": ["name": "web", "port": ["number": 80]]]]]]]]]]
    }

    static var service: [String: Any] { ["apiVersion": "v1", "kind": "Service", "spec": ["clusterIP": "10.96.0.10", "ports": [["name": "http", "port": 80, "targetPort": 8080]]]] }

    static func slice(port: Int) -> [String: Any] {
        ["apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": ["labels": ["kubernetes.io/service-name": "web"]],
         "addressType": "IPv4", "ports": [["name": "http", "port": port, "protocol": "TCP"]],
         "endpoints": [["addresses": ["127.0.0.1"], "conditions": ["ready": true]]]]
    }

    @Test func routesFollowTheClusterThroughWatchesDropsAndCompaction() async throws {
        guard let binary = Prerequisites.ferryBinary(), Prerequisites.have("curl") else { return }
        let blue = try TestOrigin(name: "blue", group: Fixtures.originGroup)
        let green = try TestOrigin(name: "green", group: Fixtures.originGroup)
        defer { blue.close(); green.close() }
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(["v1/services", "discovery.k8s.io/v1/endpointslices", "networking.k8s.io/v1/ingresses", "networking.k8s.io/v1/ingressclasses", "v1/secrets"])
            api.put("v1/services", namespace: "demo", name: "web", object: Self.service)
            api.put("discovery.k8s.io/v1/endpointslices", namespace: "demo", name: "web-1", object: Self.slice(port: blue.port))
            api.put("networking.k8s.io/v1/ingresses", namespace: "demo", name: "shop", object: Self.ingress(host: "shop.example"))
            let ferry = try await FerryProcess(binary: binary, arguments: ["ingress", "--kubeconfig", dir + "/config", "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1"])
            do {
                let port = try #require(ferry.port("ingress-http"), "\(ferry.stderr)")
                func fetch(_ host: String = "shop.example") async throws -> (Int, String) {
                    let r = try await Curl.request("http://127.0.0.1:\(port)/", ["-H", "Host: \(host)"])
                    return (r.status, r.body)
                }
                // The first table is the cluster's.
                #expect(try await fetch().0 == 200)
                #expect(blue.requestsServed == 1)
                // The endpoint moves to green: the next requests go there.
                api.put("discovery.k8s.io/v1/endpointslices", namespace: "demo", name: "web-1", object: Self.slice(port: green.port))
                #expect(await Waiting.until(timeout: .seconds(10)) { (try? Self.blockingStatus(port: port)) == 200 && green.requestsServed > 0 })
                // A new host, then the watches dropped and history compacted while it changes again.
                api.put("networking.k8s.io/v1/ingresses", namespace: "demo", name: "cart", object: Self.ingress(host: "cart.example"))
                #expect(await Waiting.until(timeout: .seconds(10)) { (try? Self.blockingStatus(port: port, host: "cart.example")) == 200 })
                api.dropWatches()
                api.remove("networking.k8s.io/v1/ingresses", namespace: "demo", name: "cart")
                api.compact()
                #expect(await Waiting.until(timeout: .seconds(15)) { (try? Self.blockingStatus(port: port, host: "cart.example")) == 404 }, "\(ferry.stderr)")
                #expect(try await fetch().0 == 200, "the rest of the routes were never dropped")
            } catch {
                await ferry.stop()
                throw error
            }
            await ferry.stop()
        }
    }

    @Test func explainReadsTheLiveCluster() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(["v1/services", "discovery.k8s.io/v1/endpointslices", "networking.k8s.io/v1/ingresses", "networking.k8s.io/v1/ingressclasses", "v1/secrets"])
            api.put("v1/services", namespace: "demo", name: "web", object: Self.service)
            api.put("discovery.k8s.io/v1/endpointslices", namespace: "demo", name: "web-1", object: Self.slice(port: 8080))
            api.put("networking.k8s.io/v1/ingresses", namespace: "demo", name: "shop", object: Self.ingress(host: "shop.example", path: "/cart"))
            api.put("networking.k8s.io/v1/ingresses", namespace: "other", name: "blog", object: Self.ingress(host: "blog.example"))
            let r = try await Subprocess.run(binary, ["explain", "--kubeconfig", dir + "/config", "http://shop.example/cart/1"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("demo/shop") && r.stdout.contains("127.0.0.1:8080"), "\(r.stdout)")
            // Scoped to one namespace, the other's Ingress is not read.
            let scoped = try await Subprocess.run(binary, ["explain", "--kubeconfig", dir + "/config", "--namespace", "demo", "http://blog.example/"])
            #expect(scoped.status == 0 && !scoped.stdout.contains("other/blog"), "\(scoped.stdout)")
            #expect(api.requests.contains { $0.hasPrefix("GET /apis/networking.k8s.io/v1/namespaces/demo/ingresses?") })
            let unscoped = try await Subprocess.run(binary, ["explain", "--kubeconfig", dir + "/config", "http://blog.example/"])
            #expect(unscoped.stdout.contains("other/blog"), "\(unscoped.stdout)")
            // A cluster that cannot be read: what the server said, and exit 1.
            let bad = try await Subprocess.run(binary, ["explain", "--kubeconfig", dir + "/missing", "http://shop.example/"])
            #expect(bad.status == 1 && bad.stderr.contains("cannot read the cluster"), "\(bad.stderr)")
        }
    }

    /// The watch client honours a kubeconfig's `proxy-url` as the API proxy does: the lists go through a
    /// CONNECT tunnel of the parent proxy (Ferry's own egress role, which logs each tunnel).
    @Test func theClusterIsReadThroughTheKubeconfigsProxyURL() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let parent = try await FerryProcess(binary: binary, arguments: ["egress", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1", "--allow", "127.0.0.1/32:1-65535"])
        defer { Task { await parent.stop() } }
        let parentURL = "http://127.0.0.1:\(parent.port("egress") ?? 0)"
        try await APIProxyProcessTests.withAPIServer(proxyURL: parentURL) { dir, api in
            api.serve(["v1/services", "discovery.k8s.io/v1/endpointslices", "networking.k8s.io/v1/ingresses", "networking.k8s.io/v1/ingressclasses", "v1/secrets"])
            api.put("networking.k8s.io/v1/ingresses", namespace: "demo", name: "shop", object: Self.ingress(host: "shop.example"))
            let r = try await Subprocess.run(binary, ["explain", "--kubeconfig", dir + "/config", "http://shop.example/"])
            #expect(r.status == 0 && r.stdout.contains("demo/shop"), "\(r.stdout)\(r.stderr)")
            let target = "127.0.0.1:\(api.port)"
            #expect(await Waiting.until { parent.accessLog.contains { $0.contains(#""method":"CONNECT""#) && $0.contains(target) } }, "\(parent.accessLog)")
        }
        await parent.stop()
    }

    /// One request with curl, synchronously (for polling conditions).
    static func blockingStatus(port: Int, host: String = "shop.example") throws -> Int {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Curl.curlPath)
        process.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "-H", "Host: \(host)", "http://127.0.0.1:\(port)/"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        process.waitUntilExit()
        return Int(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)) ?? 0
    }
}

/// `ferry service-proxy` from the API server: the collections narrowed as kube-proxy narrows them.
@Suite(.serialized)
struct ServiceProxyAPITests {
    @Test func dryRunRendersTheClustersServicesAndServiceCIDRs() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(["v1/services", "discovery.k8s.io/v1/endpointslices", "networking.k8s.io/v1/servicecidrs"])
            api.put("v1/services", namespace: "demo", name: "web", object: IngressAPITests.service)
            api.put("discovery.k8s.io/v1/endpointslices", namespace: "demo", name: "web-1", object: IngressAPITests.slice(port: 8080))
            var other = IngressAPITests.service
            other["metadata"] = ["labels": ["service.kubernetes.io/service-proxy-name": "another-proxy"]]
            other["spec"] = ["clusterIP": "10.96.0.99", "ports": [["name": "http", "port": 80, "targetPort": 8080]]]
            api.put("v1/services", namespace: "demo", name: "theirs", object: other)
            api.put("networking.k8s.io/v1/servicecidrs", namespace: nil, name: "kubernetes", object: ["apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "spec": ["cidrs": ["10.96.0.0/16"]]])
            let iptables = try await Subprocess.run(binary, ["service-proxy", "--kubeconfig", dir + "/config", "--dry-run"])
            #expect(iptables.status == 0, "\(iptables.stderr)")
            #expect(iptables.stdout.contains("-A KUBE-SERVICES -m comment --comment \"demo/web:http cluster IP\" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j KUBE-SVC-"), "\(iptables.stdout)")
            #expect(iptables.stdout.contains("--to-destination 127.0.0.1:8080"))
            #expect(!iptables.stdout.contains("10.96.0.99"), "a Service of another proxy is left to it")
            let selector = "labelSelector=!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
            #expect(api.requests.contains { $0.hasPrefix("GET /api/v1/services?") && $0.removingPercentEncoding?.contains(selector) == true }, "\(api.requests)")
            #expect(api.requests.contains { $0.hasPrefix("GET /apis/discovery.k8s.io/v1/endpointslices?") && $0.removingPercentEncoding?.contains(selector) == true })
            let nft = try await Subprocess.run(binary, ["service-proxy", "--mode", "nftables", "--kubeconfig", dir + "/config", "--dry-run", "--node-ip", "192.168.0.2"])
            #expect(nft.stdout.contains("ip daddr { 10.96.0.0/16 } drop comment \"Drop traffic to unallocated ClusterIPs\""), "\(nft.stdout)\(nft.stderr)")
            // `ferry rules explain` on the live cluster follows a packet to the Service's endpoint.
            let trace = try await Subprocess.run(binary, ["rules", "explain", "--kubeconfig", dir + "/config", "--src", "10.244.1.5", "--dst", "10.96.0.10", "--dport", "80"])
            #expect(trace.status == 0 && trace.stdout.contains("127.0.0.1:8080"), "\(trace.stdout)\(trace.stderr)")
            let none = try await Subprocess.run(binary, ["rules", "explain", "--kubeconfig", dir + "/config", "--src", "10.244.1.5", "--dst", "10.96.0.99", "--dport", "80"])
            #expect(!none.stdout.contains("127.0.0.1:8080"), "another proxy's Service is not in Ferry's rules: \(none.stdout)")
        }
    }
}
