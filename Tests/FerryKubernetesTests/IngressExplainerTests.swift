import FerryKubernetes
import FerryModel
import Testing

@Suite struct IngressExplainerTests {
    let translation: IngressTranslation = {
        let web = K.ingress("web", namespace: "shop", created: "2024-01-01T00:00:00Z", defaultBackend: K.backend("fallback", 80), rules: [
            IngressRule(host: "shop.example.com", paths: [K.path("/", to: "web"), K.path("/api", .prefix, to: "api"), K.path("/api", .exact, to: "web")]),
        ])
        var set = ManifestSet()
        set.ingresses = [web]
        for name in ["web", "api"] {
            set.services.append(K.service(name, namespace: "shop"))
        }
        set.endpointSlices = [K.slice("web", namespace: "shop", [K.ready("10.0.0.1"), SliceEndpoint(addresses: ["10.0.0.2"], ready: false)])]
        return IngressTranslator.translate(set, options: IngressOptions())
    }()

    func explain(_ url: String, headers: [(String, String)] = []) -> String {
        IngressExplainer.explain(IngressExplainer.Request(url: url, headers: headers)!, translation: translation)
    }

    @Test func namesTheIngressRulePathAndWhy() {
        let text = explain("http://shop.example.com/api/v1?x=1")
        #expect(text.contains("host shop.example.com: matches the rule host shop.example.com exactly"))
        #expect(text.contains("  - /api (Exact) of Ingress shop/web rule 0 path 2 [web.yaml]: is not exactly /api"))
        #expect(text.contains("  → /api (Prefix) of Ingress shop/web rule 0 path 1 [web.yaml]: every element of /api is an element of /api/v1"))
        #expect(text.contains("matched: /api (Prefix) of Ingress shop/web rule 0 path 1"))
        #expect(text.contains("backend: cluster shop/api:80"))
        #expect(text.contains("answer: 503 from Ferry (no endpoint to send to)"))
        #expect(text.contains("Service shop/api port 80 (http): no ready endpoint: requests answer 503"))
    }

    @Test func exactBeatsPrefixOfTheSameLength() {
        let text = explain("http://shop.example.com/api")
        #expect(text.contains("matched: /api (Exact) of Ingress shop/web rule 0 path 2"))
        #expect(text.contains("endpoints: 10.0.0.1:8080\n"))
    }

    @Test func aHostHeaderOverridesTheURL() {
        let text = explain("http://10.1.2.3/api", headers: [("Host", "shop.example.com")])
        #expect(text.contains("matched: /api (Exact)"))
    }

    @Test func noHostMatch() {
        let text = explain("http://other.example.com/")
        #expect(text.contains("host other.example.com: no Ingress rule names this host"))
        #expect(text.hasSuffix("answer: 404 from Ferry (no route)\n"))
    }
}

@Suite struct IngressExampleTests {
    @Test func theExampleManifestsTranslateWithoutProblems() throws {
        let folder = URLPath.repository + "/examples/ingress"
        let t = IngressTranslator.translate(try ManifestLoader.load(paths: [folder]), options: IngressOptions())
        #expect(t.notes.isEmpty, "\(t.notes)")
        #expect(t.selection.allSatisfy { $0.selected })
        #expect(t.virtualHosts.map(\.name) == ["shop.example.com"])
    }
}

enum URLPath {
    /// The repository root, from this file's path.
    static var repository: String {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }
}
