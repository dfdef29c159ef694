import FerryTestSupport
import Foundation
import Testing

/// `ferry service-proxy --mode iptables` applying real kernel rules inside a network namespace the test
/// creates ("node"), with origins in two "pod" namespaces linked to it by veth pairs, nothing else.
@Suite(.serialized)
struct ServiceProxyNamespaceTests {
    /// An origin naming itself, on an IPv4 or IPv6 address. It binds with socketserver, not HTTPServer,
    /// whose bind looks the host name up: there is no DNS inside these namespaces.
    static let origin = """
    import http.server, socket, socketserver, sys
    name, host = sys.argv[1], sys.argv[2]
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (name + "\\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    class S(socketserver.TCPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        allow_reuse_address = True
    S((host, 8080), H).serve_forever()
    """

    /// Starts `origin` in pod namespace i on `addresses[i]` and waits until each answers from the node.
    static func startOrigins(_ addresses: [String], in net: NetworkNamespaces, dir: String, processes: Started) async throws {
        try origin.write(toFile: dir + "/origin.py", atomically: true, encoding: .utf8)
        for (i, address) in addresses.enumerated() {
            let (tool, args) = net.exec(in: net.pods[i], "python3", [dir + "/origin.py", "pod\(i + 1)", address])
            processes.add(try Subprocess(tool, args))
        }
        for address in addresses {
            let host = address.contains(":") ? "[\(address)]" : address
            let (curlTool, curlArgs) = net.exec(in: net.node, "curl", ["-sS", "--max-time", "2", "-g", "http://\(host):8080/"])
            #expect(await Waiting.untilAsync(timeout: .seconds(15)) { (try? await Subprocess.run(curlTool, curlArgs, timeout: .seconds(5)).status) == 0 })
        }
    }

    static func manifests(endpoints: [String]) -> String {
        """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: demo}
        spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
        addressType: IPv4
        ports: [{name: http, port: 8080, protocol: TCP}]
        endpoints:
        \(endpoints.map { "  - {addresses: [\($0)], conditions: {ready: true}, nodeName: node}" }.joined(separator: "\n"))
        """
    }

    /// Processes a namespace test starts; all are killed when it ends.
    final class Started {
        private(set) var all: [Subprocess] = []
        func add(_ process: Subprocess) { all.append(process) }
    }

