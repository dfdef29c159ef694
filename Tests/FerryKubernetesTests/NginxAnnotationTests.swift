import FerryKubernetes
import FerryModel
import Testing

@Suite struct NginxAnnotationTests {
    let n = "nginx.ingress.kubernetes.io/"

    /// Translates one Ingress on host h.example.com with `paths` and `annotations`.
    func translate(_ annotations: [String: String], paths: [HTTPIngressPath] = [K.path("/", to: "web")], extra: [Ingress] = []) -> IngressTranslation {
        let ingress = K.ingress("web", created: "2024-01-01T00:00:00Z", annotations: annotations, rules: [IngressRule(host: "h.example.com", paths: paths)])
        return IngressTranslator.translate(K.set([ingress] + extra, services: ["web", "canary", "other"]), options: IngressOptions())
    }

    func route(_ t: IngressTranslation, _ path: String, headers: [String: String] = [:]) -> Route? {
        K.route(t, host: "h.example.com", path: path, headers: headers)
    }

    @Test func rewriteTargetWithCaptureGroups() throws {
        let t = translate([n + "rewrite-target": "/$2", n + "use-regex": "true"], paths: [K.path("/something(/|$)(.*)", .implementationSpecific, to: "web")])
        let r = try #require(route(t, "/something/new/path"))
        #expect(r.rewrite?.apply(to: "/something/new/path?q=1") == "/new/path?q=1")
        #expect(r.rewrite?.apply(to: "/something") == "/")
        #expect(route(t, "/SOMETHING/x") != nil)  // regex locations are case-insensitive, as nginx ~*
    }

    @Test func rewriteTargetWithoutCapturesReplacesTheWholePath() throws {
        let t = translate([n + "rewrite-target": "/"], paths: [K.path("/app", to: "web")])
        let r = try #require(route(t, "/app/page"))
        #expect(r.rewrite?.apply(to: "/app/page") == "/")
    }

    @Test func useRegexAppliesToTheWholeHost() {
        // One Ingress sets use-regex; the other Ingress's Prefix path on the same host becomes a regex too.
        let other = K.ingress("plain", created: "2024-02-01T00:00:00Z", rules: [IngressRule(host: "h.example.com", paths: [K.path("/docs", to: "other")])])
        let t = translate([n + "use-regex": "true"], paths: [K.path("/api/v[0-9]+", to: "web")], extra: [other])
        #expect(K.service(of: route(t, "/api/v2/users")) == "web")
        #expect(K.service(of: route(t, "/docsearch")) == "other")  // a regex prefix, no longer element-wise
        let plainAlone = translate([:], paths: [K.path("/docs", to: "other")])
        #expect(route(plainAlone, "/docsearch") == nil)
    }

    @Test func appRootRedirectsOnlyTheRoot() throws {
        let t = translate([n + "app-root": "/app1"])
        guard case .redirect(let r)? = route(t, "/")?.action else { Issue.record("no redirect"); return }
        #expect(r.status == 302)
        #expect(r.location(requestHost: "h.example.com", requestPathAndQuery: "/") == "http://h.example.com/app1")
        #expect(K.service(of: route(t, "/other")) == "web")
    }

    @Test func permanentAndTemporalRedirects() {
        let p = translate([n + "permanent-redirect": "https://www.example.org/new"])
        guard case .redirect(let r)? = route(p, "/anything")?.action else { Issue.record("no redirect"); return }
        #expect(r.status == 301 && r.location(requestHost: "h", requestPathAndQuery: "/anything") == "https://www.example.org/new")
        let code = translate([n + "permanent-redirect": "https://www.example.org/", n + "permanent-redirect-code": "308"])
        guard case .redirect(let r308)? = route(code, "/")?.action else { Issue.record("no redirect"); return }
        #expect(r308.status == 308)
        let tmp = translate([n + "temporal-redirect": "https://maintenance.example.org"])
        guard case .redirect(let r302)? = route(tmp, "/")?.action else { Issue.record("no redirect"); return }
        #expect(r302.status == 302)
    }

