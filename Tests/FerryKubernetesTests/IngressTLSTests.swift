import FerryKubernetes
import FerryModel
import Testing

/// `spec.tls`: which Secret serves which host, and which plain-HTTP routes redirect to HTTPS (ingress-nginx's
/// `ssl-redirect`, `force-ssl-redirect`, `preserve-trailing-slash`, the ACME exemption, 308 by default).
@Suite struct IngressTLSTranslationTests {
    static func tlsIngress(_ name: String, created: String, hosts: [String], tlsHosts: [String]?, secret: String?, annotations: [String: String] = [:]) -> Ingress {
        var ingress = K.ingress(name, created: created, annotations: annotations, rules: hosts.map { IngressRule(host: $0, paths: [K.path("/", to: "web"), K.path("/.well-known/acme-challenge/", to: "web")]) })
        if let tlsHosts { ingress.tls = [IngressTLS(hosts: tlsHosts, secretName: secret)] }
        return ingress
    }

    static func secret(_ name: String, namespace: String = "default", values: [String: String] = ["tls.crt": "CERT", "tls.key": "KEY"]) -> Secret {
        Secret(metadata: ObjectMeta(name: name, namespace: namespace), type: "kubernetes.io/tls", keys: Array(values.keys).sorted(), tlsValues: values)
    }

    static func translate(_ ingresses: [Ingress], secrets: [Secret], options: IngressOptions = IngressOptions()) -> IngressTranslation {
        var set = K.set(ingresses, services: ["web"])
        set.secrets = secrets
        return IngressTranslator.translate(set, options: options)
    }

    /// The action of the plain-HTTP route serving host + path.
    static func httpAction(_ t: IngressTranslation, host: String, path: String) -> RouteAction? {
        let table = RouteTable(virtualHosts: t.httpVirtualHosts)
        guard let m = table.match(authority: Substring(host), path: Substring(path), method: "GET", header: { _ in nil }) else { return nil }
        return table.route(m).action
    }

    @Test func certificatesGoToTheOldestIngressListingAHost() {
        let older = Self.tlsIngress("shop", created: "2024-01-01T00:00:00Z", hosts: ["shop.example.com"], tlsHosts: ["Shop.example.com"], secret: "shop-tls")
        let newer = Self.tlsIngress("shop2", created: "2024-02-01T00:00:00Z", hosts: ["shop.example.com", "blog.example.com"], tlsHosts: ["shop.example.com", "blog.example.com"], secret: "other")
        let t = Self.translate([newer, older], secrets: [Self.secret("shop-tls")])
        #expect(t.certificates.count == 2)
        #expect(t.certificates[0].ingress == "default/shop" && t.certificates[0].hosts == ["shop.example.com"])
        #expect(t.certificates[0].certificatePEM == "CERT" && t.certificates[0].keyPEM == "KEY" && t.certificates[0].problem == nil)
        #expect(t.certificates[1].hosts == ["blog.example.com"])
        #expect(t.certificates[1].problem == "Secret default/other not found")
        #expect(t.notes.contains { $0.contains("host shop.example.com already has a certificate from Ingress default/shop") })
        #expect(t.tlsHosts == ["shop.example.com", "blog.example.com"])
    }

    @Test func aSecretWithoutTLSKeysIsAProblem() {
        let ingress = Self.tlsIngress("a", created: "2024-01-01T00:00:00Z", hosts: ["a.test"], tlsHosts: ["a.test"], secret: "opaque")
        let t = Self.translate([ingress], secrets: [Self.secret("opaque", values: ["password": "x"])])
        #expect(t.certificates.first?.problem == "Secret default/opaque (type kubernetes.io/tls) has no tls.crt and tls.key")
    }