    /// A node and two pod namespaces (10.244.1.5, 10.244.2.7) and a scratch folder for `body`; whatever
    /// happens, the processes it started are killed and the namespaces and folder removed.
    static func withNamespaces(_ name: String, _ body: (NetworkNamespaces, String, Started) async throws -> Void) async throws {
        let net = try await NetworkNamespaces(podAddresses: ["10.244.1.5", "10.244.2.7"])
        let dir = try TLSFixtures.folder(name)
        let processes = Started()
        do {
            try await body(net, dir, processes)
        } catch {
            for p in processes.all { p.signal(SIGKILL) }
            await net.remove()
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
        for p in processes.all { p.signal(SIGKILL) }
        for p in processes.all { _ = await p.waitForExit(timeout: .seconds(5)) }
        await net.remove()
        try? FileManager.default.removeItem(atPath: dir)
    }


    @Test(.requiresRoot, .requires("ip", "iptables", "iptables-restore", "iptables-save", "curl", "python3")) func aClusterIPReachesEveryEndpointAndARemovedOneGetsNoNewConnections() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "iptables", "iptables-restore", "iptables-save", "curl", "python3"),
              let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withNamespaces("service-proxy") { net, dir, processes in
            // Each origin answers directly before the Service is tried.
            try await Self.startOrigins(["10.244.1.5", "10.244.2.7"], in: net, dir: dir, processes: processes)
            // Locally made packets need a route before the nat OUTPUT chain rewrites them.
            try await NetworkNamespaces.ip(["-n", net.node, "route", "add", "10.96.0.0/16", "dev", "vn1"])
            try FileManager.default.createDirectory(atPath: dir + "/manifests", withIntermediateDirectories: true)
            try Self.manifests(endpoints: ["10.244.1.5", "10.244.2.7"]).write(toFile: dir + "/manifests/web.yaml", atomically: true, encoding: .utf8)
            let (tool, args) = net.exec(in: net.node, binary, ["service-proxy", "--manifests", dir + "/manifests", "--cluster-cidr", "10.244.0.0/16", "--hostname-override", "node"])
            let ferry = try Subprocess(tool, args)
            processes.add(ferry)
            #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.contains("rules synced") }, "\(ferry.stderr)")

            func fetch() async throws -> String {
                let (curlTool, curlArgs) = net.exec(in: net.node, "curl", ["-sS", "--max-time", "5", "http://10.96.0.10/"])
                return try await Subprocess.run(curlTool, curlArgs, timeout: .seconds(10)).stdout
            }
            var seen = Set<String>()
            for _ in 0..<40 where seen.count < 2 { seen.insert(try await fetch()) }
            #expect(seen == ["pod1\n", "pod2\n"], "every endpoint answers through the ClusterIP")

            // kube-proxy's health and metrics ports, inside the node namespace.
            let (healthTool, healthArgs) = net.exec(in: net.node, "curl", ["-sS", "-w", "%{http_code}", "http://127.0.0.1:10256/healthz"])
            let health = try await Subprocess.run(healthTool, healthArgs).stdout
            #expect(health.hasPrefix("{\"lastUpdated\": \"20") && health.hasSuffix("200"), "\(health)")
            let (metricsTool, metricsArgs) = net.exec(in: net.node, "curl", ["-sS", "http://127.0.0.1:10249/metrics"])
            let metrics = try await Subprocess.run(metricsTool, metricsArgs).stdout
            #expect(metrics.contains("ferry_service_proxy_syncs_total{result=\"success\"} 1") && metrics.contains("kubeproxy_sync_proxy_rules_duration_seconds_count 1"), "\(metrics)")
            let natRules = metrics.split(separator: "\n").first { $0.hasPrefix("kubeproxy_sync_proxy_rules_iptables_total{table=\"nat\"} ") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
            #expect((natRules ?? 0) > 10, "the nat rules written: \(String(describing: natRules))")

            // pod2 leaves the EndpointSlice: after the next sync no new connection goes to it.
            try Self.manifests(endpoints: ["10.244.1.5"]).write(toFile: dir + "/manifests/web.yaml", atomically: true, encoding: .utf8)
            #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.components(separatedBy: "rules synced").count >= 3 })
            var after: [String] = []
            for _ in 0..<20 { after.append(try await fetch()) }
            #expect(Set(after) == ["pod1\n"], "\(after)")

            // The kernel holds kube-proxy's chains; --cleanup takes them away again.
            let (saveTool, saveArgs) = net.exec(in: net.node, "iptables-save", [])
            let saved = try await Subprocess.run(saveTool, saveArgs).stdout
            #expect(saved.contains(":KUBE-SVC-") && saved.contains("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"))
            #expect(saved.contains("-A INPUT -j KUBE-FIREWALL") && saved.contains("-A OUTPUT -j KUBE-FIREWALL"), "kubelet's jumps to the localnet guard")
            ferry.signal(SIGTERM)
            #expect(await ferry.waitForExit(timeout: .seconds(20)) == 0)

            // `ferry rules diff` compares what the kernel holds (in iptables-save's own spelling) with the next sync.
            let ruleFlags = ["--manifests", dir + "/manifests", "--cluster-cidr", "10.244.0.0/16", "--hostname-override", "node"]
            let (diffTool, diffArgs) = net.exec(in: net.node, binary, ["rules", "diff"] + ruleFlags)
            let same = try await Subprocess.run(diffTool, diffArgs)
            #expect(same.stdout == "no changes: the rules in the kernel are what the manifests make\n", "\(same.stdout)\(same.stderr)")
            try Self.manifests(endpoints: ["10.244.1.5", "10.244.2.7"]).write(toFile: dir + "/manifests/web.yaml", atomically: true, encoding: .utf8)
            let grown = try await Subprocess.run(diffTool, diffArgs).stdout
            #expect(grown.contains("+ :KUBE-SEP-") && grown.contains("-> 10.244.2.7:8080") && grown.contains("- -A KUBE-SVC-"), "\(grown)")
            let (cleanTool, cleanArgs) = net.exec(in: net.node, binary, ["service-proxy", "--cleanup"])
            let cleaned = try await Subprocess.run(cleanTool, cleanArgs)
            #expect(cleaned.status == 0, "\(cleaned.stderr)")
            let afterCleanup = try await Subprocess.run(saveTool, saveArgs).stdout
            #expect(!afterCleanup.contains("KUBE-SVC-") && !afterCleanup.contains("KUBE-SERVICES"), "\(afterCleanup)")
        }
    }