    @Test func aRedirectURLThatCouldInjectConfigurationIsRefused() {
        let t = translate([n + "permanent-redirect": "https://x.example; return 200 pwned"])
        #expect(K.service(of: route(t, "/")) == "web")
        #expect(t.notes.contains { $0.contains("permanent-redirect ignored") })
    }

    @Test func timeouts() throws {
        let t = translate([n + "proxy-connect-timeout": "3", n + "proxy-read-timeout": "120", n + "proxy-send-timeout": "30"])
        let r = try #require(route(t, "/"))
        #expect(r.timeout == .seconds(120))
        #expect(r.streamIdleTimeout == .seconds(120))
        let cluster = t.clusters.first { $0.name == K.cluster(r) }
        #expect(cluster?.connectTimeout == .seconds(3))
        let defaults = try #require(route(translate([:]), "/"))
        #expect(defaults.timeout == .seconds(60))  // ingress-nginx's proxy-read-timeout default
        #expect(defaults.streamIdleTimeout == nil)
        #expect(translate([n + "proxy-read-timeout": "soon"]).notes.contains { $0.contains("proxy-read-timeout ignored: must be a whole number of seconds") })
    }

    static let sizes: [(String, Int)] = [("8m", 8_388_608), ("512k", 524_288), ("1024", 1024), ("1G", 1_073_741_824), ("0", Int.max)]

    @Test(arguments: sizes)
    func proxyBodySize(text: String, bytes: Int) {
        #expect(route(translate([n + "proxy-body-size": text]), "/")?.maxRequestBodyBytes == bytes)
    }

    @Test func loadBalanceAndUpstreamHashBy() {
        func policy(_ a: [String: String]) -> LoadBalancingPolicy? {
            let t = translate(a)
            return t.clusters.first { $0.name == K.cluster(route(t, "/")) }?.loadBalancing
        }
        #expect(policy([:]) == .roundRobin)
        #expect(policy([n + "load-balance": "ewma"]) == .leastRequest)
        #expect(policy([n + "upstream-hash-by": "$remote_addr"]) == .ringHash(.sourceAddress))
        #expect(policy([n + "upstream-hash-by": "$request_uri"]) == .ringHash(.requestURI))
        #expect(policy([n + "upstream-hash-by": "$http_x_user_id"]) == .ringHash(.header("x-user-id")))
        #expect(policy([n + "upstream-hash-by": "$cookie_session"]) == .ringHash(.cookie("session")))
        let composite = translate([n + "upstream-hash-by": "$host$request_uri"])
        #expect(composite.notes.contains { $0.contains("upstream-hash-by ignored") })
    }

    @Test func sourceRangeAllowlists() throws {
        let t = translate([n + "whitelist-source-range": "10.0.0.0/8, 192.168.1.7", n + "allowlist-source-range": "fd00::/8"])
        let r = try #require(route(t, "/"))
        #expect(r.allowsSource(IPAddress(parsing: "10.2.3.4")))
        #expect(r.allowsSource(IPAddress(parsing: "192.168.1.7")))
        #expect(r.allowsSource(IPAddress(parsing: "::ffff:10.9.9.9")))
        #expect(r.allowsSource(IPAddress(parsing: "fd12::1")))
        #expect(!r.allowsSource(IPAddress(parsing: "192.168.1.8")))
        #expect(!r.allowsSource(IPAddress(parsing: "127.0.0.1")))
    }

    @Test func anInvalidAllowlistFailsClosed() throws {
        let t = translate([n + "whitelist-source-range": "10.0.0.0/8, nonsense"])
        guard case .directResponse(let status, _)? = route(t, "/")?.action else { Issue.record("expected a 403 answer"); return }
        #expect(status == 403)
        #expect(t.notes.contains { $0.contains("whitelist-source-range ignored") })
    }