    @Test func anEntryWithoutHostsCoversTheRuleHostsAndWithoutSecretTheDefault() {
        let ingress = Self.tlsIngress("a", created: "2024-01-01T00:00:00Z", hosts: ["a.test", "b.test"], tlsHosts: [], secret: nil)
        let t = Self.translate([ingress], secrets: [])
        #expect(t.certificates.first?.hosts == ["a.test", "b.test"])
        #expect(t.certificates.first?.secret == nil)
        // Hosts with a tls section redirect even on the default certificate.
        #expect(Self.httpAction(t, host: "a.test", path: "/x") == .redirect(.toHTTPS()))
    }

    @Test func plainHTTPRedirectsHostsWithCertificates() throws {
        let secure = Self.tlsIngress("secure", created: "2024-01-01T00:00:00Z", hosts: ["shop.example.com"], tlsHosts: ["shop.example.com"], secret: "shop-tls")
        let plain = Self.tlsIngress("plain", created: "2024-01-01T00:00:01Z", hosts: ["plain.example.com"], tlsHosts: nil, secret: nil)
        let t = Self.translate([secure, plain], secrets: [Self.secret("shop-tls")])
        guard case .redirect(let redirect)? = Self.httpAction(t, host: "shop.example.com", path: "/cart/") else {
            Issue.record("expected a redirect"); return
        }
        #expect(redirect.status == 308)
        #expect(redirect.location(requestHost: "shop.example.com:8080", requestPathAndQuery: "/cart/") == "https://shop.example.com/cart")
        #expect(redirect.location(requestHost: "shop.example.com", requestPathAndQuery: "/cart/?a=1") == "https://shop.example.com/cart/?a=1")
        #expect(redirect.location(requestHost: "shop.example.com", requestPathAndQuery: "/") == "https://shop.example.com")
        // The ACME challenge path is never redirected; a host without a certificate is not either.
        #expect(K.cluster(Route(name: "x", match: RouteMatch(path: .prefix("/")), action: try #require(Self.httpAction(t, host: "shop.example.com", path: "/.well-known/acme-challenge/token")))) != nil)
        #expect(Self.httpAction(t, host: "plain.example.com", path: "/")?.isForward == true)
        // HTTPS serves the routes as they are.
        #expect(K.cluster(K.route(t, host: "shop.example.com", path: "/cart/")) != nil)
    }

    @Test func annotationsAndFlagsChooseTheRedirect() {
        let off = Self.tlsIngress("off", created: "2024-01-01T00:00:00Z", hosts: ["off.test"], tlsHosts: ["off.test"], secret: "s",
                                  annotations: ["nginx.ingress.kubernetes.io/ssl-redirect": "false"])
        let forced = Self.tlsIngress("forced", created: "2024-01-01T00:00:01Z", hosts: ["forced.test"], tlsHosts: nil, secret: nil,
                                     annotations: ["nginx.ingress.kubernetes.io/force-ssl-redirect": "true", "nginx.ingress.kubernetes.io/preserve-trailing-slash": "true"])
        let on = Self.tlsIngress("on", created: "2024-01-01T00:00:02Z", hosts: ["on.test"], tlsHosts: ["on.test"], secret: "s")
        var options = IngressOptions()
        options.httpRedirectCode = 301
        let t = Self.translate([off, forced, on], secrets: [Self.secret("s")], options: options)
        #expect(Self.httpAction(t, host: "off.test", path: "/")?.isForward == true)
        #expect(Self.httpAction(t, host: "forced.test", path: "/a/") == .redirect(.toHTTPS(status: 301, preserveTrailingSlash: true)))
        #expect(Self.httpAction(t, host: "on.test", path: "/") == .redirect(.toHTTPS(status: 301)))
        options.sslRedirect = false
        let global = Self.translate([on], secrets: [Self.secret("s")], options: options)
        #expect(Self.httpAction(global, host: "on.test", path: "/")?.isForward == true)
    }