    /// The nftables mode: kube-proxy's table written with one `nft -f` per sync. A ClusterIP reaches both
    /// endpoints, a Service without endpoints refuses at once, a removed endpoint gets no new connections
    /// and its chain is deleted a second or more after the sync that left it unused, `rules diff` reads
    /// the kernel's table, and --cleanup removes the table.
    @Test(.requiresRoot, .requires("ip", "nft", "unshare", "curl", "python3")) func theNFTablesModeServesAndExplainsItsTable() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "nft", "unshare", "curl", "python3"), let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withNamespaces("service-proxy-nft") { net, dir, processes in
            try await Self.startOrigins(["10.244.1.5", "10.244.2.7"], in: net, dir: dir, processes: processes)
            try await NetworkNamespaces.ip(["-n", net.node, "route", "add", "10.96.0.0/16", "dev", "vn1"])
            try FileManager.default.createDirectory(atPath: dir + "/manifests", withIntermediateDirectories: true)
            let empty = """

            ---
            apiVersion: v1
            kind: Service
            metadata: {name: empty, namespace: demo}
            spec: {clusterIP: 10.96.0.11, ports: [{port: 80}]}
            """
            try (Self.manifests(endpoints: ["10.244.1.5", "10.244.2.7"]) + empty).write(toFile: dir + "/manifests/web.yaml", atomically: true, encoding: .utf8)
            let ruleFlags = ["--manifests", dir + "/manifests", "--cluster-cidr", "10.244.0.0/16", "--hostname-override", "node", "--service-cluster-ip-range", "10.96.0.0/16"]
            let (tool, args) = net.exec(in: net.node, binary, ["service-proxy", "--mode", "nftables"] + ruleFlags)
            let ferry = try Subprocess(tool, args)
            processes.add(ferry)
            #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.contains("rules synced") }, "\(ferry.stderr)")

            func fetch(_ url: String = "http://10.96.0.10/") async throws -> (status: Int32?, stdout: String, stderr: String) {
                let (curlTool, curlArgs) = net.exec(in: net.node, "curl", ["-sS", "--max-time", "5", url])
                return try await Subprocess.run(curlTool, curlArgs, timeout: .seconds(10))
            }
            var seen = Set<String>()
            for _ in 0..<40 where seen.count < 2 { seen.insert(try await fetch().stdout) }
            #expect(seen == ["pod1\n", "pod2\n"], "every endpoint answers through the ClusterIP")
            // No endpoints: the reject-chain answers at once (curl: connection refused), no timeout.
            let refused = try await fetch("http://10.96.0.11/")
            #expect(refused.status == 7, "\(refused.stderr)")
            let (metricsTool, metricsArgs) = net.exec(in: net.node, "curl", ["-sS", "http://127.0.0.1:10249/metrics"])
            let metrics = try await Subprocess.run(metricsTool, metricsArgs).stdout
            #expect(metrics.contains("ferry_service_proxy_syncs_total{result=\"success\"} 1") && metrics.contains("ferry_service_proxy_nftables_rules "), "\(metrics)")

            let (listTool, listArgs) = net.exec(in: net.node, "nft", ["list", "table", "ip", "kube-proxy"])
            let gone = "endpoint-22EEGIMG-demo/web/tcp/http__10.244.2.7/8080"
            let before = try await Subprocess.run(listTool, listArgs).stdout
            #expect(before.contains("chain \(gone) {") && before.contains("numgen random mod 2 vmap"), "\(before)")

            // pod2 leaves: no new connection reaches it after the next sync; its chain is deleted later.
            try (Self.manifests(endpoints: ["10.244.1.5"]) + empty).write(toFile: dir + "/manifests/web.yaml", atomically: true, encoding: .utf8)
            #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.components(separatedBy: "rules synced").count >= 3 })
            var after: [String] = []
            for _ in 0..<20 { after.append(try await fetch().stdout) }
            #expect(Set(after) == ["pod1\n"], "\(after)")
            #expect(await Waiting.until(timeout: .seconds(10)) { ferry.stderr.contains("deleted stale nftables chains") }, "\(ferry.stderr)")
            let later = try await Subprocess.run(listTool, listArgs).stdout
            #expect(!later.contains(gone) && later.contains("numgen random mod 1 vmap"), "\(later)")
            ferry.signal(SIGTERM)
            #expect(await ferry.waitForExit(timeout: .seconds(20)) == 0)

            // `rules diff` compares the kernel's table with the next one, both as nft prints them.
            let (diffTool, diffArgs) = net.exec(in: net.node, binary, ["rules", "diff", "--mode", "nftables"] + ruleFlags)
            let same = try await Subprocess.run(diffTool, diffArgs)
            #expect(same.stdout == "no changes: the rules in the kernel are what the manifests make\n", "\(same.stdout)\(same.stderr)")
            try (Self.manifests(endpoints: ["10.244.1.5", "10.244.2.7"]) + empty).write(toFile: dir + "/manifests/web.yaml", atomically: true, encoding: .utf8)
            let grown = try await Subprocess.run(diffTool, diffArgs).stdout
            #expect(grown.contains("+ chain \(gone)") && grown.contains("+ rule \(gone): meta l4proto tcp dnat to 10.244.2.7:8080")
                    && grown.contains("- rule service-") && grown.contains("numgen random mod 1 vmap"), "\(grown)")
            let (cleanTool, cleanArgs) = net.exec(in: net.node, binary, ["service-proxy", "--cleanup"])
            let cleaned = try await Subprocess.run(cleanTool, cleanArgs)
            #expect(cleaned.status == 0, "\(cleaned.stderr)")
            let afterCleanup = try await Subprocess.run(listTool, listArgs)
            #expect(afterCleanup.status != 0 && afterCleanup.stderr.contains("No such file or directory"), "\(afterCleanup.stdout)")
        }
    }

    /// A dual-stack Service: its IPv6 cluster IP reaches both IPv6 endpoints through the ip6 nftables table,
    /// then through ip6tables rules (the iptables mode removes the nftables mode's tables when it starts).
    @Test(.requiresRoot, .requires("ip", "nft", "ip6tables", "ip6tables-restore", "ip6tables-save", "curl", "python3")) func aDualStackServiceIsReachableOverIPv6InBothKernelModes() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "nft", "ip6tables", "ip6tables-restore", "ip6tables-save", "curl", "python3"),
              let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withNamespaces("service-proxy-ipv6") { net, dir, processes in
            let pods = ["fd00:10:244:1::5", "fd00:10:244:2::7"]
            for (i, address) in pods.enumerated() {
                try await NetworkNamespaces.ip(["-n", net.node, "addr", "add", "fd00:10:244:\(i + 1)::1/64", "dev", "vn\(i + 1)", "nodad"])
                try await NetworkNamespaces.ip(["-n", net.pods[i], "addr", "add", "\(address)/64", "dev", "vp\(i + 1)", "nodad"])
                try await NetworkNamespaces.ip(["-n", net.pods[i], "-6", "route", "add", "default", "via", "fd00:10:244:\(i + 1)::1"])
            }
            try await Self.startOrigins(pods, in: net, dir: dir, processes: processes)
            try await NetworkNamespaces.ip(["-n", net.node, "-6", "route", "add", "fd00:10:96::/112", "dev", "vn1"])
            try FileManager.default.createDirectory(atPath: dir + "/manifests", withIntermediateDirectories: true)
            try """
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: demo}
            spec: {clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10, "fd00:10:96::10"], ipFamilies: [IPv4, IPv6], ports: [{name: http, port: 80, targetPort: 8080}]}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-v6, namespace: demo, labels: {kubernetes.io/service-name: web}}
            addressType: IPv6
            ports: [{name: http, port: 8080, protocol: TCP}]
            endpoints:
              - {addresses: ["fd00:10:244:1::5"], conditions: {ready: true}}
              - {addresses: ["fd00:10:244:2::7"], conditions: {ready: true}}
            """.write(toFile: dir + "/manifests/web.yaml", atomically: true, encoding: .utf8)

            func fetch() async throws -> String {
                let (curlTool, curlArgs) = net.exec(in: net.node, "curl", ["-sS", "--max-time", "5", "-g", "http://[fd00:10:96::10]/"])
                return try await Subprocess.run(curlTool, curlArgs, timeout: .seconds(10)).stdout
            }
            for mode in ["nftables", "iptables"] {
                let (tool, args) = net.exec(in: net.node, binary, ["service-proxy", "--mode", mode, "--manifests", dir + "/manifests", "--hostname-override", "node",
                                                                   "--cluster-cidr", "10.244.0.0/16,fd00:10:244::/56", "--iptables-localhost-nodeports", "false"])
                let ferry = try Subprocess(tool, args)
                processes.add(ferry)
                #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.contains("rules synced") }, "\(ferry.stderr)")
                var seen = Set<String>()
                for _ in 0..<40 where seen.count < 2 { seen.insert(try await fetch()) }
                #expect(seen == ["pod1\n", "pod2\n"], "\(mode): every IPv6 endpoint answers through the IPv6 cluster IP")
                ferry.signal(SIGTERM)
                #expect(await ferry.waitForExit(timeout: .seconds(20)) == 0)
            }
            let (saveTool, saveArgs) = net.exec(in: net.node, "ip6tables-save", ["-t", "nat"])
            let saved = try await Subprocess.run(saveTool, saveArgs).stdout
            #expect(saved.contains("-d fd00:10:96::10/128") && saved.contains("--to-destination [fd00:10:244:2::7]:8080"), "\(saved)")
            let (listTool, listArgs) = net.exec(in: net.node, "nft", ["list", "tables"])
            #expect(try await !Subprocess.run(listTool, listArgs).stdout.contains("kube-proxy"), "the iptables mode removed the nftables mode's tables")
            let (cleanTool, cleanArgs) = net.exec(in: net.node, binary, ["service-proxy", "--cleanup"])
            #expect(try await Subprocess.run(cleanTool, cleanArgs).status == 0)
            #expect(try await !Subprocess.run(saveTool, saveArgs).stdout.contains("KUBE-SVC-"))
        }
    }

    static let udpOrigin = """
    import socket, sys
    name, host = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 5353))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(name.encode(), peer)
    """

    /// Sends one datagram to the DNS Service from a fixed source port and prints the answer (or "timeout").
    static let udpClient = """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 40000))
    s.settimeout(2)
    s.sendto(b"q", ("10.96.0.53", 53))
    try:
        print(s.recvfrom(2048)[0].decode())
    except socket.timeout:
        print("timeout")
    """

    static func dnsManifests(endpoints: [String]) -> String {
        """
        apiVersion: v1
        kind: Service
        metadata: {name: dns, namespace: kube-system}
        spec: {clusterIP: 10.96.0.53, ports: [{port: 53, protocol: UDP, targetPort: 5353}]}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: dns-1, namespace: kube-system, labels: {kubernetes.io/service-name: dns}}
        addressType: IPv4
        ports: [{port: 5353, protocol: UDP}]
        endpoints:
        \(endpoints.map { "  - {addresses: [\($0)], conditions: {ready: true}}" }.joined(separator: "\n"))
        """
    }

    /// Users' most repeated kube-proxy complaint: a UDP client keeps being sent to an endpoint that is gone.
    @Test(.requiresRoot, .requires("ip", "iptables", "iptables-restore", "iptables-save", "conntrack", "python3")) func aUDPClientMovesToALiveEndpointWhenItsEndpointGoesAway() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "iptables", "iptables-restore", "iptables-save", "conntrack", "python3"),
              let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withNamespaces("service-proxy-udp") { net, dir, processes in
            try Self.udpOrigin.write(toFile: dir + "/origin.py", atomically: true, encoding: .utf8)
            try Self.udpClient.write(toFile: dir + "/client.py", atomically: true, encoding: .utf8)
            var origins: [String: Subprocess] = [:]
            for (i, address) in ["10.244.1.5", "10.244.2.7"].enumerated() {
                let (tool, args) = net.exec(in: net.pods[i], "python3", [dir + "/origin.py", "pod\(i + 1)", address])
                let origin = try Subprocess(tool, args)
                origins["pod\(i + 1)"] = origin
                processes.add(origin)
            }
            try await NetworkNamespaces.ip(["-n", net.node, "route", "add", "10.96.0.0/16", "dev", "vn1"])
            try FileManager.default.createDirectory(atPath: dir + "/manifests", withIntermediateDirectories: true)
            try Self.dnsManifests(endpoints: ["10.244.1.5", "10.244.2.7"]).write(toFile: dir + "/manifests/dns.yaml", atomically: true, encoding: .utf8)
            let (tool, args) = net.exec(in: net.node, binary, ["service-proxy", "--manifests", dir + "/manifests", "--hostname-override", "node"])
            let ferry = try Subprocess(tool, args)
            processes.add(ferry)
            #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.contains("rules synced") }, "\(ferry.stderr)")

            let (clientTool, clientArgs) = net.exec(in: net.node, "python3", [dir + "/client.py"])
            func ask() async throws -> String {
                try await Subprocess.run(clientTool, clientArgs, timeout: .seconds(10)).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            var first = "timeout"
            for _ in 0..<20 where first == "timeout" {
                first = try await ask()
            }
            #expect(first == "pod1" || first == "pod2", "\(first)")
            #expect(try await ask() == first, "the same source port stays with its endpoint (conntrack)")

            // That endpoint's Pod goes away: its origin stops and it leaves the EndpointSlice.
            let (gone, staying, goneAddress) = first == "pod1" ? ("pod1", "pod2", "10.244.1.5") : ("pod2", "pod1", "10.244.2.7")
            origins[gone]!.signal(SIGKILL)
            try Self.dnsManifests(endpoints: [goneAddress == "10.244.1.5" ? "10.244.2.7" : "10.244.1.5"]).write(toFile: dir + "/manifests/dns.yaml", atomically: true, encoding: .utf8)
            #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.components(separatedBy: "rules synced").count >= 3 })
            let (listTool, listArgs) = net.exec(in: net.node, "conntrack", ["-L", "-p", "udp"])
            let entries = try await Subprocess.run(listTool, listArgs)
            #expect(!entries.stdout.contains("src=\(goneAddress)"), "no entry still leads to the endpoint that went away: \(entries.stdout)")
            #expect(try await ask() == staying, "the next datagram from the same port reaches a live endpoint")
        }
    }

    /// The userspace mode: Ferry's own TCP proxy per Service port, reached through redirect rules (and the
    /// NodePort directly); an endpoint removed from the slice gets no new connections after the reload.
    @Test(.requiresRoot, .requires("ip", "iptables", "iptables-restore", "iptables-save", "curl", "python3")) func theUserspaceModeCarriesTCPThroughFerrysOwnListeners() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "iptables", "iptables-restore", "iptables-save", "curl", "python3"),
              let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withNamespaces("service-proxy-userspace") { net, dir, processes in
            try await Self.startOrigins(["10.244.1.5", "10.244.2.7"], in: net, dir: dir, processes: processes)
            try await NetworkNamespaces.ip(["-n", net.node, "route", "add", "10.96.0.0/16", "dev", "vn1"])
            try FileManager.default.createDirectory(atPath: dir + "/manifests", withIntermediateDirectories: true)
            let nodePortService = Self.manifests(endpoints: ["10.244.1.5", "10.244.2.7"])
                .replacingOccurrences(of: "spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}",
                                      with: "spec: {type: NodePort, clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]}")
            try nodePortService.write(toFile: dir + "/manifests/web.yaml", atomically: true, encoding: .utf8)
            let (tool, args) = net.exec(in: net.node, binary, ["service-proxy", "--mode", "userspace", "--manifests", dir + "/manifests", "--hostname-override", "node"])
            let ferry = try Subprocess(tool, args)
            processes.add(ferry)
            #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.contains("rules synced") }, "\(ferry.stderr)")

            func fetch(_ url: String) async throws -> String {
                let (curlTool, curlArgs) = net.exec(in: net.node, "curl", ["-sS", "--max-time", "5", url])
                return try await Subprocess.run(curlTool, curlArgs, timeout: .seconds(10)).stdout
            }
            var seen = Set<String>()
            for _ in 0..<20 where seen.count < 2 { seen.insert(try await fetch("http://10.96.0.10/")) }
            #expect(seen == ["pod1\n", "pod2\n"], "round robin over both endpoints through the cluster IP")
            let viaNodePort = try await fetch("http://10.244.1.1:30080/")
            #expect(viaNodePort == "pod1\n" || viaNodePort == "pod2\n", "\(viaNodePort)")
            let (saveTool, saveArgs) = net.exec(in: net.node, "iptables-save", ["-t", "nat"])
            let saved = try await Subprocess.run(saveTool, saveArgs).stdout
            #expect(saved.contains("-A KUBE-PORTALS-HOST -d 10.96.0.10/32 -p tcp") && saved.contains("-j REDIRECT --to-ports"), "\(saved)")
            // kube-proxy's health and metrics ports in this mode too.
            let (healthTool, healthArgs) = net.exec(in: net.node, "curl", ["-sS", "-w", "%{http_code}", "http://127.0.0.1:10256/livez"])
            let health = try await Subprocess.run(healthTool, healthArgs).stdout
            #expect(health.hasPrefix("{\"lastUpdated\": \"20") && health.hasSuffix("200"), "\(health)")
            let (metricsTool, metricsArgs) = net.exec(in: net.node, "curl", ["-sS", "http://127.0.0.1:10249/metrics"])
            let metrics = try await Subprocess.run(metricsTool, metricsArgs).stdout
            #expect(metrics.contains("ferry_service_proxy_syncs_total{result=\"success\"} ") && metrics.contains("kubeproxy_sync_proxy_rules_iptables_total{table=\"nat\"} "), "\(metrics)")

            try nodePortService.replacingOccurrences(of: "\n  - {addresses: [10.244.2.7], conditions: {ready: true}, nodeName: node}", with: "")
                .write(toFile: dir + "/manifests/web.yaml", atomically: true, encoding: .utf8)
            #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.contains("configuration applied") })
            var after: [String] = []
            for _ in 0..<10 { after.append(try await fetch("http://10.96.0.10/")) }
            #expect(Set(after) == ["pod1\n"], "\(after)")
        }
    }

    /// UDP in the userspace mode: datagrams to the cluster IP reach an endpoint through Ferry's UDP listener.
    @Test(.requiresRoot, .requires("ip", "iptables", "iptables-restore", "iptables-save", "python3")) func theUserspaceModeCarriesUDP() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "iptables", "iptables-restore", "iptables-save", "python3"),
              let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withNamespaces("service-proxy-userspace-udp") { net, dir, processes in
            try Self.udpOrigin.write(toFile: dir + "/origin.py", atomically: true, encoding: .utf8)
            try Self.udpClient.write(toFile: dir + "/client.py", atomically: true, encoding: .utf8)
            for (i, address) in ["10.244.1.5", "10.244.2.7"].enumerated() {
                let (tool, args) = net.exec(in: net.pods[i], "python3", [dir + "/origin.py", "pod\(i + 1)", address])
                processes.add(try Subprocess(tool, args))
            }
            try await NetworkNamespaces.ip(["-n", net.node, "route", "add", "10.96.0.0/16", "dev", "vn1"])
            try FileManager.default.createDirectory(atPath: dir + "/manifests", withIntermediateDirectories: true)
            try Self.dnsManifests(endpoints: ["10.244.1.5", "10.244.2.7"]).write(toFile: dir + "/manifests/dns.yaml", atomically: true, encoding: .utf8)
            let (tool, args) = net.exec(in: net.node, binary, ["service-proxy", "--mode", "userspace", "--manifests", dir + "/manifests", "--hostname-override", "node"])
            let ferry = try Subprocess(tool, args)
            processes.add(ferry)
            #expect(await Waiting.until(timeout: .seconds(20)) { ferry.stderr.contains("rules synced") }, "\(ferry.stderr)")
            let (clientTool, clientArgs) = net.exec(in: net.node, "python3", [dir + "/client.py"])
            var answer = "timeout"
            for _ in 0..<20 where answer == "timeout" {
                answer = try await Subprocess.run(clientTool, clientArgs, timeout: .seconds(10)).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            #expect(answer == "pod1" || answer == "pod2", "\(answer)")
            // A connected client (as DNS resolvers are) accepts the answer only from the address it asked.
            let connected = Self.udpClient.replacingOccurrences(of: "s.sendto(b\"q\", (\"10.96.0.53\", 53))", with: "s.connect((\"10.96.0.53\", 53))\ns.send(b\"q\")")
            try connected.write(toFile: dir + "/connected.py", atomically: true, encoding: .utf8)
            let (connTool, connArgs) = net.exec(in: net.node, "python3", [dir + "/connected.py"])
            let connectedAnswer = try await Subprocess.run(connTool, connArgs, timeout: .seconds(10)).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(connectedAnswer == "pod1" || connectedAnswer == "pod2", "\(connectedAnswer)")
        }
    }
}

