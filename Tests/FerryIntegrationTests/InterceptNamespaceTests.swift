import FerryTestSupport
import Foundation
import Testing
import Yams

/// Transparent egress capture with real kernel rules: a "pod" namespace (10.244.1.5) whose outbound TCP is
/// sent to `ferry egress --intercept` by `ferry rules capture`, Ferry running in it as UID 1337 (so its own
/// connections leave uncaptured), and an origin in a second namespace (10.244.2.7) with plain HTTP on 80,
/// TLS on 443 (a certificate from the test's CA: Ferry never holds a key) and a server-first TCP service on
/// 5000. The clients are curl and Python, run as root: they do not know a proxy exists.
@Suite(.serialized)
struct InterceptNamespaceTests {
    static let origin = """
    import json, socket, socketserver, ssl, sys, threading, http.server
    cert, key = sys.argv[1], sys.argv[2]
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"peer": self.client_address[0], "host": self.headers.get("Host"), "via": self.headers.get("Via"),
                               "tls": isinstance(self.connection, ssl.SSLSocket)}).encode() + b"\\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
        allow_reuse_address = True
        daemon_threads = True
    class S6(S):  # the same on IPv6 only, beside the IPv4 servers
        address_family = socket.AF_INET6
        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            super().server_bind()
    plain = S(("0.0.0.0", 80), H)
    secure = S(("0.0.0.0", 443), H)
    plain6 = S6(("::", 80), H)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    class Banner(socketserver.BaseRequestHandler):  # a protocol whose server speaks first
        def handle(self):
            self.request.sendall(b"hello from 5000\\n")
            data = self.request.recv(100)
            self.request.sendall(b"echo " + data)
    banner = S(("0.0.0.0", 5000), Banner)
    for server in (plain, secure, plain6, banner):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
    """

    /// The node routes between the pods, and `origin` runs in the pods `servers` (indexes) with a certificate
    /// for `names` from a test CA, whose folder the caller removes.
    static func routedOrigins(_ net: NetworkNamespaces, dir: String, processes: ServiceProxyNamespaceTests.Started, in servers: [Int],
                              names: [String] = ["origin.test"]) async throws -> DownstreamTLSTests.Certificates {
        let (sysctlTool, sysctlArgs) = net.exec(in: net.node, "sysctl", ["-w", "net.ipv4.ip_forward=1"])
        #expect(try await Subprocess.run(sysctlTool, sysctlArgs, timeout: .seconds(10)).status == 0)
        let certs = try DownstreamTLSTests.Certificates(["origin": names])
        try origin.write(toFile: dir + "/origin.py", atomically: true, encoding: .utf8)
        for index in servers {
            let (tool, args) = net.exec(in: net.pods[index], "python3", [dir + "/origin.py", certs.dir + "/origin.pem", certs.dir + "/origin.key"])
            let server = try Subprocess(tool, args)
            processes.add(server)
            #expect(await Waiting.until { server.stdout.contains("ready") }, "\(server.stderr)")
        }
        return certs
    }

    /// Whether curl in the pod reached the origin through Ferry: the response, and curl's exit status.
    static func curl(_ net: NetworkNamespaces, _ arguments: [String]) async throws -> (status: Int32, body: String, code: String) {
        let (tool, args) = net.exec(in: net.pods[0], "curl", ["-sS", "--max-time", "5", "-w", "\n%{http_code}"] + arguments)
        let result = try await Subprocess.run(tool, args, timeout: .seconds(20))
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (result.status ?? -1, lines.dropLast().joined(separator: "\n") + result.stderr, String(lines.last ?? ""))
    }

    @Test(.requires("ip", "iptables", "curl", "python3", "setpriv")) func podTrafficIsCapturedAndDecidedByHostSNIAndAddress() async throws {
        try await Self.capture(mode: "iptables")
    }

    @Test(.requires("ip", "nft", "curl", "python3", "setpriv")) func theNFTablesRulesCaptureTheSame() async throws {
        try await Self.capture(mode: "nftables")
    }