    @Test func aWildcardCertificateCoversItsHosts() {
        var ingress = Self.tlsIngress("w", created: "2024-01-01T00:00:00Z", hosts: ["a.example.org"], tlsHosts: ["*.example.org"], secret: "wild")
        ingress.rules.append(IngressRule(host: "b.c.example.org", paths: [K.path("/", to: "web")]))
        let t = Self.translate([ingress], secrets: [Self.secret("wild")])
        #expect(Self.httpAction(t, host: "a.example.org", path: "/")?.isForward == false)
        #expect(Self.httpAction(t, host: "b.c.example.org", path: "/")?.isForward == true)
    }

    @Test func backendProtocolHTTPSMakesATLSCluster() {
        let https = K.ingress("s", created: "2024-01-01T00:00:00Z", annotations: ["nginx.ingress.kubernetes.io/backend-protocol": "https"],
                              rules: [IngressRule(host: "s.test", paths: [K.path("/", to: "web")])])
        let grpc = K.ingress("g", created: "2024-01-01T00:00:01Z", annotations: ["nginx.ingress.kubernetes.io/backend-protocol": "GRPC"],
                             rules: [IngressRule(host: "g.test", paths: [K.path("/", to: "web")])])
        let t = Self.translate([https, grpc], secrets: [])
        let cluster = t.clusters.first { $0.name == K.cluster(K.route(t, host: "s.test", path: "/")) }
        #expect(cluster?.tls?.insecureSkipVerify == true)
        #expect(cluster?.name.hasSuffix("[https]") == true)
        let grpcCluster = t.clusters.first { $0.name == K.cluster(K.route(t, host: "g.test", path: "/")) }
        #expect(grpcCluster?.tls == nil && grpcCluster?.httpProtocol == .h2 && grpcCluster?.name.hasSuffix("[grpc]") == true)
        let fcgi = K.ingress("f", created: "2024-01-01T00:00:02Z", annotations: ["nginx.ingress.kubernetes.io/backend-protocol": "FCGI"],
                             rules: [IngressRule(host: "f.test", paths: [K.path("/", to: "web")])])
        let withFCGI = Self.translate([fcgi], secrets: [])
        #expect(withFCGI.notes.contains { $0.contains("backend-protocol ignored: FCGI backends are not served") })
    }

    @Test func sslPassthroughNeedsTheFlagAndRelaysTheRootBackend() {
        var db = K.ingress("db", created: "2024-01-01T00:00:00Z", annotations: ["nginx.ingress.kubernetes.io/ssl-passthrough": "true"],
                           rules: [IngressRule(host: "DB.test", paths: [K.path("/admin", to: "admin"), K.path("/", to: "web")])])
        db.tls = []
        var set = K.set([db], services: ["web", "admin"])
        set.secrets = []
        let off = IngressTranslator.translate(set, options: IngressOptions())
        #expect(off.passthrough.isEmpty)
        #expect(off.notes.contains { $0.contains("ssl-passthrough ignored: start ferry ingress with --enable-ssl-passthrough") })
        var options = IngressOptions()
        options.enableSSLPassthrough = true
        let on = IngressTranslator.translate(set, options: options)
        #expect(on.passthrough == [TLSPassthrough(serverNames: ["db.test"], cluster: "default/web:80")])
    }

    @Test func theDefaultCertificateSecretIsRead() {
        var options = IngressOptions()
        options.defaultSSLCertificate = SecretReference(parsing: "ingress/default-cert")
        let t = Self.translate([], secrets: [Self.secret("default-cert", namespace: "ingress")], options: options)
        #expect(t.defaultCertificate?.certificatePEM == "CERT")
        let missing = Self.translate([], secrets: [], options: options)
        #expect(missing.defaultCertificate?.problem == "Secret ingress/default-cert not found")
    }
}

extension RouteAction: Equatable {
    public static func == (a: RouteAction, b: RouteAction) -> Bool {
        switch (a, b) {
        case (.redirect(let x), .redirect(let y)): x == y
        case (.forward(let x), .forward(let y)): x == y
        case (.directResponse(let s1, let b1), .directResponse(let s2, let b2)): s1 == s2 && b1 == b2
        default: false
        }
    }

    var isForward: Bool {
        if case .forward = self { return true }
        return false
    }
}
