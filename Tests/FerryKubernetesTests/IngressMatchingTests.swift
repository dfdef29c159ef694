import FerryKubernetes
import FerryModel
import Testing

/// The pathType and host tables of the Kubernetes Ingress documentation, verbatim.
@Suite struct IngressMatchingTests {
    struct Row: Sendable, CustomTestStringConvertible {
        let paths: [(String, PathType)]
        let request: String
        /// Index into `paths` of the path that serves the request; nil: the default backend.
        let expected: Int?
        var testDescription: String { "\(paths.map { "\($0.0) \($0.1.rawValue)" }) ← \(request)" }
    }

    static let table: [Row] = [
        Row(paths: [("/", .prefix)], request: "/anything/at/all", expected: 0),
        Row(paths: [("/foo", .exact)], request: "/foo", expected: 0),
        Row(paths: [("/foo", .exact)], request: "/bar", expected: nil),
        Row(paths: [("/foo", .exact)], request: "/foo/", expected: nil),
        Row(paths: [("/foo/", .exact)], request: "/foo", expected: nil),
        Row(paths: [("/foo", .prefix)], request: "/foo", expected: 0),
        Row(paths: [("/foo", .prefix)], request: "/foo/", expected: 0),
        Row(paths: [("/foo/", .prefix)], request: "/foo", expected: 0),
        Row(paths: [("/foo/", .prefix)], request: "/foo/", expected: 0),
        Row(paths: [("/aaa/bb", .prefix)], request: "/aaa/bbb", expected: nil),
        Row(paths: [("/aaa/bbb", .prefix)], request: "/aaa/bbb", expected: 0),
        Row(paths: [("/aaa/bbb/", .prefix)], request: "/aaa/bbb", expected: 0),
        Row(paths: [("/aaa/bbb", .prefix)], request: "/aaa/bbb/", expected: 0),
        Row(paths: [("/aaa/bbb", .prefix)], request: "/aaa/bbb/ccc", expected: 0),
        Row(paths: [("/aaa/bbb", .prefix)], request: "/aaa/bbbxyz", expected: nil),
        Row(paths: [("/", .prefix), ("/aaa", .prefix)], request: "/aaa/ccc", expected: 1),
        Row(paths: [("/", .prefix), ("/aaa", .prefix), ("/aaa/bbb", .prefix)], request: "/aaa/bbb", expected: 2),
        Row(paths: [("/", .prefix), ("/aaa", .prefix), ("/aaa/bbb", .prefix)], request: "/ccc", expected: 0),
        Row(paths: [("/aaa", .prefix)], request: "/ccc", expected: nil),
        Row(paths: [("/foo", .prefix), ("/foo", .exact)], request: "/foo", expected: 1),
        // ImplementationSpecific is Prefix in Ferry.
        Row(paths: [("/foo", .implementationSpecific)], request: "/foo/bar", expected: 0),
        Row(paths: [("/foo", .implementationSpecific)], request: "/foobar", expected: nil),
        // Case-sensitive.
        Row(paths: [("/Foo", .exact)], request: "/foo", expected: nil),
        Row(paths: [("/foo", .prefix)], request: "/FOO", expected: nil),
    ]

    @Test(arguments: table)
    func pathTypeTable(_ row: Row) {
        let paths = row.paths.enumerated().map { i, p in K.path(p.0, p.1, to: "svc\(i)") }
        let ingress = K.ingress("web", defaultBackend: K.backend("fallback", 80), rules: [IngressRule(host: "foo.bar.com", paths: paths)])
        let t = IngressTranslator.translate(K.set([ingress], services: ["svc0", "svc1", "svc2", "fallback"]), options: IngressOptions())
        let served = K.service(of: K.route(t, host: "foo.bar.com", path: row.request))
        #expect(served == (row.expected.map { "svc\($0)" } ?? "fallback"))
    }

