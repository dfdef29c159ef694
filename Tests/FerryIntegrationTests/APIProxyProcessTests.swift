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

    /// A kubeconfig for the fake API server: its CA file, a token user, one context.
    static func kubeconfig(dir: String, apiPort: Int, user: String) -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: fake
          cluster: {server: "https://127.0.0.1:\(apiPort)", certificate-authority: cert.pem}
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

    static func withProxy(user: String = "token: t0k3n", extra: [String] = [], _ body: (Setup) async throws -> Void) async throws {
        guard Prerequisites.have("curl", "openssl"), let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("apiproxy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try await TLSFixtures.certificate(in: dir, name: "kubernetes", extraSANs: ["IP:127.0.0.1"])
        let api = try FakeAPIServer(group: Fixtures.originGroup, certificate: cert, key: key, token: "t0k3n")
        defer { api.close() }
        api.addPod(namespace: "default", name: "web-1")
        try kubeconfig(dir: dir, apiPort: api.port, user: user).write(toFile: dir + "/config", atomically: true, encoding: .utf8)
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

    @Test func kubectlGetNodesAndAWatchThroughTheProxy() async throws {
        guard let kubectl = Prerequisites.path(of: "kubectl") else {
            #expect(Prerequisites.have("kubectl"))
            return
        }
        try await Self.withProxy { s in
            // No kubeconfig of its own: kubectl talks plain HTTP to the proxy, which holds the credentials.
            let env = ["KUBECONFIG": s.dir + "/none", "HOME": s.dir, "PATH": "/usr/bin:/bin"]
            let nodes = try await Subprocess.run(kubectl, ["--server", s.base, "get", "nodes"], environment: env, timeout: .seconds(60))
            #expect(nodes.status == 0, "\(nodes.stderr)")
            #expect(nodes.stdout.contains("node-1"), "\(nodes.stdout)\n\(nodes.stderr)")

            let watch = try Subprocess(kubectl, ["--server", s.base, "get", "pods", "--watch", "--namespace", "default", "--request-timeout", "30s"], environment: env)
            defer { watch.signal(SIGTERM) }
            #expect(await Waiting.until(timeout: .seconds(30)) { watch.stdout.contains("web-1") }, "\(watch.stderr)")
            s.api.addPod(namespace: "default", name: "web-2")
            #expect(await Waiting.until(timeout: .seconds(20)) { watch.stdout.contains("web-2") }, "the event arrives while the watch is open: \(watch.stdout) \(watch.stderr)")
        }
    }
}
