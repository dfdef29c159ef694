import FerryModel
import Testing

@Suite struct RequestFilterTests {
    /// kubectl's `TestAccept` vectors (pkg/proxy/proxy_server_test.go) with the default flags.
    @Test(arguments: [
        ("/api/v1/pods", "127.0.0.1", "GET", true),
        ("/api/v1/pods", "localhost", "GET", true),
        ("/api/v1/pods", "localhost:8001", "GET", true),
        ("/api/v1/namespaces/default/pods/foo/exec", "127.0.0.1", "GET", false),
        ("/api/v1/namespaces/default/pods/foo/attach", "127.0.0.1", "GET", false),
        ("/api/v1/namespaces/default/pods/execfoo", "127.0.0.1", "GET", true),
        ("/api/v1/pods", "evil.com", "GET", false),
        ("/api/v1/pods", "127.0.0.1.evil.com", "GET", false),
        ("/apis/apps/v1/deployments", "[::1]", "GET", true),
        ("/apis/apps/v1/deployments", "[::1]:8001", "GET", true),  // kubectl strips to ::1 and refuses; Ferry keeps the brackets
        ("/api/v1/namespaces/default/pods/foo/exec", "127.0.0.1", "POST", false),
    ])
    func defaults(path: String, host: String, method: String, accepted: Bool) throws {
        let filter = try RequestFilter()
        #expect((filter.decide(path: path, method: method, host: host) == .accept) == accepted)
    }

    @Test func overridesAndEmptyLists() throws {
        let methods = try RequestFilter(rejectMethods: "^POST$,^PUT$")
        #expect(methods.decide(path: "/api/v1/pods", method: "post", host: "localhost") != .accept, "methods ignore case in Ferry")
        #expect(methods.decide(path: "/api/v1/pods", method: "GET", host: "localhost") == .accept)
        // An empty accept list accepts nothing; an empty reject list rejects nothing.
        #expect(try RequestFilter(acceptPaths: "").decide(path: "/api", method: "GET", host: "localhost") != .accept)
        #expect(try RequestFilter(rejectPaths: "").decide(path: "/api/v1/namespaces/a/pods/b/exec", method: "GET", host: "localhost") == .accept)
        // Unanchored: "pods" matches anywhere unless anchored.
        #expect(try RequestFilter(rejectPaths: "pods").decide(path: "/api/v1/nodes/podsx", method: "GET", host: "localhost") != .accept)
        #expect(throws: RequestFilterError.self) { try RequestFilter(acceptPaths: "^(unclosed") }
    }

    @Test(arguments: [
        "/api/v1/namespaces/default/pods/foo/../foo/exec", "/api/v1/./pods", "/api//v1/pods", "/api/v1/namespaces/default/pods/foo%2fexec",
        "/api/v1/namespaces/default/pods/foo/%2e%2e/x", "/api/v1/pods%252f", "/api\\v1",
    ])
    func nonCanonicalPathsAreRefusedBeforeTheFilter(path: String) {
        #expect(CanonicalPath.problem(path) != nil)
    }

    @Test func canonicalPathsPass() {
        for p in ["/", "/api/v1/pods", "/api/v1/pods/", "/apis/apps/v1/namespaces/x/deployments/y/scale"] { #expect(CanonicalPath.problem(p) == nil, "\(p)") }
    }

    @Test func encodedSpellingsAreDecodedBeforeMatching() throws {
        let filter = try RequestFilter()
        // Go decodes %65 to "e" before kubectl's filter runs, and so does the API server.
        #expect(filter.decide(path: "/api/v1/namespaces/default/pods/foo/%65xec", method: "GET", host: "localhost") != .accept)
        #expect(RequestFilter.percentDecoded("/a%20b%zz%4") == "/a b%zz%4")
    }

    @Test(arguments: [
        ("http://localhost:8001", true), ("https://127.0.0.1", true), ("http://127.1.2.3:9", true), ("http://[::1]:8001", true),
        ("http://evil.com", false), ("http://localhost.evil.com", false), ("null", false), ("http://localhost@evil.com", false),
        ("file://localhost", false),
    ])
    func upgradeOrigins(origin: String, allowed: Bool) throws {
        let filter = try RequestFilter()
        #expect(filter.allowsUpgrade(origin: origin) == allowed)
        #expect(filter.allowsUpgrade(origin: nil))
    }
}
