import FerryKubernetes
import FerryModel
import FerryRoles
import FerryTestSupport
import Foundation
import Testing

/// The ingress-nginx annotations as the data plane enforces them, with curl against an in-process proxy
/// built from manifests by the same translator `ferry ingress` uses.
@Suite(.serialized)
struct IngressDataPathTests {
    static let n = "nginx.ingress.kubernetes.io/"

    /// Ingress `main` on host a.test with `annotations` and `paths` (YAML list items), Services `web` and
    /// `canary` backed by two origins; an optional canary Ingress with `canaryAnnotations`.
    static func proxy(_ web: TestOrigin, _ canary: TestOrigin, annotations: [String: String] = [:], paths: String = "- {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}", canaryAnnotations: [String: String]? = nil) throws -> ProxyHarness {
        func yamlMap(_ a: [String: String]) -> String {
            "{" + a.map { "\"\($0.key)\": \"\($0.value)\"" }.joined(separator: ", ") + "}"
        }
        func service(_ name: String, _ origin: TestOrigin) -> String {
            """
            apiVersion: v1
            kind: Service
            metadata: {name: \(name)}
            spec: {ports: [{port: 80}]}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: \(name)-1, labels: {kubernetes.io/service-name: \(name)}}
            addressType: IPv4
            ports: [{port: \(origin.port)}]
            endpoints: [{addresses: ["\(origin.host)"]}]
            """
        }
        var text = """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: main, creationTimestamp: "2024-01-01T00:00:00Z", annotations: \(yamlMap(annotations))}
        spec:
          ingressClassName: ferry
          rules:
            - host: a.test
              http:
                paths:
        \(paths.split(separator: "\n").map { "          " + $0 }.joined(separator: "\n"))
        ---
        \(service("web", web))
        ---
        \(service("canary", canary))
        """
        if let canaryAnnotations {
            var a = canaryAnnotations
            a[n + "canary"] = "true"
            text += """

            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: main-canary, creationTimestamp: "2024-01-02T00:00:00Z", annotations: \(yamlMap(a))}
            spec:
              ingressClassName: ferry
              rules: [{host: a.test, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: canary, port: {number: 80}}}}]}}]
            """
        }
        let set = try ManifestDecoder.decode(text: text, file: "test.yaml")
        let translation = IngressTranslator.translate(set, options: IngressOptions())
        let settings = IngressRole.Settings(manifests: ["test.yaml"], listen: HostPort(host: "127.0.0.1", port: 0), admin: HostPort(host: "127.0.0.1", port: 0))
        return try ProxyHarness(config: IngressRole.snapshot(translation, settings: settings, version: 1))
    }

    static func with(annotations: [String: String] = [:], paths: String? = nil, canary canaryAnnotations: [String: String]? = nil, _ body: (ProxyHarness, TestOrigin, TestOrigin) async throws -> Void) async throws {
        guard Prerequisites.have("curl") else { return }
        let web = try TestOrigin(name: "web", group: Fixtures.originGroup, host: "127.0.0.2")
        let canary = try TestOrigin(name: "canary", group: Fixtures.originGroup, host: "127.0.0.3")
        defer {
            web.close()
            canary.close()
        }
        let proxy = try paths.map { try Self.proxy(web, canary, annotations: annotations, paths: $0, canaryAnnotations: canaryAnnotations) }
            ?? Self.proxy(web, canary, annotations: annotations, canaryAnnotations: canaryAnnotations)
        do {
            try await body(proxy, web, canary)
        } catch {
            await proxy.stop()
            throw error
        }
        await proxy.stop()
    }

    /// `get`, nil when curl itself fails (so it can sit inside `#expect`).
    static func fetch(_ proxy: ProxyHarness, _ path: String, _ extra: [String] = []) async -> Curl.Response? {
        try? await get(proxy, path, extra)
    }

    static func get(_ proxy: ProxyHarness, _ path: String, _ extra: [String] = []) async throws -> Curl.Response {
        try await Curl.request(proxy.url(path, listener: "ingress-http"), ["-H", "Host: a.test"] + extra)
    }

    @Test func rewriteTargetChangesThePathTheOriginSees() async throws {
        try await Self.with(annotations: [Self.n + "rewrite-target": "/$2", Self.n + "use-regex": "true"],
                            paths: "- {path: \"/shop(/|$)(.*)\", pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}") { proxy, _, _ in
            let r = try await Self.get(proxy, "/shop/cart/1?x=2")
            #expect(r.status == 200)
            #expect(r.body.contains("\"uri\":\"\\/cart\\/1?x=2\""), "\(r.body)")
            let root = try await Self.get(proxy, "/SHOP")
            #expect(root.body.contains("\"uri\":\"\\/\""), "\(root.body)")
        }
    }