    static func capture(mode: String) async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", mode == "nftables" ? "nft" : "iptables", "curl", "python3", "setpriv"),
              let binary = Prerequisites.ferryBinary() else { return }
        try await ServiceProxyNamespaceTests.withNamespaces("intercept") { net, dir, processes in
            let certs = try await Self.routedOrigins(net, dir: dir, processes: processes, in: [1], names: ["origin.test", "blocked.test", "elsewhere.test"])
            defer { try? FileManager.default.removeItem(atPath: certs.dir) }
            // elsewhere.test is somewhere else: naming it while connecting to the origin is spoofing.
            try """
            10.244.2.7 origin.test blocked.test
            10.244.2.99 elsewhere.test
            """.write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
            // Ferry in the pod as UID/GID 1337, which the capture rules leave alone.
            let ferry = try await FerryProcess(binary: Prerequisites.path(of: "ip")!, arguments: [
                "netns", "exec", net.pods[0], Prerequisites.path(of: "setpriv")!, "--reuid=1337", "--regid=1337", "--clear-groups",
                binary, "egress", "--listen", "127.0.0.1:3128", "--admin", "127.0.0.1:9901", "--intercept", "15001",
                "--hosts-file", dir + "/hosts", "--allow", "origin.test", "--allow", "elsewhere.test", "--allow", "10.244.2.7:5000",
            ])
            defer { Task { await ferry.stop() } }
            let (ruleTool, ruleArgs) = net.exec(in: net.pods[0], binary, ["rules", "capture", "--mode", mode, "--proxy-port", "15001"])
            let applied = try await Subprocess.run(ruleTool, ruleArgs, timeout: .seconds(30))
            #expect(applied.status == 0, "\(applied.stderr)")

            // Plain HTTP: allowed by Host, through Ferry (the origin sees its Via), with the original destination logged.
            let allowed = try await Self.curl(net, ["http://origin.test/", "--resolve", "origin.test:80:10.244.2.7"])
            #expect(allowed.code == "200", "\(allowed)")
            #expect(allowed.body.contains(#""via": "1.1 ferry""#) && allowed.body.contains(#""host": "origin.test""#), "\(allowed.body)")
            #expect(await Waiting.until { ferry.accessLog.contains { $0.contains(#""original_destination":"10.244.2.7:80""#) && $0.contains(#""decided_on":"host""#) } },
                    "\(ferry.accessLog)")
            // Refused by Host, and a Host that does not resolve to where the connection goes.
            let denied = try await Self.curl(net, ["http://blocked.test/", "--resolve", "blocked.test:80:10.244.2.7"])
            #expect(denied.code == "403", "\(denied)")
            let spoofed = try await Self.curl(net, ["http://10.244.2.7/", "-H", "Host: elsewhere.test"])
            #expect(spoofed.code == "409", "\(spoofed)")
            #expect(spoofed.body.contains("elsewhere.test resolves to 10.244.2.99"), "\(spoofed.body)")
            // Ferry's own connection to the origin was not captured again: the origin saw one hop (`"via": "1.1 ferry"`
            // above, not "1.1 ferry, 1.1 ferry"), and the log has one line per request.
            #expect(await Waiting.until { ferry.accessLog.filter { $0.contains(#""original_destination":"10.244.2.7:80""#) }.count == 3 }, "\(ferry.accessLog)")

            // On one keep-alive connection, each request's Host is judged (a remembered decision is only reused for the same Host).
            let (kaTool, kaArgs) = net.exec(in: net.pods[0], "python3", ["-c", """
                import http.client
                c = http.client.HTTPConnection("10.244.2.7", 80, timeout=10)
                for host in ["origin.test", "blocked.test", "origin.test", "elsewhere.test", "origin.test"]:
                    c.request("GET", "/", headers={"Host": host}); r = c.getresponse(); r.read(); print(r.status)
                """])
            let keepAlive = try await Subprocess.run(kaTool, kaArgs, timeout: .seconds(20))
            #expect(keepAlive.stdout == "200\n403\n200\n409\n200\n", "\(keepAlive.stdout) \(keepAlive.stderr)")