    @Test(arguments: [
        ("*.foo.com", "bar.foo.com", true),
        ("*.foo.com", "baz.bar.foo.com", false),
        ("*.foo.com", "foo.com", false),
        ("foo.bar.com", "foo.bar.com", true),
        ("foo.bar.com", "FOO.BAR.COM", true),
        ("foo.bar.com", "foo.bar.com:8080", true),
        ("foo.bar.com", "bar.foo.com", false),
    ])
    func hostTable(pattern: String, host: String, matches: Bool) {
        let ingress = K.ingress("web", rules: [IngressRule(host: pattern, paths: [K.path("/", to: "web")])])
        let t = IngressTranslator.translate(K.set([ingress], services: ["web"]), options: IngressOptions())
        #expect((K.route(t, host: host, path: "/") != nil) == matches)
    }

    @Test func exactHostBeatsWildcardAndHostlessRulesServeTheRest() {
        let ingress = K.ingress("web", rules: [
            IngressRule(host: "*.foo.com", paths: [K.path("/", to: "wild")]),
            IngressRule(host: "a.foo.com", paths: [K.path("/", to: "exact")]),
            IngressRule(host: nil, paths: [K.path("/", to: "any")]),
        ])
        let t = IngressTranslator.translate(K.set([ingress], services: ["wild", "exact", "any"]), options: IngressOptions())
        #expect(K.service(of: K.route(t, host: "a.foo.com", path: "/x")) == "exact")
        #expect(K.service(of: K.route(t, host: "b.foo.com", path: "/x")) == "wild")
        #expect(K.service(of: K.route(t, host: "c.b.foo.com", path: "/x")) == "any")
        #expect(K.service(of: K.route(t, host: "10.1.2.3", path: "/x")) == "any")
    }

    @Test func hostIsDecidedBeforePath() {
        // A named host without a matching path does not fall through to the host-less rules.
        let ingress = K.ingress("web", rules: [
            IngressRule(host: "shop.example.com", paths: [K.path("/cart", to: "cart")]),
            IngressRule(host: nil, paths: [K.path("/", to: "any")]),
        ])
        let t = IngressTranslator.translate(K.set([ingress], services: ["cart", "any"]), options: IngressOptions())
        #expect(K.route(t, host: "shop.example.com", path: "/other") == nil)
        #expect(K.service(of: K.route(t, host: "other.example.com", path: "/other")) == "any")
    }

    @Test func defaultBackendsInOrder() {
        // The Ingress's defaultBackend for its hosts, else the controller's, else nothing (404).
        let withDefault = K.ingress("a", created: "2024-01-01T00:00:00Z", defaultBackend: K.backend("a-default", 80), rules: [IngressRule(host: "a.example.com", paths: [K.path("/x", to: "web")])])
        let without = K.ingress("b", created: "2024-01-02T00:00:00Z", rules: [IngressRule(host: "b.example.com", paths: [K.path("/x", to: "web")])])
        let set = K.set([withDefault, without], services: ["web", "a-default", "global"])
        let plain = IngressTranslator.translate(set, options: IngressOptions())
        #expect(K.service(of: K.route(plain, host: "a.example.com", path: "/y")) == "a-default")
        #expect(K.route(plain, host: "b.example.com", path: "/y") == nil)
        #expect(K.route(plain, host: "c.example.com", path: "/y") == nil)

        let global = IngressTranslator.translate(set, options: IngressOptions(defaultBackend: DefaultBackendReference(parsing: "default/global:80")))
        #expect(K.service(of: K.route(global, host: "a.example.com", path: "/y")) == "a-default")
        #expect(K.service(of: K.route(global, host: "b.example.com", path: "/y")) == "global")
        #expect(K.service(of: K.route(global, host: "c.example.com", path: "/y")) == "global")
    }

    @Test func anIngressWithoutRulesSendsEverythingToItsDefaultBackend() {
        let ingress = K.ingress("only-default", defaultBackend: K.backend("web", 80))
        let t = IngressTranslator.translate(K.set([ingress], services: ["web"]), options: IngressOptions())
        #expect(K.service(of: K.route(t, host: "anything.example", path: "/a/b")) == "web")
    }
}
