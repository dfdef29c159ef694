import FerryModel
import Testing

struct RouteTableTests {
    func forward(_ name: String) -> RouteAction { .forward([WeightedCluster(name: name)]) }

    var table: RouteTable {
        RouteTable(virtualHosts: [
            VirtualHost(name: "catch-all", domains: [.any], routes: [
                Route(name: "fallback", match: RouteMatch(path: .prefix("/")), action: forward("default")),
            ]),
            VirtualHost(name: "wild", domains: [.wildcard(suffix: ".example.com")], routes: [
                Route(name: "wild", match: RouteMatch(path: .prefix("/")), action: forward("wild")),
            ]),
            VirtualHost(name: "shop", domains: [.exact("shop.example.com")], routes: [
                Route(name: "canary", match: RouteMatch(path: .prefix("/api"), headers: [HeaderMatch(name: "X-Canary", condition: .exact("true"))]), action: forward("api-canary")),
                Route(name: "post-only", match: RouteMatch(path: .exact("/orders"), methods: ["POST"]), action: forward("orders")),
                Route(name: "api", match: RouteMatch(path: .prefix("/api")), action: forward("api")),
                Route(name: "health", match: RouteMatch(path: .exact("/healthz")), action: .directResponse(status: 200, body: "ok")),
            ]),
        ])
    }

    func routeName(_ authority: String, _ path: String, method: String = "GET", headers: [String: String] = [:]) -> String? {
        let t = table
        guard let m = t.match(authority: Substring(authority), path: Substring(path), method: method, header: { headers[$0] }) else { return nil }
        return t.route(m).name
    }

    @Test func exactDomainBeatsWildcardAndWildcardBeatsCatchAll() {
        #expect(routeName("shop.example.com", "/api/x") == "api")
        #expect(routeName("other.example.com", "/api/x") == "wild")
        #expect(routeName("elsewhere.org", "/") == "fallback")
    }

    @Test func hostIsCaseInsensitiveAndPortIsIgnored() {
        #expect(routeName("SHOP.Example.COM:8080", "/healthz") == "health")
    }

    @Test func routesAreTriedInOrderWithHeaderAndMethodConditions() {
        #expect(routeName("shop.example.com", "/api/v1", headers: ["x-canary": "true"]) == "canary")
        #expect(routeName("shop.example.com", "/api/v1", headers: ["x-canary": "false"]) == "api")
        #expect(routeName("shop.example.com", "/orders", method: "POST") == "post-only")
        #expect(routeName("shop.example.com", "/orders", method: "GET") == nil)
    }

    @Test func theQueryStringIsNotPartOfThePath() {
        #expect(routeName("shop.example.com", "/healthz?verbose=1") == "health")
    }

    @Test func noVirtualHostMeansNoMatch() {
        let t = RouteTable(virtualHosts: [VirtualHost(name: "only", domains: [.exact("a.test")], routes: [])])
        #expect(t.match(authority: "b.test", path: "/", method: "GET", header: { _ in nil }) == nil)
    }

    /// Envoy's domain wildcards: a suffix wildcard matches at any depth, the longest wildcard wins, suffixes
    /// before prefixes, and a wildcard never matches its own text alone.
    @Test func envoyWildcardsMatchAsEnvoy() throws {
        func vhost(_ name: String, _ domains: [String]) throws -> VirtualHost {
            VirtualHost(name: name, domains: try domains.map { try DomainPattern.parseEnvoy($0).get() },
                        routes: [Route(name: name, match: RouteMatch(path: .stringPrefix("/")), action: .directResponse(status: 200, body: ""))])
        }
        let table = RouteTable(virtualHosts: [
            try vhost("short", ["*.example.com"]), try vhost("long", ["*.api.example.com"]), try vhost("prefix", ["api.*"]),
            try vhost("dash", ["*-internal.example.com"]), try vhost("any", ["*"]),
        ])
        func name(_ host: String) -> String { table.virtualHostIndex(forAuthority: Substring(host)).map { table.virtualHosts[$0].name } ?? "-" }
        #expect(name("a.b.example.com") == "short")
        #expect(name("v1.api.example.com") == "long")
        #expect(name("api.example.com") == "short")  // suffix before prefix
        #expect(name("api.other.org") == "prefix")
        #expect(name("billing-internal.example.com") == "dash")
        #expect(name("example.com") == "any")
        #expect(name("api.") == "any")
        #expect(DomainPattern.parseEnvoy("a*b.com").map(\.description) == .failure(.misplacedWildcard))
        #expect(PathMatch.stringPrefix("/api").matches("/apix") && !PathMatch.prefix("/api").matches("/apix"))
    }
}

struct RedirectTests {
    @Test func replacesOnlyTheConfiguredParts() {
        #expect(Redirect(path: "/new").location(requestHost: "a.test:8080", requestPathAndQuery: "/old?x=1") == "http://a.test:8080/new")
        #expect(Redirect(scheme: "https").location(requestHost: "a.test", requestPathAndQuery: "/p?q") == "https://a.test/p?q")
        #expect(Redirect(scheme: "https", port: 443).location(requestHost: "a.test:8080", requestPathAndQuery: "/") == "https://a.test/")
        #expect(Redirect(host: "b.test", port: 9000).location(requestHost: "a.test", requestPathAndQuery: "/x") == "http://b.test:9000/x")
    }
}

struct ValueParsingTests {
    @Test(arguments: [("250ms", 250), ("15s", 15000), ("2m", 120_000), ("1h", 3_600_000), ("0s", 0)])
    func durations(text: String, milliseconds: Int64) {
        #expect(DurationText.parse(text)?.milliseconds == milliseconds)
    }

    @Test(arguments: ["15", "s", "1.5s", "-1s", "10 s", "5d"])
    func malformedDurations(_ text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test func durationsRenderInTheLargestWholeUnit() {
        #expect(DurationText(.seconds(90)).description == "90s")
        #expect(DurationText(.seconds(120)).description == "2m")
        #expect(DurationText(.milliseconds(1500)).description == "1500ms")
    }

    @Test func hostPorts() {
        #expect(HostPort(parsing: "127.0.0.1:8080") == HostPort(host: "127.0.0.1", port: 8080))
        #expect(HostPort(parsing: "[::1]:9901") == HostPort(host: "::1", port: 9901))
        #expect(HostPort(parsing: "[::1]:9901")?.description == "[::1]:9901")
        #expect(HostPort(parsing: "api.local:80")?.host == "api.local")
        for bad in ["8080", "host:", ":80", "::1:80", "h:70000", "h:8o"] {
            #expect(HostPort(parsing: bad) == nil, "\(bad)")
        }
    }
}