    @Test func snippetsAndUnknownAnnotationsAreListedOnceAndNeverApplied() {
        let t = translate([
            n + "configuration-snippet": "more_set_headers \"X: y\";",
            n + "server-snippet": "location /x { return 200; }",
            n + "auth-url": "http://auth",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
        ])
        #expect(t.notes.filter { $0.contains("ignored") }.count == 3)
        #expect(t.notes.contains { $0.contains("configuration-snippet ignored: snippet annotations") })
        #expect(t.notes.contains { $0.contains("auth-url ignored: not supported by Ferry") })
        #expect(!t.notes.contains { $0.contains("last-applied") })
        #expect(K.service(of: route(t, "/x")) == "web")
    }

    // MARK: canary

    func canary(_ annotations: [String: String]) -> IngressTranslation {
        var a = annotations
        a[n + "canary"] = "true"
        let c = K.ingress("web-canary", created: "2024-02-01T00:00:00Z", annotations: a, rules: [IngressRule(host: "h.example.com", paths: [K.path("/", to: "canary")])])
        return translate([:], extra: [c])
    }

    func served(_ t: IngressTranslation, headers: [String: String] = [:]) -> String? {
        K.service(of: route(t, "/", headers: headers))
    }

    @Test func canaryByHeader() {
        let t = canary([n + "canary-by-header": "X-Canary"])
        #expect(served(t, headers: ["x-canary": "always"]) == "canary")
        #expect(served(t, headers: ["x-canary": "never"]) == "web")
        #expect(served(t, headers: ["x-canary": "maybe"]) == "web")
        #expect(served(t) == "web")
    }

    @Test func canaryByHeaderValue() {
        let t = canary([n + "canary-by-header": "X-Region", n + "canary-by-header-value": "eu"])
        #expect(served(t, headers: ["x-region": "eu"]) == "canary")
        #expect(served(t, headers: ["x-region": "always"]) == "web")
    }

    @Test func headerThenCookieThenWeight() {
        let t = canary([n + "canary-by-header": "X-Canary", n + "canary-by-cookie": "canary", n + "canary-weight": "100"])
        #expect(served(t, headers: ["x-canary": "never", "cookie": "canary=always"]) == "web")  // header first
        #expect(served(t, headers: ["x-canary": "always", "cookie": "canary=never"]) == "canary")
        #expect(served(t, headers: ["cookie": "a=1; canary=never"]) == "web")  // cookie before weight
        #expect(served(t, headers: ["cookie": "canary=always"]) == "canary")
        #expect(served(t) == "canary")  // weight 100
    }

    @Test func canaryWeightSplits() {
        let t = canary([n + "canary-weight": "20"])
        guard case .forward(let targets)? = route(t, "/")?.action else { Issue.record("no forward"); return }
        #expect(targets.map(\.weight) == [80, 20])
        #expect(targets[1].name == "default/canary:80")
        let total = canary([n + "canary-weight": "1", n + "canary-weight-total": "1000"])
        guard case .forward(let t2)? = route(total, "/")?.action else { Issue.record("no forward"); return }
        #expect(t2.map(\.weight) == [999, 1])
        #expect(served(canary([n + "canary-weight": "0"])) == "web")
    }

    @Test func aCanaryWithoutAMainIngressIsReportedAndUnused() {
        var a = [n + "canary": "true", n + "canary-weight": "50"]
        a[n + "canary-by-header"] = "x"
        let c = K.ingress("lonely", annotations: a, rules: [IngressRule(host: "other.example.com", paths: [K.path("/", to: "canary")])])
        let t = IngressTranslator.translate(K.set([c], services: ["canary"]), options: IngressOptions())
        #expect(K.route(t, host: "other.example.com", path: "/") == nil)
        #expect(t.notes.contains { $0.contains("no main Ingress serves host other.example.com path /") })
    }
}