            // TLS: allowed by server name; the client's handshake is with the origin (its CA, its key).
            let tls = try await Self.curl(net, ["https://origin.test/", "--resolve", "origin.test:443:10.244.2.7", "--cacert", certs.dir + "/ca.pem"])
            #expect(tls.code == "200" && tls.body.contains(#""tls": true"#) && tls.body.contains(#""via": null"#), "\(tls)")
            #expect(await Waiting.until { ferry.accessLog.contains { $0.contains(#""authority":"origin.test:443""#) && $0.contains(#""decided_on":"sni""#) } },
                    "\(ferry.accessLog)")
            // Refused by server name, and a server name that is not where the connection goes: closed, no handshake.
            let tlsDenied = try await Self.curl(net, ["https://blocked.test/", "--resolve", "blocked.test:443:10.244.2.7", "--cacert", certs.dir + "/ca.pem"])
            #expect(tlsDenied.status != 0 && tlsDenied.code == "000", "\(tlsDenied)")
            let tlsSpoofed = try await Self.curl(net, ["https://elsewhere.test/", "--resolve", "elsewhere.test:443:10.244.2.7", "--cacert", certs.dir + "/ca.pem"])
            #expect(tlsSpoofed.status != 0 && tlsSpoofed.code == "000", "\(tlsSpoofed)")
            #expect(await Waiting.until { ferry.accessLog.contains { $0.contains("elsewhere.test resolves to 10.244.2.99") } }, "\(ferry.accessLog)")

            // A server-first protocol: decided by address and port once the client has said nothing for a while.
            let (pyTool, pyArgs) = net.exec(in: net.pods[0], "python3", ["-c", """
                import socket; s = socket.create_connection(("10.244.2.7", 5000), timeout=10)
                print(s.recv(100).decode().strip()); s.sendall(b"ping"); print(s.recv(100).decode().strip())
                """])
            let banner = try await Subprocess.run(pyTool, pyArgs, timeout: .seconds(20))
            #expect(banner.stdout == "hello from 5000\necho ping\n", "\(banner.stdout) \(banner.stderr)")
            #expect(ferry.accessLog.contains { $0.contains(#""original_destination":"10.244.2.7:5000""#) && $0.contains(#""decided_on":"address""#) }, "\(ferry.accessLog)")

            // A connection made straight to the intercept port is no interception.
            let direct = try await Self.curl(net, ["http://127.0.0.1:15001/"])
            #expect(direct.code == "000", "\(direct)")

            // Cleanup leaves nothing of Ferry's.
            let (cleanTool, cleanArgs) = net.exec(in: net.pods[0], binary, ["rules", "capture", "--mode", mode, "--cleanup"])
            let cleaned = try await Subprocess.run(cleanTool, cleanArgs, timeout: .seconds(30))
            #expect(cleaned.status == 0, "\(cleaned.stderr)")
            let (listTool, listArgs) = mode == "nftables" ? net.exec(in: net.pods[0], "nft", ["list", "ruleset"]) : net.exec(in: net.pods[0], "iptables-save", [])
            let listing = try await Subprocess.run(listTool, listArgs, timeout: .seconds(20))
            #expect(!listing.stdout.lowercased().contains("ferry"), "\(listing.stdout)")
            // Without the rules the origin is reached directly.
            let straight = try await Self.curl(net, ["http://origin.test/", "--resolve", "origin.test:80:10.244.2.7"])
            #expect(straight.code == "200" && straight.body.contains(#""via": null"#), "\(straight)")
        }
    }

    /// The node-level rules: the Pods' connections to the outside (PREROUTING) go to Ferry on the node; to
    /// the cluster's Pods and to a Service address (DNATed by a kube-proxy-style rule) they do not.
    @Test(.requires("ip", "iptables", "curl", "python3", "setpriv")) func nodeRulesCaptureTheOutsideButNotTheCluster() async throws {
        try await Self.nodeCapture(mode: "iptables", extra: [])
    }

    /// The same with nftables, DNAT to the node's own address (a hostNetwork proxy) instead of REDIRECT.
    @Test(.requires("ip", "nft", "iptables", "curl", "python3", "setpriv")) func nodeRulesCanDNATToTheNodesProxy() async throws {
        try await Self.nodeCapture(mode: "nftables", extra: ["--proxy-address", "10.244.1.1"])
    }

    static func nodeCapture(mode: String, extra: [String]) async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "iptables", "curl", "python3", "setpriv"), let binary = Prerequisites.ferryBinary() else { return }
        try await ServiceProxyNamespaceTests.withNamespaces("intercept-node") { net, dir, processes in
            func run(_ namespace: String, _ tool: String, _ arguments: [String]) async throws -> (status: Int32?, stdout: String, stderr: String) {
                let (t, a) = net.exec(in: namespace, tool, arguments)
                return try await Subprocess.run(t, a, timeout: .seconds(20))
            }
            // "The internet": 192.0.2.10, served by the origin Pod's namespace, routed by the node.
            try await NetworkNamespaces.ip(["-n", net.pods[1], "addr", "add", "192.0.2.10/32", "dev", "lo"])
            try await NetworkNamespaces.ip(["-n", net.node, "route", "add", "192.0.2.10/32", "via", "10.244.2.7"])
            // A Service address, as kube-proxy would DNAT it.
            #expect(try await run(net.node, "iptables", ["-t", "nat", "-A", "PREROUTING", "-d", "10.96.0.10/32", "-p", "tcp", "--dport", "80",
                                                          "-j", "DNAT", "--to-destination", "10.244.2.7:80"]).status == 0)
            let certs = try await Self.routedOrigins(net, dir: dir, processes: processes, in: [1])
            defer { try? FileManager.default.removeItem(atPath: certs.dir) }
            try "192.0.2.10 origin.test\n".write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
            let ferry = try await FerryProcess(binary: Prerequisites.path(of: "ip")!, arguments: [
                "netns", "exec", net.node, Prerequisites.path(of: "setpriv")!, "--reuid=1337", "--regid=1337", "--clear-groups",
                binary, "egress", "--listen", "127.0.0.1:3128", "--admin", "127.0.0.1:9901", "--intercept", "15001",
                "--hosts-file", dir + "/hosts", "--allow", "origin.test",
            ])
            defer { Task { await ferry.stop() } }
            let applied = try await run(net.node, binary, ["rules", "capture", "--mode", mode, "--scope", "node", "--cluster-cidr", "10.244.0.0/16", "--service-cidr", "10.96.0.0/12"] + extra)
            #expect(applied.status == 0, "\(applied.stderr)")

            let outside = try await Self.curl(net, ["http://origin.test/", "--resolve", "origin.test:80:192.0.2.10"])
            #expect(outside.code == "200" && outside.body.contains(#""via": "1.1 ferry""#), "\(outside)")
            #expect(await Waiting.until { ferry.accessLog.contains { $0.contains(#""original_destination":"192.0.2.10:80""#) } }, "\(ferry.accessLog)")
            let service = try await Self.curl(net, ["http://10.96.0.10/"])
            #expect(service.code == "200" && service.body.contains(#""via": null"#), "a Service address is not captured: \(service)")
            let pod = try await Self.curl(net, ["http://10.244.2.7/"])
            #expect(pod.code == "200" && pod.body.contains(#""via": null"#), "a Pod address is not captured: \(pod)")
            #expect(ferry.accessLog.count == 1, "\(ferry.accessLog)")

            #expect(try await run(net.node, binary, ["rules", "capture", "--mode", mode, "--cleanup"]).status == 0)
            #expect(!(try await run(net.node, mode == "nftables" ? "nft" : "iptables-save", mode == "nftables" ? ["list", "ruleset"] : []).stdout.lowercased().contains("ferry")))
        }
    }

    /// `ferry sidecar` in a Pod with its rules: connections arriving for the app's port pass the inbound
    /// listener (the app sees Ferry's Via), the Pod's outbound connections pass the outbound one, decided by
    /// its rules, and the sidecar's own connection to the app over loopback is not captured again.
    @Test(.requires("ip", "iptables", "curl", "python3", "setpriv")) func aSidecarTakesBothDirections() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "iptables", "curl", "python3", "setpriv"), let binary = Prerequisites.ferryBinary() else { return }
        try await ServiceProxyNamespaceTests.withNamespaces("sidecar") { net, dir, processes in
            // The app in the sidecar's Pod, and a site in the other namespace: the same little server.
            let certs = try await Self.routedOrigins(net, dir: dir, processes: processes, in: [0, 1])
            defer { try? FileManager.default.removeItem(atPath: certs.dir) }
            try "10.244.2.7 origin.test\n".write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
            let sidecar = try await FerryProcess(binary: Prerequisites.path(of: "ip")!, arguments: [
                "netns", "exec", net.pods[0], Prerequisites.path(of: "setpriv")!, "--reuid=1337", "--regid=1337", "--clear-groups",
                binary, "sidecar", "--app-port", "80", "--hosts-file", dir + "/hosts", "--allow", "origin.test",
            ])
            defer { Task { await sidecar.stop() } }
            let (ruleTool, ruleArgs) = net.exec(in: net.pods[0], binary, ["rules", "capture", "--inbound-port", "80"])
            let applied = try await Subprocess.run(ruleTool, ruleArgs, timeout: .seconds(30))
            #expect(applied.status == 0, "\(applied.stderr)")

            // Inbound: from the other namespace to the app's port, through the sidecar.
            let (inTool, inArgs) = net.exec(in: net.pods[1], "curl", ["-sS", "--max-time", "5", "http://10.244.1.5/in"])
            let inbound = try await Subprocess.run(inTool, inArgs, timeout: .seconds(20))
            #expect(inbound.stdout.contains(#""via": "1.1 ferry""#) && inbound.stdout.contains(#""peer": "127.0.0.1""#), "\(inbound.stdout) \(inbound.stderr)")
            // Outbound: allowed by Host, refused otherwise.
            let outbound = try await Self.curl(net, ["http://origin.test/out", "--resolve", "origin.test:80:10.244.2.7"])
            #expect(outbound.code == "200" && outbound.body.contains(#""via": "1.1 ferry""#), "\(outbound)")
            let refused = try await Self.curl(net, ["http://10.244.2.7/out"])
            #expect(refused.code == "403", "\(refused)")
            #expect(await Waiting.until { sidecar.accessLog.contains { $0.contains(#""listener":"inbound""#) } && sidecar.accessLog.contains { $0.contains(#""listener":"outbound""#) } },
                    "\(sidecar.accessLog)")
            #expect(sidecar.accessLog.filter { $0.contains(#""listener":"inbound""#) }.count == 1, "\(sidecar.accessLog)")
            let (cleanTool, cleanArgs) = net.exec(in: net.pods[0], binary, ["rules", "capture", "--cleanup"])
            #expect(try await Subprocess.run(cleanTool, cleanArgs, timeout: .seconds(30)).status == 0)
        }
    }

    /// What `ferry inject` writes, run as the kubelet would: the capture init container's command as root,
    /// then the sidecar's as UID 1337 — and the Pod's traffic is captured both ways.
    @Test(.requires("ip", "iptables", "curl", "python3", "setpriv")) func theInjectedPodsContainersCaptureItsTraffic() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "iptables", "curl", "python3", "setpriv"), let binary = Prerequisites.ferryBinary() else { return }
        try await ServiceProxyNamespaceTests.withNamespaces("inject") { net, dir, processes in
            try """
            apiVersion: v1
            kind: Pod
            metadata: {name: app, annotations: {ferry.dev/allow: origin.test}}
            spec:
              containers: [{name: app, image: app, ports: [{containerPort: 80}]}]
            """.write(toFile: dir + "/pod.yaml", atomically: true, encoding: .utf8)
            let injected = try await Subprocess.run(binary, ["inject", "-f", dir + "/pod.yaml"], timeout: .seconds(30))
            #expect(injected.status == 0, "\(injected.stderr)")
            let pod = try #require(try Yams.load(yaml: injected.stdout) as? [String: Any])
            let initContainers = try #require((pod["spec"] as? [String: Any])?["initContainers"] as? [[String: Any]])
            let capture = try #require(initContainers.first { $0["name"] as? String == "ferry-capture" }?["args"] as? [String])
            let sidecarArgs = try #require(initContainers.first { $0["name"] as? String == "ferry" }?["args"] as? [String])

            let certs = try await Self.routedOrigins(net, dir: dir, processes: processes, in: [0, 1])
            defer { try? FileManager.default.removeItem(atPath: certs.dir) }
            // The init container, then the native sidecar (with the test's names: no DNS in these namespaces).
            let (ruleTool, ruleArgs) = net.exec(in: net.pods[0], binary, capture)
            let applied = try await Subprocess.run(ruleTool, ruleArgs, timeout: .seconds(30))
            #expect(applied.status == 0, "\(capture): \(applied.stderr)")
            try "10.244.2.7 origin.test\n".write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
            let sidecar = try await FerryProcess(binary: Prerequisites.path(of: "ip")!, arguments: [
                "netns", "exec", net.pods[0], Prerequisites.path(of: "setpriv")!, "--reuid=1337", "--regid=1337", "--clear-groups", binary,
            ] + sidecarArgs + ["--hosts-file", dir + "/hosts"])
            defer { Task { await sidecar.stop() } }

            let outbound = try await Self.curl(net, ["http://origin.test/", "--resolve", "origin.test:80:10.244.2.7"])
            #expect(outbound.code == "200" && outbound.body.contains(#""via": "1.1 ferry""#), "\(outbound)")
            #expect(try await Self.curl(net, ["http://10.244.2.7/"]).code == "403")
            let (inTool, inArgs) = net.exec(in: net.pods[1], "curl", ["-sS", "--max-time", "5", "http://10.244.1.5/"])
            let inbound = try await Subprocess.run(inTool, inArgs, timeout: .seconds(20))
            #expect(inbound.stdout.contains(#""via": "1.1 ferry""#), "\(inbound.stdout) \(inbound.stderr)")
            // The probes' address answers from outside the Pod (the kubelet's view).
            let (probeTool, probeArgs) = net.exec(in: net.node, "curl", ["-sS", "--max-time", "5", "-w", "%{http_code}", "-o", "/dev/null", "http://10.244.1.5:15020/ready"])
            #expect(try await Subprocess.run(probeTool, probeArgs, timeout: .seconds(20)).stdout == "200")
        }
    }

    /// TPROXY: the node's mangle rule hands the Pods' connections to Ferry with their destination intact
    /// (the accepted socket's own address is where the client was going; no NAT, no SO_ORIGINAL_DST).
    @Test(.requires("ip", "iptables", "curl", "python3")) func tproxyDeliversConnectionsWithTheirOwnDestination() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "iptables", "curl", "python3"), let binary = Prerequisites.ferryBinary() else { return }
        try await ServiceProxyNamespaceTests.withNamespaces("tproxy") { net, dir, processes in
            func run(_ namespace: String, _ tool: String, _ arguments: [String]) async throws -> (status: Int32?, stdout: String, stderr: String) {
                let (t, a) = net.exec(in: namespace, tool, arguments)
                return try await Subprocess.run(t, a, timeout: .seconds(20))
            }
            let certs = try await Self.routedOrigins(net, dir: dir, processes: processes, in: [1])
            defer { try? FileManager.default.removeItem(atPath: certs.dir) }
            try await NetworkNamespaces.ip(["-n", net.pods[1], "addr", "add", "192.0.2.10/32", "dev", "lo"])
            try await NetworkNamespaces.ip(["-n", net.node, "route", "add", "192.0.2.10/32", "via", "10.244.2.7"])
            // The kernel's tproxy.rst plumbing: marked packets are delivered locally, to Ferry's transparent socket.
            try await NetworkNamespaces.ip(["-n", net.node, "rule", "add", "fwmark", "1", "lookup", "100"])
            try await NetworkNamespaces.ip(["-n", net.node, "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100"])
            let tproxy = try await run(net.node, "iptables", ["-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "-s", "10.244.1.0/24", "-d", "192.0.2.0/24",
                                                              "-j", "TPROXY", "--tproxy-mark", "0x1/0x1", "--on-port", "15002"])
            #expect(tproxy.status == 0, "\(tproxy.stderr)")
            try "192.0.2.10 origin.test\n".write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
            // IP_TRANSPARENT needs CAP_NET_ADMIN: root here.
            let ferry = try await FerryProcess(binary: Prerequisites.path(of: "ip")!, arguments: [
                "netns", "exec", net.node, binary, "egress", "--listen", "127.0.0.1:3128", "--admin", "127.0.0.1:9901",
                "--intercept", "0.0.0.0:15002", "--intercept-mode", "tproxy", "--hosts-file", dir + "/hosts", "--allow", "origin.test",
            ])
            defer { Task { await ferry.stop() } }
            let allowed = try await Self.curl(net, ["http://origin.test/", "--resolve", "origin.test:80:192.0.2.10"])
            #expect(allowed.code == "200" && allowed.body.contains(#""via": "1.1 ferry""#), "\(allowed)")
            #expect(await Waiting.until { ferry.accessLog.contains { $0.contains(#""original_destination":"192.0.2.10:80""#) && $0.contains(#""decided_on":"host""#) } },
                    "\(ferry.accessLog)")
            let tls = try await Self.curl(net, ["https://origin.test/", "--resolve", "origin.test:443:192.0.2.10", "--cacert", certs.dir + "/ca.pem"])
            #expect(tls.code == "200" && tls.body.contains(#""tls": true"#), "\(tls)")
            #expect(try await Self.curl(net, ["http://192.0.2.10/"]).code == "403")
        }
    }

    /// IPv6: connections redirected by ip6tables read their destination with IP6T_SO_ORIGINAL_DST, and a
    /// dual-stack intercept listener (`[::]:15001`) still reads IPv4 ones (IPv4-mapped) as IPv4.
    @Test(.requires("ip", "iptables", "ip6tables", "curl", "python3", "setpriv")) func ipv6AndDualStackInterception() async throws {
        guard Prerequisites.root(), Prerequisites.have("ip", "iptables", "ip6tables", "ip6tables-restore", "curl", "python3", "setpriv"),
              let binary = Prerequisites.ferryBinary() else { return }
        try await ServiceProxyNamespaceTests.withNamespaces("intercept-v6") { net, dir, processes in
            for (i, address) in ["fd00:10:244:1::5", "fd00:10:244:2::7"].enumerated() {
                try await NetworkNamespaces.ip(["-n", net.node, "addr", "add", "fd00:10:244:\(i + 1)::1/64", "dev", "vn\(i + 1)", "nodad"])
                try await NetworkNamespaces.ip(["-n", net.pods[i], "addr", "add", "\(address)/64", "dev", "vp\(i + 1)", "nodad"])
                try await NetworkNamespaces.ip(["-n", net.pods[i], "-6", "route", "add", "default", "via", "fd00:10:244:\(i + 1)::1"])
            }
            let (fwdTool, fwdArgs) = net.exec(in: net.node, "sysctl", ["-w", "net.ipv6.conf.all.forwarding=1"])
            #expect(try await Subprocess.run(fwdTool, fwdArgs, timeout: .seconds(10)).status == 0)
            let certs = try await Self.routedOrigins(net, dir: dir, processes: processes, in: [1])
            defer { try? FileManager.default.removeItem(atPath: certs.dir) }
            try "10.244.2.7 origin.test\nfd00:10:244:2::7 origin6.test\n".write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
            let ferry = try await FerryProcess(binary: Prerequisites.path(of: "ip")!, arguments: [
                "netns", "exec", net.pods[0], Prerequisites.path(of: "setpriv")!, "--reuid=1337", "--regid=1337", "--clear-groups",
                binary, "egress", "--listen", "127.0.0.1:3128", "--admin", "127.0.0.1:9901", "--intercept", "[::]:15001",
                "--hosts-file", dir + "/hosts", "--allow", "origin.test", "--allow", "origin6.test",
            ])
            defer { Task { await ferry.stop() } }
            let (ruleTool, ruleArgs) = net.exec(in: net.pods[0], binary, ["rules", "capture"])
            let applied = try await Subprocess.run(ruleTool, ruleArgs, timeout: .seconds(30))
            #expect(applied.status == 0, "\(applied.stderr)")
            let v6 = try await Self.curl(net, ["-g", "http://origin6.test/", "--resolve", "origin6.test:80:[fd00:10:244:2::7]"])
            #expect(v6.code == "200" && v6.body.contains(#""via": "1.1 ferry""#), "\(v6)")
            let v4 = try await Self.curl(net, ["http://origin.test/", "--resolve", "origin.test:80:10.244.2.7"])
            #expect(v4.code == "200" && v4.body.contains(#""via": "1.1 ferry""#), "\(v4)")
            #expect(await Waiting.until { ferry.accessLog.contains { $0.contains(#""original_destination":"[fd00:10:244:2::7]:80""#) } && ferry.accessLog.contains { $0.contains(#""original_destination":"10.244.2.7:80""#) } },
                    "\(ferry.accessLog)")
            // A v6 Host that is not where the connection goes.
            #expect(try await Self.curl(net, ["-g", "http://[fd00:10:244:2::7]/", "-H", "Host: origin.test"]).code == "409")
        }
    }
}

