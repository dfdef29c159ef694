import FerryModel
import Testing

/// Kubernetes Ingress path matching, from kubernetes/website
/// content/en/docs/concepts/services-networking/ingress.md ("Examples" table).
struct PathMatchTests {
    struct Row: CustomTestStringConvertible, Sendable {
        let kind: String
        let path: String
        let request: String
        let matches: Bool
        var testDescription: String { "\(kind) \(path) vs \(request) → \(matches)" }
    }

    static let ingressTable: [Row] = [
        Row(kind: "Prefix", path: "/", request: "/anything/at/all", matches: true),
        Row(kind: "Exact", path: "/foo", request: "/foo", matches: true),
        Row(kind: "Exact", path: "/foo", request: "/bar", matches: false),
        Row(kind: "Exact", path: "/foo", request: "/foo/", matches: false),
        Row(kind: "Exact", path: "/foo/", request: "/foo", matches: false),
        Row(kind: "Prefix", path: "/foo", request: "/foo", matches: true),
        Row(kind: "Prefix", path: "/foo", request: "/foo/", matches: true),
        Row(kind: "Prefix", path: "/foo/", request: "/foo", matches: true),
        Row(kind: "Prefix", path: "/foo/", request: "/foo/", matches: true),
        Row(kind: "Prefix", path: "/aaa/bb", request: "/aaa/bbb", matches: false),
        Row(kind: "Prefix", path: "/aaa/bbb", request: "/aaa/bbb", matches: true),
        Row(kind: "Prefix", path: "/aaa/bbb/", request: "/aaa/bbb", matches: true),
        Row(kind: "Prefix", path: "/aaa/bbb", request: "/aaa/bbb/", matches: true),
        Row(kind: "Prefix", path: "/aaa/bbb", request: "/aaa/bbb/ccc", matches: true),
        Row(kind: "Prefix", path: "/aaa/bbb", request: "/aaa/bbbxyz", matches: false),
        Row(kind: "Prefix", path: "/aaa", request: "/ccc", matches: false),
    ]

    @Test(arguments: ingressTable)
    func ingressPathTable(_ row: Row) {
        let match: PathMatch = row.kind == "Exact" ? .exact(row.path) : .prefix(row.path)
        #expect(match.matches(Substring(row.request)) == row.matches)
    }

    @Test func regexMatchesTheWholePathOnly() throws {
        let match = PathMatch.regex(try CompiledRegex("/api/v[0-9]+/.*"))
        #expect(match.matches("/api/v2/users"))
        #expect(!match.matches("/x/api/v2/users"))
        #expect(!match.matches("/api/vX/users"))
    }
}

/// Ingress host rules: `*.foo.com` matches exactly one label.
struct DomainPatternTests {
    @Test(arguments: [
        ("*.foo.com", "bar.foo.com", true),
        ("*.foo.com", "baz.bar.foo.com", false),
        ("*.foo.com", "foo.com", false),
        ("foo.bar.com", "foo.bar.com", true),
        ("foo.bar.com", "x.foo.bar.com", false),
        ("*", "anything.example", true),
    ])
    func hostMatching(pattern: String, host: String, expected: Bool) throws {
        let parsed = try DomainPattern.parse(pattern).get()
        #expect(parsed.matches(Substring(host)) == expected)
    }

    @Test(arguments: ["foo.*.com", "**.com", "*foo.com", "", "foo.com:80"])
    func invalidPatternsAreRefused(_ pattern: String) {
        #expect(throws: DomainPatternError.self) { try DomainPattern.parse(pattern).get() }
    }
}