/// The commands that need no privileges: --dry-run and `ferry rules explain`.
@Suite struct ServiceProxyDryRunTests {
    @Test func dryRunAndExplainWithoutPrivileges() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("rules")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try (ServiceProxyNamespaceTests.manifests(endpoints: ["10.244.1.5", "10.244.2.7"]) + """

        ---
        apiVersion: v1
        kind: Service
        metadata: {name: dns, namespace: demo}
        spec: {clusterIP: 10.96.0.53, ports: [{port: 53, protocol: UDP}]}
        """).write(toFile: dir + "/web.yaml", atomically: true, encoding: .utf8)
        let dry = try await Subprocess.run(binary, ["service-proxy", "--manifests", dir, "--dry-run", "--cluster-cidr", "10.244.0.0/16"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("-t nat -A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"))
        #expect(dry.stdout.contains("-A KUBE-SERVICES -m comment --comment \"demo/web:http cluster IP\" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j KUBE-SVC-"))
        #expect(dry.stdout.contains("-m statistic --mode random --probability 0.5000000000"))
        let explained = try await Subprocess.run(binary, ["rules", "explain", "--manifests", dir, "--src", "10.244.9.9", "--dst", "10.96.0.10", "--dport", "80"])
        #expect(explained.stdout.contains("DNAT 10.244.1.5:8080 p=0.5000") && explained.stdout.contains("DNAT 10.244.2.7:8080 p=0.5000"), "\(explained.stdout)\(explained.stderr)")
        let rejected = try await Subprocess.run(binary, ["rules", "explain", "--manifests", dir, "--src", "10.244.9.9", "--dst", "10.96.0.53", "--dport", "53", "--proto", "udp"])
        #expect(rejected.stdout.contains("REJECT") && rejected.stdout.contains("demo/dns has no endpoints"), "\(rejected.stdout)")
        // The same in nftables mode: the whole `nft -f` transaction, and the tracer over kube-proxy's table.
        let nftDry = try await Subprocess.run(binary, ["service-proxy", "--mode", "nftables", "--manifests", dir, "--dry-run", "--cluster-cidr", "10.244.0.0/16"])
        #expect(nftDry.status == 0, "\(nftDry.stderr)")
        #expect(nftDry.stdout.contains("add element ip kube-proxy service-ips { 10.96.0.10 . tcp . 80 : goto service-AXK6CI2C-demo/web/tcp/http }"), "\(nftDry.stdout)")
        #expect(nftDry.stdout.contains("add element ip kube-proxy no-endpoint-services { 10.96.0.53 . udp . 53 comment \"demo/dns\" : goto reject-chain }"))
        let nftExplained = try await Subprocess.run(binary, ["rules", "explain", "--mode", "nftables", "--manifests", dir, "--src", "10.244.9.9", "--dst", "10.96.0.10", "--dport", "80"])
        #expect(nftExplained.stdout.contains("via nat-prerouting → services → service-AXK6CI2C-demo/web/tcp/http → endpoint-")
                && nftExplained.stdout.contains("DNAT 10.244.2.7:8080 p=0.5000"), "\(nftExplained.stdout)\(nftExplained.stderr)")
        let nftRejected = try await Subprocess.run(binary, ["rules", "explain", "--mode", "nftables", "--manifests", dir, "--src", "10.244.9.9", "--dst", "10.96.0.53", "--dport", "53", "--proto", "udp"])
        #expect(nftRejected.stdout.contains("REJECT — demo/dns has no endpoints"), "\(nftRejected.stdout)")
        let userspaceRules = try await Subprocess.run(binary, ["rules", "explain", "--mode", "userspace", "--manifests", dir, "--src", "10.244.9.9", "--dst", "10.96.0.10", "--dport", "80"])
        #expect(userspaceRules.status != 0 && userspaceRules.stderr.contains("--mode must be iptables or nftables"), "\(userspaceRules.stderr)")
        let bad = try await Subprocess.run(binary, ["service-proxy", "--manifests", dir, "--mode", "ipvs"])
        #expect(bad.status != 0 && bad.stderr.contains("--mode must be iptables, nftables or userspace"))
    }
}