/// `ferry rules explain --capture` and `ferry rules capture --explain`: the trace through the capture
/// rules, without privileges.
struct CaptureExplainTests {
    @Test func bothCommandsTraceAConnectionThroughTheCaptureRules() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let explain = try await Subprocess.run(binary, ["rules", "explain", "--capture", "--scope", "node", "--cluster-cidr", "10.244.0.0/16",
                                                        "--service-cidr", "10.96.0.0/12", "--origin", "arriving", "--dst", "10.96.0.10", "--dport", "80"], timeout: .seconds(20))
        #expect(explain.status == 0, "\(explain.stderr)")
        #expect(explain.stdout.contains("-A FERRY-CAPTURE-PREROUTING -d 10.96.0.0/12 -j RETURN") && explain.stdout.hasSuffix("→ not captured\n"), "\(explain.stdout)")
        let captured = try await Subprocess.run(binary, ["rules", "capture", "--explain", "93.184.216.34:443", "--exclude-port", "22"], timeout: .seconds(20))
        #expect(captured.stdout.hasSuffix("→ REDIRECT to :15001\n"), "\(captured.stdout)")
        let own = try await Subprocess.run(binary, ["rules", "explain", "--capture", "--dst", "93.184.216.34", "--dport", "443", "--uid", "1337"], timeout: .seconds(20))
        #expect(own.stdout.hasSuffix("→ not captured (the proxy's own connections)\n"), "\(own.stdout)")
        let bad = try await Subprocess.run(binary, ["rules", "explain", "--capture", "--dst", "example.com", "--dport", "443"], timeout: .seconds(20))
        #expect(bad.status != 0 && bad.stderr.contains("--dst expects an IP address"), "\(bad.stderr)")
    }
}
