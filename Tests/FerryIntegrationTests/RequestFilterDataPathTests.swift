import FerryTestSupport
import Foundation
import Testing

/// A route with kubectl proxy's request filter and credential-replacing header changes, with curl as the client.
@Suite struct RequestFilterDataPathTests {
    static func proxy(_ origin: TestOrigin, filter: String, serverPath: Bool) throws -> ProxyHarness {
        let route = """
        - match: {prefix: /}
          forward: {cluster: a}
          request_filter: \(filter)
          request_headers: {remove: [authorization, "impersonate-*"], set: {authorization: "Bearer proxy-token"}}
          host_rewrite: api.test:6443
        """ + (serverPath ? "\n  upstream_path_prefix: /k8s/clusters/c1" : "")
        return try ProxyHarness(yaml: Fixtures.config(routes: route, clusters: "- {name: a, endpoints: [\"{{a}}\"]}"), values: ["a": origin.address])
    }

    static func withProxy(filter: String = "{}", serverPath: Bool = true, _ body: (ProxyHarness, TestOrigin) async throws -> Void) async throws {
        let origin = try TestOrigin(name: "api", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try proxy(origin, filter: filter, serverPath: serverPath)
        do {
            try await body(proxy, origin)
        } catch {
            await proxy.stop()
            throw error
        }
        await proxy.stop()
    }

    @Test func acceptedRequestsCarryTheProxysCredentialsOnly() async throws {
        try await Self.withProxy { proxy, origin in
            let r = try await Curl.request(proxy.url("/api/v1/nodes?limit=5"), ["-H", "Authorization: Bearer client-token", "-H", "Impersonate-User: admin", "-H", "Impersonate-Group: system:masters"])
            #expect(r.status == 200, "\(r.body)")
            let headers = origin.lastHeaders
            #expect(headers.filter { $0.0.lowercased() == "authorization" }.map(\.1) == ["Bearer proxy-token"])
            #expect(!headers.contains { $0.0.lowercased().hasPrefix("impersonate-") })
            #expect(headers.first { $0.0.lowercased() == "host" }?.1 == "api.test:6443")
            #expect(r.body.contains(#""uri":"\/k8s\/clusters\/c1\/api\/v1\/nodes?limit=5""#), "\(r.body)")
            // The token is a secret: the configuration dump does not show it.
            let dump = try await Curl.request(proxy.adminURL + "/config_dump")
            #expect(dump.body.contains("(redacted)") && !dump.body.contains("proxy-token"))
        }
    }

    @Test func kubectlsDefaultFilterRefusesExecAttachAndForeignHosts() async throws {
        try await Self.withProxy { proxy, origin in
            for path in ["/api/v1/namespaces/default/pods/foo/exec?command=sh", "/api/v1/namespaces/default/pods/foo/attach", "/api/v1/namespaces/default/pods/foo/%65xec"] {
                let r = try await Curl.request(proxy.url(path), ["--path-as-is"])
                #expect(r.status == 403 && r.body == "Forbidden\n", "\(path): \(r.status) \(r.body)")
            }
            let evil = try await Curl.request(proxy.url("/api/v1/pods"), ["-H", "Host: evil.example"])
            #expect(evil.status == 403)
            let execfoo = try await Curl.request(proxy.url("/api/v1/namespaces/default/pods/execfoo"))
            #expect(execfoo.status == 200)
            #expect(origin.requestsServed == 1, "refused requests never reach the API server")
            #expect(await Waiting.until { proxy.accessLogLines.contains { $0.contains(#""verdict":"deny""#) && $0.contains("reject-paths") && $0.contains("RBAC") } })
        }
    }

    @Test func nonCanonicalPathsAre400BeforeTheFilter() async throws {
        try await Self.withProxy { proxy, _ in
            for path in ["/api/v1/namespaces/default/pods/foo/x/../exec", "/api//v1/pods", "/api/v1/namespaces/default/pods/foo%2fexec", "/api/v1/./pods"] {
                let r = try await Curl.request(proxy.url(path), ["--path-as-is"])
                #expect(r.status == 400, "\(path): \(r.status)")
                #expect(r.body.contains("not canonical"), "\(r.body)")
            }
        }
    }

    @Test func methodRejectionIgnoresCaseAndListsCanBeRelaxed() async throws {
        try await Self.withProxy(filter: #"{reject_methods: "^post$", reject_paths: ""}"#) { proxy, _ in
            let post = try await Curl.request(proxy.url("/api/v1/namespaces/default/pods"), ["-X", "POST", "-d", "{}"])
            #expect(post.status == 403)
            let exec = try await Curl.request(proxy.url("/api/v1/namespaces/default/pods/foo/exec"))
            #expect(exec.status == 200, "an empty --reject-paths rejects nothing")
        }
    }

    @Test func upgradesFromForeignOriginsAreRefused() async throws {
        try await Self.withProxy(filter: #"{reject_paths: ""}"#, serverPath: false) { proxy, _ in
            func upgrade(origin: String?) throws -> String {
                let client = try RawClient(port: proxy.port("web"))
                client.send("GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + (origin.map { "Origin: \($0)\r\n" } ?? "") + "\r\n")
                return client.read(until: "\r\n\r\n")
            }
            let foreign = try upgrade(origin: "https://evil.example")
            let loopback = try upgrade(origin: "http://localhost:8001")
            let none = try upgrade(origin: nil)
            #expect(foreign.hasPrefix("HTTP/1.1 403"), "\(foreign)")
            #expect(loopback.hasPrefix("HTTP/1.1 101"), "\(loopback)")
            #expect(none.hasPrefix("HTTP/1.1 101"), "\(none)")
        }
    }

    /// A policy reads paths as the API server will: a non-canonical one is decided on its canonical form
    /// (the listener normalises it before anything else), so `pods/../../../nodes` is `nodes` and refused.
    @Test func aPolicyNeedsCanonicalPathsEvenWithoutAFilter() async throws {
        let origin = try TestOrigin(name: "api", group: Fixtures.originGroup)
        defer { origin.close() }
        let route = """
        - match: {prefix: /}
          forward: {cluster: a}
          kubernetes_policy:
            - {users: ["*"], verbs: [get], resources: [pods], namespaces: [default]}
        """
        let proxy = try ProxyHarness(yaml: Fixtures.config(routes: route, clusters: "- {name: a, endpoints: [\"{{a}}\"]}"), values: ["a": origin.address])
        let pod = try await Curl.request(proxy.url("/api/v1/namespaces/default/pods/web-1"))
        let sneaky = try await Curl.request(proxy.url("/api/v1/namespaces/default/pods/../../../nodes/n1"), ["--path-as-is"])
        let nodes = try await Curl.request(proxy.url("/api/v1/nodes/n1"))
        #expect(pod.status == 200 && sneaky.status == 403 && nodes.status == 403, "\(pod.status) \(sneaky.status) \(nodes.status)")
        #expect(sneaky.body == nodes.body)
        #expect(origin.requestsServed == 1)
        #expect(nodes.body == "Forbidden: an unauthenticated client may not get nodes (no rule of the proxy's policy allows it)\n")
        await proxy.stop()
    }
}