/// kube-proxy's node-level details: kubelet's KUBE-FIREWALL jumps, `--nodeport-addresses` CIDRs and
/// `primary` (the nftables default), ServiceCIDR objects read from manifests.
@Suite struct ServiceProxyNodeOptionsTests {
    static func folder(extra: String = "") throws -> String {
        let dir = try TLSFixtures.folder("node-options")
        try (ServiceProxyNamespaceTests.manifests(endpoints: ["10.244.1.5"]) + extra).write(toFile: dir + "/web.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func theIPTablesModeEnsuresKubeletsJumpsToKUBEFIREWALL() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dry = try await Subprocess.run(binary, ["service-proxy", "--manifests", dir, "--dry-run"])
        #expect(dry.stdout.contains("-t filter -A INPUT -j KUBE-FIREWALL\n") && dry.stdout.contains("-t filter -A OUTPUT -j KUBE-FIREWALL\n"), "\(dry.stdout)")
        #expect(dry.stdout.contains("-A KUBE-FIREWALL -m comment --comment \"block incoming localnet connections\""))
    }

    @Test func serviceCIDRObjectsMakeTheUnallocatedClusterIPDrop() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let dir = try Self.folder(extra: """

        ---
        apiVersion: networking.k8s.io/v1
        kind: ServiceCIDR
        metadata: {name: kubernetes}
        spec: {cidrs: [10.96.0.0/16, "fd00:10:96::/112"]}
        """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dry = try await Subprocess.run(binary, ["service-proxy", "--mode", "nftables", "--manifests", dir, "--dry-run", "--node-ip", "192.168.0.2"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("ip daddr { 10.96.0.0/16 } drop comment \"Drop traffic to unallocated ClusterIPs\""), "\(dry.stdout)")
        let explained = try await Subprocess.run(binary, ["rules", "explain", "--mode", "nftables", "--manifests", dir, "--src", "10.244.9.9", "--dst", "10.96.0.99", "--dport", "80", "--node-ip", "192.168.0.2"])
        #expect(explained.stdout.contains("Drop traffic to unallocated ClusterIPs"), "\(explained.stdout)\(explained.stderr)")
        try "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: bad}\nspec: {cidrs: [not-a-cidr]}\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let bad = try await Subprocess.run(binary, ["service-proxy", "--mode", "nftables", "--manifests", dir, "--dry-run"])
        #expect(bad.status != 0 && bad.stderr.contains("spec.cidrs[0] is not a CIDR"), "\(bad.stderr)")
    }

    @Test func nodePortAddressesTakeCIDRsAndPrimary() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The nftables mode defaults to primary: the --node-ip addresses only.
        let primary = try await Subprocess.run(binary, ["service-proxy", "--mode", "nftables", "--manifests", dir, "--dry-run", "--node-ip", "192.168.0.2"])
        #expect(primary.stdout.contains("add element ip kube-proxy nodeport-ips { 192.168.0.2 }"), "\(primary.stdout)")
        // A CIDR takes this machine's addresses inside it (loopback is one here).
        let loopback = try await Subprocess.run(binary, ["service-proxy", "--manifests", dir, "--dry-run", "--nodeport-addresses", "127.0.0.0/8"])
        #expect(loopback.status == 0, "\(loopback.stderr)")
        #expect(loopback.stdout.contains("-d 127.0.0.1 -j KUBE-NODEPORTS"), "\(loopback.stdout)")
        let none = try await Subprocess.run(binary, ["service-proxy", "--manifests", dir, "--dry-run", "--nodeport-addresses", "203.0.113.0/24"])
        #expect(none.status != 0 && none.stderr.contains("matches none of this node's addresses"), "\(none.stderr)")
        let mixed = try await Subprocess.run(binary, ["service-proxy", "--manifests", dir, "--dry-run", "--nodeport-addresses", "primary,10.0.0.0/8"])
        #expect(mixed.status != 0 && mixed.stderr.contains("primary cannot be combined with CIDRs"), "\(mixed.stderr)")
    }
}