    @Test func allowlistRefusesOtherClients() async throws {
        try await Self.with(annotations: [Self.n + "whitelist-source-range": "10.0.0.0/8"]) { proxy, web, _ in
            let r = try await Self.get(proxy, "/")
            #expect(r.status == 403)
            #expect(web.requestsStarted == 0)
        }
        try await Self.with(annotations: [Self.n + "allowlist-source-range": "10.0.0.0/8, 127.0.0.0/8"]) { proxy, _, _ in
            #expect(await Self.fetch(proxy, "/")?.status == 200)
        }
    }

    @Test func bodySizeLimitAnswers413() async throws {
        try await Self.with(annotations: [Self.n + "proxy-body-size": "1k"]) { proxy, web, _ in
            let small = try await Self.get(proxy, "/sink", ["--data-binary", String(repeating: "a", count: 1024)])
            #expect(small.status == 200)
            let big = try await Self.get(proxy, "/sink", ["--data-binary", String(repeating: "a", count: 1025)])
            #expect(big.status == 413)
            #expect(web.requestsServed == 1)
        }
    }

    @Test func readTimeoutAnswers504() async throws {
        try await Self.with(annotations: [Self.n + "proxy-read-timeout": "1"]) { proxy, _, _ in
            let r = try await Self.get(proxy, "/slow/3000")
            #expect(r.status == 504)
            #expect(await Self.fetch(proxy, "/slow/100")?.status == 200)
        }
    }

    @Test func aStalledStreamIsCutAfterTheIdleTimeout() async throws {
        // proxy-read-timeout bounds the time between two reads, not the whole response: a steady stream
        // longer than the timeout (a byte every 100 ms for 1.5 s) is fine, a stall of 3 s is cut.
        try await Self.with(annotations: [Self.n + "proxy-read-timeout": "1"]) { proxy, _, _ in
            let steady = try await Self.get(proxy, "/hold/15")
            #expect(steady.status == 200 && steady.body.count == 15)
            let stalled = try await Self.get(proxy, "/stall/3000")
            #expect(stalled.status == 200 && stalled.body == "a", "the response had started, so it is cut short")
            #expect(stalled.stderr.contains("transfer closed"), "\(stalled.stderr)")
            #expect(await Waiting.until { proxy.accessLogLines.contains { $0.contains("/stall/3000") && $0.contains("\"response_flags\":\"UT\"") } })
        }
    }

    @Test func canaryByHeaderCookieAndWeight() async throws {
        try await Self.with(canary: [Self.n + "canary-by-header": "X-Canary", Self.n + "canary-by-cookie": "beta", Self.n + "canary-weight": "0"]) { proxy, _, _ in
            #expect(await Self.fetch(proxy, "/")?.header("x-origin") == "web")
            #expect(await Self.fetch(proxy, "/", ["-H", "X-Canary: always"])?.header("x-origin") == "canary")
            #expect(await Self.fetch(proxy, "/", ["-H", "X-Canary: never", "--cookie", "beta=always"])?.header("x-origin") == "web")
            #expect(await Self.fetch(proxy, "/", ["--cookie", "a=1; beta=always"])?.header("x-origin") == "canary")
        }
        try await Self.with(canary: [Self.n + "canary-weight": "100"]) { proxy, _, _ in
            #expect(await Self.fetch(proxy, "/")?.header("x-origin") == "canary")
        }
    }

    @Test func redirects() async throws {
        try await Self.with(annotations: [Self.n + "app-root": "/app"]) { proxy, _, _ in
            let r = try await Self.get(proxy, "/")
            #expect(r.status == 302 && r.header("location") == "http://a.test/app")
            #expect(await Self.fetch(proxy, "/app")?.status == 200)
        }
        try await Self.with(annotations: [Self.n + "permanent-redirect": "https://new.example/"]) { proxy, _, _ in
            let r = try await Self.get(proxy, "/old/page")
            #expect(r.status == 301 && r.header("location") == "https://new.example/")
        }
    }

    @Test func hashByHeaderKeepsAClientOnOneEndpoint() async throws {
        try await Self.with(annotations: [Self.n + "upstream-hash-by": "$http_x_user"]) { proxy, _, _ in
            // One endpoint per Service here, so this checks the policy reaches the data plane and answers.
            #expect(await Self.fetch(proxy, "/", ["-H", "X-User: 42"])?.status == 200)
            #expect(proxy.server.snapshot.clusters.contains { $0.loadBalancing == .ringHash(.header("x-user")) })
        }
    }
}
