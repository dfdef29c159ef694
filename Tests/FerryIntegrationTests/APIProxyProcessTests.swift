import FerryRoles
import FerryTestSupport
import Foundation
import Testing

/// `ferry api-proxy` as people use `kubectl proxy`: a kubeconfig pointing at the fake API server (TLS, token),
/// curl as in the kubectl docs, and kubectl itself pointed at the proxy with `--server`.
@Suite(.serialized)
struct APIProxyProcessTests {
    struct Setup {
        let dir: String
        let api: FakeAPIServer
        let ferry: FerryProcess
        let port: Int
        var base: String { "http://127.0.0.1:\(port)" }
    }

    /// A kubeconfig for the fake API server: its CA file (relative, as kubectl resolves it), a user, one context.
    static func kubeconfig(dir: String, apiPort: Int, user: String, serverPath: String = "", proxyURL: String? = nil) -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: fake
          cluster: {server: "https://127.0.0.1:\(apiPort)\(serverPath)", certificate-authority: cert.pem\(proxyURL.map { ", proxy-url: \"\($0)\"" } ?? "")}
        users:
        - name: me
          user:
        \(user.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        contexts:
        - name: fake
          context: {cluster: fake, user: me}
        current-context: fake
        """
    }

    /// Runs `ferry api-proxy --port 0 --kubeconfig DIR/config EXTRA` against a fresh fake API server. `user`
    /// gives the kubeconfig's user entry and may write the files it names (it gets the folder); with
    /// `clientCertificates` the server also accepts a client certificate, `DIR/client/cert.pem` (self-signed,
    /// its own CA).
    static func withProxy(user: (String) throws -> String = { _ in "token: t0k3n" }, serverPath: String = "", proxyURL: String? = nil, extra: [String] = [], clientCertificates: Bool = false,
                          _ body: (Setup) async throws -> Void) async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        try await withAPIServer(user: user, serverPath: serverPath, proxyURL: proxyURL, clientCertificates: clientCertificates) { dir, api in
            let ferry = try await FerryProcess(binary: binary, arguments: ["api-proxy", "--port", "0", "--kubeconfig", dir + "/config", "--threads", "1"] + extra)
            do {
                #expect(await Waiting.until { ferry.process.stdout.contains("Starting to serve on") })
                let port = try #require(ferry.port("api-proxy"))
                #expect(ferry.process.stdout == "Starting to serve on 127.0.0.1:\(port)\n")
                try await body(Setup(dir: dir, api: api, ferry: ferry, port: port))
            } catch {
                await ferry.stop()
                throw error
            }
            await ferry.stop()
        }
    }

    /// A fresh fake API server and `DIR/config`, a kubeconfig for it (see `withProxy`).
    static func withAPIServer(user: (String) throws -> String = { _ in "token: t0k3n" }, serverPath: String = "", proxyURL: String? = nil, clientCertificates: Bool = false,
                              _ body: (String, FakeAPIServer) async throws -> Void) async throws {
        guard Prerequisites.have("curl", "openssl") else { return }
        let dir = try TLSFixtures.folder("apiproxy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try await TLSFixtures.certificate(in: dir, name: "kubernetes", extraSANs: ["IP:127.0.0.1"])
        var clientCA: String?
        if clientCertificates {
            try FileManager.default.createDirectory(atPath: dir + "/client", withIntermediateDirectories: true)
            clientCA = try await TLSFixtures.certificate(in: dir + "/client", name: "alice").cert
        }
        let api = try FakeAPIServer(group: Fixtures.originGroup, certificate: cert, key: key, token: "t0k3n", clientCA: clientCA)
        defer { api.close() }
        api.addPod(namespace: "default", name: "web-1")
        let userEntry = try user(dir)
        try kubeconfig(dir: dir, apiPort: api.port, user: userEntry, serverPath: serverPath, proxyURL: proxyURL).write(toFile: dir + "/config", atomically: true, encoding: .utf8)
        try await body(dir, api)
    }

    @Test func curlAsInTheKubectlDocs() async throws {
        try await Self.withProxy { s in
            let nodes = try await Curl.request(s.base + "/api/v1/nodes")
            #expect(nodes.status == 200 && nodes.body.contains("\"kind\":\"NodeList\""), "\(nodes.status) \(nodes.body)")
            // A client's own credentials never reach the API server: the proxy's token does.
            let spoofed = try await Curl.request(s.base + "/api/v1/namespaces/default/pods", ["-H", "Authorization: Bearer wrong", "-H", "Impersonate-User: admin"])
            #expect(spoofed.status == 200 && spoofed.body.contains("web-1"))
            let exec = try await Curl.request(s.base + "/api/v1/namespaces/default/pods/web-1/exec?command=sh")
            #expect(exec.status == 403 && exec.body == "Forbidden\n")
            let foreign = try await Curl.request(s.base + "/api/v1/nodes", ["-H", "Host: attacker.example"])
            #expect(foreign.status == 403)
            #expect(!s.api.requests.contains { $0.contains("exec") })
        }
    }

    @Test(.requires("kubectl")) func kubectlGetNodesAndAWatchThroughTheProxy() async throws {
        guard Prerequisites.have("kubectl"), let kubectl = Prerequisites.path(of: "kubectl") else { return }
        try await Self.withProxy { s in
            // No kubeconfig of its own: kubectl talks plain HTTP to the proxy, which holds the credentials.
            let env = ["KUBECONFIG": s.dir + "/none", "HOME": s.dir, "PATH": "/usr/bin:/bin"]
            let nodes = try await Subprocess.run(kubectl, ["--server", s.base, "get", "nodes"], environment: env, timeout: .seconds(60))
            #expect(nodes.status == 0, "\(nodes.stderr)")
            #expect(nodes.stdout.contains("node-1"), "\(nodes.stdout)\n\(nodes.stderr)")

            let watch = try Subprocess(kubectl, ["--server", s.base, "get", "pods", "--watch", "--namespace", "default", "--request-timeout", "30s"], environment: env)
            defer { watch.signal(SIGKILL) }
            #expect(await Waiting.until(timeout: .seconds(30)) { watch.stdout.contains("web-1") }, "\(watch.stderr)")
            s.api.addPod(namespace: "default", name: "web-2")
            #expect(await Waiting.until(timeout: .seconds(20)) { watch.stdout.contains("web-2") }, "the event arrives while the watch is open: \(watch.stdout) \(watch.stderr)")
        }
    }

    static func base64(_ path: String) throws -> String {
        try Data(contentsOf: URL(fileURLWithPath: path)).base64EncodedString()
    }

    @Test func clientCertificatesInlineAndAsFiles() async throws {
        let inline: (String) throws -> String = { dir in
            "client-certificate-data: \(try Self.base64(dir + "/client/cert.pem"))\nclient-key-data: \(try Self.base64(dir + "/client/key.pem"))"
        }
        let files: (String) throws -> String = { _ in "client-certificate: client/cert.pem\nclient-key: client/key.pem" }
        for user in [inline, files] {
            try await Self.withProxy(user: user, clientCertificates: true) { s in
                let nodes = try await Curl.request(s.base + "/api/v1/nodes")
                #expect(nodes.status == 200, "\(nodes.body)")
                #expect(s.api.authentications == ["certificate"])
            }
        }
    }

    @Test func anExecPluginsTokenIsUsed() async throws {
        let exec: (String) throws -> String = { dir in
            let script = dir + "/credential.sh"
            // The plugin also records each run, to show its credential is cached until it expires.
            try """
            #!/bin/sh
            echo run >> "$(dirname "$0")/runs"
            echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t0k3n","expirationTimestamp":"2099-01-01T00:00:00Z"}}'
            """.write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o755)
            return "exec: {apiVersion: client.authentication.k8s.io/v1, command: ./credential.sh, interactiveMode: Never}"
        }
        try await Self.withProxy(user: exec) { s in
            for _ in 0..<3 {
                let nodes = try await Curl.request(s.base + "/api/v1/nodes")
                #expect(nodes.status == 200, "\(nodes.body)")
            }
            #expect(s.api.authentications == ["token", "token", "token"])
            let runs = try String(contentsOfFile: s.dir + "/runs", encoding: .utf8)
            #expect(runs == "run\n", "the plugin ran once: its credential does not expire yet")
        }
    }

    @Test func basicCredentials() async throws {
        try await Self.withProxy(user: { _ in "username: admin\npassword: secret" }) { s in
            let nodes = try await Curl.request(s.base + "/api/v1/nodes")
            #expect(nodes.status == 200, "\(nodes.body)")
            #expect(s.api.authentications == ["basic"])
        }
    }

    @Test func aRotatedTokenFileIsPickedUpWithoutARestart() async throws {
        let tokenFile: (String) throws -> String = { dir in
            try "expired-token\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
            return "tokenFile: token"
        }
        try await Self.withProxy(user: tokenFile) { s in
            let before = try await Curl.request(s.base + "/api/v1/nodes")
            #expect(before.status == 401, "the API server's own answer to a bad token passes through")
            try "t0k3n\n".write(toFile: s.dir + "/token", atomically: true, encoding: .utf8)
            let after = await Waiting.untilAsync(timeout: .seconds(15)) { (try? await Curl.request(s.base + "/api/v1/nodes").status) == 200 }
            #expect(after, "\(s.ferry.stderr)")
        }
    }

    @Test(.requires("python3")) func execIsRefusedByDefaultAndTunnelledWhenAllowed() async throws {
        guard Prerequisites.have("python3") else { return }
        let script = try Fixtures.writeTemp(Fixtures.webSocketClient, name: "ws.py")
        let path = "/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true"
        try await Self.withProxy { s in
            let refused = try await Subprocess.run(Prerequisites.path(of: "python3")!, [script, "127.0.0.1", "\(s.port)", path], timeout: .seconds(30))
            #expect(refused.status != 0 && refused.stderr.contains("403"), "\(refused.stderr)")
            #expect(!s.api.requests.contains { $0.contains("/exec") })
        }
        try await Self.withProxy(extra: ["--reject-paths", "^/api/.*/pods/.*/attach"]) { s in
            let result = try await Subprocess.run(Prerequisites.path(of: "python3")!, [script, "127.0.0.1", "\(s.port)", path], timeout: .seconds(30))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "upgraded\necho1 hello\necho2 again\n")
            #expect(s.api.requests.contains { $0.contains("/exec") && $0.hasSuffix("(upgraded)") })
        }
    }

    /// A SPDY/3.1 exec upgrade (what kubectl falls back to): the 101 and then bytes both ways, unchanged.
    @Test(.requires("python3")) func aSPDYExecUpgradeIsTunnelled() async throws {
        guard Prerequisites.have("python3") else { return }
        let script = try Fixtures.writeTemp("""
        import socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
        s.sendall(b"POST /api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n"
                  b"Connection: Upgrade\\r\\nUpgrade: SPDY/3.1\\r\\nX-Stream-Protocol-Version: v4.channel.k8s.io\\r\\nContent-Length: 0\\r\\n\\r\\n")
        buf = b""
        while b"\\r\\n\\r\\n" not in buf:
            d = s.recv(4096)
            if not d:
                sys.exit("closed: %r" % buf)
            buf += d
        head, rest = buf.split(b"\\r\\n\\r\\n", 1)
        print(head.decode().split("\\r\\n")[0])
        print("protocol" if b"v4.channel.k8s.io" in head.lower() else "no protocol")
        s.sendall(b"\\x80\\x03\\x00\\x01spdy-frame")
        while len(rest) < 14:
            rest += s.recv(4096)
        print(rest == b"\\x80\\x03\\x00\\x01spdy-frame")
        """, name: "spdy.py")
        try await Self.withProxy(extra: ["--reject-paths", "^/api/.*/pods/.*/attach"]) { s in
            let result = try await Subprocess.run(Prerequisites.path(of: "python3")!, [script, "\(s.port)"], timeout: .seconds(30))
            #expect(result.stdout == "HTTP/1.1 101 Switching Protocols\nprotocol\nTrue\n", "\(result.stdout) \(result.stderr)")
            #expect(s.api.requests.contains { $0.hasSuffix("(upgraded to SPDY)") })
        }
    }

    @Test func followedLogsArriveAsTheyAreWritten() async throws {
        try await Self.withProxy { s in
            s.api.appendLog(namespace: "default", name: "web-1", line: "starting")
            let follow = try Subprocess(Curl.curlPath, ["-sSN", "--max-time", "20", s.base + "/api/v1/namespaces/default/pods/web-1/log?follow=true"])
            defer { follow.signal(SIGKILL) }
            #expect(await Waiting.until { follow.stdout == "starting\n" })
            s.api.appendLog(namespace: "default", name: "web-1", line: "listening on :8080")
            #expect(await Waiting.until { follow.stdout == "starting\nlistening on :8080\n" }, "\(follow.stdout)")
        }
    }

    @Test func apiPrefixIsStrippedBeforeTheFilterAndServerPathsAppendOnRequest() async throws {
        try await Self.withProxy(extra: ["--api-prefix", "/k8s"]) { s in
            let inside = try await Curl.request(s.base + "/k8s/api/v1/nodes")
            let outside = try await Curl.request(s.base + "/api/v1/nodes")
            let exec = try await Curl.request(s.base + "/k8s/api/v1/namespaces/default/pods/web-1/exec")
            #expect(inside.status == 200 && outside.status == 404 && exec.status == 403, "\(inside.status) \(outside.status) \(exec.status)")
            #expect(s.api.requests.last == "GET /api/v1/nodes")
        }
        try await Self.withProxy(serverPath: "/clusters/c1", extra: ["--append-server-path"]) { s in
            _ = try await Curl.request(s.base + "/api/v1/nodes")
            #expect(s.api.requests.last == "GET /clusters/c1/api/v1/nodes")
        }
        try await Self.withProxy(serverPath: "/clusters/c1") { s in
            let nodes = try await Curl.request(s.base + "/api/v1/nodes")
            #expect(nodes.status == 200)
            #expect(s.api.requests.last == "GET /api/v1/nodes")
            #expect(await Waiting.until { s.ferry.stderr.contains("--append-server-path") }, "kubectl's hint about the unused server path")
        }
    }

    @Test func badKubeconfigsNameTheFileAndEntry() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("apiproxy-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        clusters:
        - name: fake
          cluster: {server: "ftp://nowhere"}
        users:
        - name: me
          user: {client-certificate: c.pem}
        contexts:
        - {name: fake, context: {cluster: fake, user: me}}
        current-context: fake
        """.write(toFile: dir + "/config", atomically: true, encoding: .utf8)
        let result = try await Subprocess.run(binary, ["api-proxy", "--port", "0", "--kubeconfig", dir + "/config"], timeout: .seconds(30))
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(dir)/config: clusters[0] (\"fake\"): server must be an http(s) URL"), "\(result.stderr)")
        #expect(result.stderr.contains("\(dir)/config: users[0] (\"me\"): client-certificate and client-key go together"), "\(result.stderr)")
    }

    @Test(.requires("curl", "openssl")) func aPodsServiceAccountIsUsedWhenThereIsNoKubeconfig() async throws {
        guard Prerequisites.have("curl", "openssl") else { return }
        let dir = try TLSFixtures.folder("apiproxy-incluster")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try await TLSFixtures.certificate(in: dir, name: "kubernetes", extraSANs: ["IP:127.0.0.1"])
        let api = try FakeAPIServer(group: Fixtures.originGroup, certificate: cert, key: key, token: "t0k3n")
        defer { api.close() }
        let account = dir + "/serviceaccount"
        try FileManager.default.createDirectory(atPath: account, withIntermediateDirectories: true)
        try "t0k3n".write(toFile: account + "/token", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: cert, toPath: account + "/ca.crt")
        var settings = APIProxyRole.Settings()
        settings.port = 0
        settings.environment = ["HOME": dir, "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "\(api.port)"]
        settings.serviceAccountFolder = account
        let proxy = try ProxyHarness(config: try APIProxySource(settings: settings).load(version: 1))
        let nodes = try await Curl.request(proxy.url("/api/v1/nodes", listener: "api-proxy"))
        #expect(nodes.status == 200 && nodes.body.contains("NodeList"), "\(nodes.body)")
        #expect(api.authentications == ["token"])
        await proxy.stop()

        // Neither a kubeconfig nor a Pod: the error says where it looked and what is missing.
        settings.environment = ["HOME": dir]
        #expect { try APIProxySource(settings: settings).load(version: 1) } throws: { error in
            "\(error)".contains("no kubeconfig (looked for \(dir)/.kube/config)") && "\(error)".contains("KUBERNETES_SERVICE_HOST")
        }
    }

    /// kubectl's flag library reads `--flag=` as an empty value: `--reject-paths=` is an empty list.
    @Test func anEmptyFlagValueIsAnEmptyList() async throws {
        try await Self.withProxy(extra: ["--reject-paths="]) { s in
            let exec = try await Curl.request(s.base + "/api/v1/namespaces/default/pods/web-1/exec")
            #expect(exec.status != 403, "an empty --reject-paths rejects nothing: \(exec.status)")
            #expect(s.api.requests.contains { $0.contains("/exec") })
        }
    }

    /// Outside the prefixes kubectl answers Go's `404 page not found`; nothing of the request is echoed.
    @Test func outsideThePrefixIsKubectlsNotFoundWithoutEcho() async throws {
        try await Self.withProxy(extra: ["--api-prefix", "/k8s"]) { s in
            let outside = try await Curl.request(s.base + "/%3Cscript%3Eevil", ["-H", "Host: localhost:1234"])
            #expect(outside.status == 404)
            #expect(outside.body == "404 page not found\n")
            let badHost = try await Curl.request(s.base + "/k8s/api", ["-H", "Host: [<b>x</b>]"])
            #expect(badHost.status == 400)
            #expect(!badHost.body.contains("<b>"), "\(badHost.body)")
        }
    }

    /// Paths that run commands or open tunnels and that kubectl's filter lets through are named once at
    /// startup; one flag refuses them all.
    @Test func unsafeSubresourcesAreNamedAtStartupAndRefusedOnRequest() async throws {
        let paths = ["/api/v1/nodes/n1/proxy/configz", "/api/v1/namespaces/default/services/s/proxy/", "/api/v1/namespaces/default/pods/web-1/proxy/",
                     "/api/v1/namespaces/default/pods/web-1/portforward", "/api/v1/namespaces/default/pods/web-1/ephemeralcontainers"]
        try await Self.withProxy { s in
            #expect(await Waiting.until { s.ferry.stderr.contains("--reject-unsafe-subresources refuses them all") })
            let line = s.ferry.stderr.components(separatedBy: "\n").first { $0.contains("--reject-unsafe-subresources") } ?? ""
            for name in ["nodes/proxy", "services/proxy", "pods/proxy", "pods/portforward", "pods/ephemeralcontainers"] {
                #expect(line.contains(name), "\(name)")
            }
            #expect(s.ferry.stderr.components(separatedBy: "--reject-unsafe-subresources refuses").count == 2, "said once")
        }
        try await Self.withProxy(extra: ["--reject-unsafe-subresources"]) { s in
            for path in paths {
                let r = try await Curl.request(s.base + path)
                #expect(r.status == 403 && r.body == "Forbidden\n", "\(path): \(r.status)")
            }
            let pods = try await Curl.request(s.base + "/api/v1/namespaces/default/pods")
            #expect(pods.status == 200)
            #expect(!s.api.requests.contains { $0.contains("proxy") || $0.contains("portforward") || $0.contains("ephemeral") })
            #expect(!s.ferry.stderr.contains("--reject-unsafe-subresources refuses"))
        }
    }

    @Test func disablingTheFilterWarnsAsKubectlDoes() async throws {
        try await Self.withProxy(extra: ["--disable-filter"]) { s in
            let exec = try await Curl.request(s.base + "/api/v1/namespaces/default/pods/web-1/exec", ["-H", "Host: anything.example"])
            #expect(exec.status == 404, "the request reached the API server, which has no such plain GET: \(exec.body)")
            #expect(await Waiting.until { s.ferry.stderr.contains("Request filter disabled, your proxy is vulnerable to XSRF attacks") })
        }
    }

    @Test func aUnixSocketOwnedByItsUser() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withAPIServer { dir, api in
            let socket = dir + "/proxy.sock"
            let ferry = try await FerryProcess(binary: binary, arguments: ["api-proxy", "-u", socket, "--kubeconfig", dir + "/config", "--threads", "1"])
            defer { Task { await ferry.stop() } }
            #expect(await Waiting.until { ferry.process.stdout == "Starting to serve on \(socket)\n" }, "\(ferry.process.stdout)")
            let nodes = try await Curl.request("http://localhost/api/v1/nodes", ["--unix-socket", socket])
            #expect(nodes.status == 200 && nodes.body.contains("NodeList"))
            let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            await ferry.stop()
        }
        let both = try await Subprocess.run(binary, ["api-proxy", "-u", "/tmp/x.sock", "--port", "9000"], timeout: .seconds(30))
        #expect(both.status != 0 && both.stderr.contains("cannot set --unix-socket and --port at the same time"), "\(both.stderr)")
    }

    @Test func staticFilesUnderTheirPrefix() async throws {
        try await Self.withAPIServer { dir, _ in
            let www = dir + "/www"
            try FileManager.default.createDirectory(atPath: www + "/sub", withIntermediateDirectories: true)
            try "<h1>dashboard</h1>\n".write(toFile: www + "/index.html", atomically: true, encoding: .utf8)
            try "console.log(1)\n".write(toFile: www + "/app.js", atomically: true, encoding: .utf8)
            try "inner\n".write(toFile: www + "/sub/index.html", atomically: true, encoding: .utf8)
            guard let binary = Prerequisites.ferryBinary() else { return }
            let ferry = try await FerryProcess(binary: binary, arguments: ["api-proxy", "--port", "0", "--kubeconfig", dir + "/config", "-w", www, "-P", "/ui"])
            let base = "http://127.0.0.1:\(ferry.port("api-proxy") ?? 0)"
            let index = try await Curl.request(base + "/ui/")
            #expect(index.status == 200 && index.body == "<h1>dashboard</h1>\n" && index.header("content-type") == "text/html; charset=utf-8")
            let js = try await Curl.request(base + "/ui/app.js")
            #expect(js.status == 200 && js.header("content-type") == "text/javascript; charset=utf-8")
            let folder = try await Curl.request(base + "/ui/sub")
            #expect(folder.status == 301 && folder.header("location") == "/ui/sub/")
            let missing = try await Curl.request(base + "/ui/nope.css")
            #expect(missing.status == 404)
            let escape = try await Curl.request(base + "/ui/../config", ["--path-as-is"])
            #expect(escape.status == 400)
            let api = try await Curl.request(base + "/api/v1/nodes")
            #expect(api.status == 200, "the API is still served beside the files")
            await ferry.stop()
        }
    }

    @Test(.requires("ss")) func keepaliveProbesOnConnectionsToTheAPIServer() async throws {
        guard Prerequisites.have("ss"), let ss = Prerequisites.path(of: "ss") else { return }
        try await Self.withProxy(extra: ["--keepalive", "7s"]) { s in
            let nodes = try await Curl.request(s.base + "/api/v1/nodes")
            #expect(nodes.status == 200)
            // The pooled connection to the API server stays open, with the keep-alive timer running.
            let sockets = try await Subprocess.run(ss, ["-tnoH", "state", "established", "dst", "127.0.0.1:\(s.api.port)"])
            #expect(sockets.stdout.contains("timer:(keepalive"), "\(sockets.stdout)")
        }
        try await Self.withProxy { s in
            _ = try await Curl.request(s.base + "/api/v1/nodes")
            let sockets = try await Subprocess.run(ss, ["-tnoH", "state", "established", "dst", "127.0.0.1:\(s.api.port)"])
            #expect(!sockets.stdout.isEmpty && !sockets.stdout.contains("keepalive"), "--keepalive 0 (the default) leaves probes off: \(sockets.stdout)")
        }
    }

    /// Opt-in sharing: HTTPS on the local listener, local users by token or client certificate, a policy per
    /// user, and an audit line per request; kubectl uses it with a token over TLS.
    @Test func aSharedProxyAuthenticatesAuthorizesAndAudits() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withAPIServer { dir, _ in
            // The proxy's own certificate (also what clients trust) and a client certificate for carol.
            let local = dir + "/local"
            try FileManager.default.createDirectory(atPath: local + "/carol", withIntermediateDirectories: true)
            let (cert, key) = try await TLSFixtures.certificate(in: local, name: "localhost", extraSANs: ["IP:127.0.0.1"])
            let carol = try await TLSFixtures.certificate(in: local + "/carol", name: "carol")
            try "alice-token,alice,1001\nbob-token,bob,1002,\"admins\"\n".write(toFile: local + "/tokens.csv", atomically: true, encoding: .utf8)
            try """
            - {users: [alice], verbs: [get, list, watch], resources: [pods, pods/log], namespaces: [default]}
            - {users: ["group:admins"], verbs: ["*"], resources: ["*"]}
            - {users: [carol], verbs: [list], resources: [nodes]}
            """.write(toFile: local + "/policy.yaml", atomically: true, encoding: .utf8)
            let ferry = try await FerryProcess(binary: binary, arguments: [
                "api-proxy", "--port", "0", "--kubeconfig", dir + "/config", "--threads", "1", "--access-log-format", "json",
                "--tls-cert-file", cert, "--tls-private-key-file", key, "--client-ca-file", carol.cert,
                "--token-auth-file", local + "/tokens.csv", "--policy-file", local + "/policy.yaml",
            ])
            let base = "https://127.0.0.1:\(ferry.port("api-proxy") ?? 0)"
            let trust = ["--cacert", cert]
            do {
                let anonymous = try await Curl.request(base + "/api/v1/namespaces/default/pods", trust)
                #expect(anonymous.status == 401 && anonymous.header("www-authenticate") == #"Bearer realm="ferry""#)
                let alicePods = try await Curl.request(base + "/api/v1/namespaces/default/pods", trust + ["-H", "Authorization: Bearer alice-token"])
                #expect(alicePods.status == 200 && alicePods.body.contains("web-1"), "\(alicePods.body)")
                let aliceNodes = try await Curl.request(base + "/api/v1/nodes", trust + ["-H", "Authorization: Bearer alice-token"])
                #expect(aliceNodes.status == 403 && aliceNodes.body.contains("alice may not list nodes"), "\(aliceNodes.body)")
                let bobNodes = try await Curl.request(base + "/api/v1/nodes", trust + ["-H", "Authorization: Bearer bob-token"])
                #expect(bobNodes.status == 200, "bob is in group admins")
                let carolNodes = try await Curl.request(base + "/api/v1/nodes", trust + ["--cert", carol.cert, "--key", carol.key])
                #expect(carolNodes.status == 200, "carol by her client certificate: \(carolNodes.body)")
                // The same over HTTP/1.1 (curl chose HTTP/2 above, by ALPN): the certificate is the connection's either way.
                let carolOverHTTP1 = try await Curl.request(base + "/api/v1/nodes", trust + ["--http1.1", "--cert", carol.cert, "--key", carol.key])
                #expect(carolOverHTTP1.status == 200, "carol by her client certificate over HTTP/1.1: \(carolOverHTTP1.body)")

                // The audit line: local user, verb, resource, namespace, decision, status.
                #expect(await Waiting.until {
                    ferry.accessLog.contains { $0.contains(#""user":"alice""#) && $0.contains(#""k8s_verb":"list""#) && $0.contains(#""k8s_resource":"pods""#)
                        && $0.contains(#""k8s_namespace":"default""#) && $0.contains(#""verdict":"allow""#) && $0.contains(#""status":200"#) }
                }, "\(ferry.accessLog)")
                #expect(ferry.accessLog.contains { $0.contains(#""user":"alice""#) && $0.contains(#""k8s_resource":"nodes""#) && $0.contains(#""verdict":"deny""#) && $0.contains(#""status":403"#) })

                // kubectl as a local user: a token, over TLS to Ferry.
                if Prerequisites.have("kubectl"), let kubectl = Prerequisites.path(of: "kubectl") {
                    let env = ["KUBECONFIG": dir + "/none", "HOME": dir, "PATH": "/usr/bin:/bin"]
                    let pods = try await Subprocess.run(kubectl, ["--server", base, "--certificate-authority", cert, "--token", "alice-token", "get", "pods", "-n", "default"], environment: env, timeout: .seconds(60))
                    #expect(pods.status == 0 && pods.stdout.contains("web-1"), "\(pods.stdout)\n\(pods.stderr)")
                    let nodes = try await Subprocess.run(kubectl, ["--server", base, "--certificate-authority", cert, "--token", "alice-token", "get", "nodes"], environment: env, timeout: .seconds(60))
                    #expect(nodes.status != 0 && nodes.stderr.contains("Forbidden"), "\(nodes.stderr)")
                }
            } catch {
                await ferry.stop()
                throw error
            }
            await ferry.stop()
        }
    }

    @Test func aKubeconfigProxyURLIsReachedWithCONNECT() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        // The corporate proxy: Ferry's own egress role, logging each tunnel.
        let parent = try await FerryProcess(binary: binary, arguments: ["egress", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1", "--allow", "127.0.0.1/32:1-65535"])
        defer { Task { await parent.stop() } }
        let parentURL = "http://127.0.0.1:\(parent.port("egress") ?? 0)"
        var apiPort = 0
        try await Self.withProxy(proxyURL: parentURL) { s in
            apiPort = s.api.port
            for _ in 0..<3 {
                let nodes = try await Curl.request(s.base + "/api/v1/nodes")
                #expect(nodes.status == 200, "\(nodes.body)")
            }
        }
        // A tunnel is logged when it closes (here, when the api-proxy stopped): one CONNECT, because the
        // tunnelled TLS connection was pooled and reused for the next requests.
        let target = "127.0.0.1:\(apiPort)"
        #expect(await Waiting.until { parent.accessLog.contains { $0.contains(#""method":"CONNECT""#) && $0.contains(target) } }, "\(parent.accessLog)")
        let connects = parent.accessLog.filter { $0.contains(#""method":"CONNECT""#) }
        #expect(connects.count == 1, "\(connects)")
        await parent.stop()
        // Only http:// proxies: another scheme is refused with the kubeconfig entry named.
        try await Self.withAPIServer(proxyURL: "socks5://127.0.0.1:1080") { dir, _ in
            let refused = try await Subprocess.run(binary, ["api-proxy", "--port", "0", "--kubeconfig", dir + "/config"], timeout: .seconds(30))
            #expect(refused.status == 1)
            #expect(refused.stderr.contains(#"clusters[0] ("fake"): proxy-url "socks5://127.0.0.1:1080" is not supported"#), "\(refused.stderr)")
        }
    }
}
