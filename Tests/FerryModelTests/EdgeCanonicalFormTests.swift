import FerryModel
import Testing

/// The canonical forms every role decides on: request paths (RFC 3986 §5.2.4 and §6.2.2, Envoy's
/// `normalize_path`, `merge_slashes` and `path_with_escaped_slashes_action`), Host fields (RFC 9110 §7.2,
/// RFC 3986 §3.2.2), embedded IPv4 addresses (RFC 4291 §2.5.5, RFC 6052, RFC 3056).
@Suite struct RequestPathTests {
    @Test(arguments: [
        ("/public/../admin", "/admin"), ("/public/%2e%2e/admin", "/admin"), ("/public/%2E%2E/admin", "/admin"),
        ("/public/.%2e/admin", "/admin"), ("/a/./b", "/a/b"), ("/a/b/..", "/a/"), ("/a/b/.", "/a/b/"), ("/..", "/"),
        ("/../../etc/passwd", "/etc/passwd"), ("/a//b", "/a/b"), ("//admin", "/admin"), ("/a/b//", "/a/b/"),
        ("/%61dmin", "/admin"), ("/a%7eb", "/a~b"), ("/a%3ab", "/a%3Ab"), ("/a%3ab?x=%2e%2e", "/a%3Ab?x=%2e%2e"),
        ("/public/..;x=y/admin", "/admin"), ("/public/.;x/admin", "/public/admin"), ("/p/../admin?q=/../x", "/admin?q=/../x"),
        ("/a/%2e", "/a/"),
    ])
    func pathsAreCanonicalised(target: String, canonical: String) {
        #expect(RequestPath.normalize(target, PathNormalization()) == .normalized(canonical))
    }

    @Test(arguments: ["/", "/admin", "/a/b/c?x=1&y=/../z", "/.well-known/acme", "/a.b/c..d", "/a;b=c", "*", "/a%20b", "/a%3Ab?x=%2e%2e"])
    func canonicalPathsAreLeftAlone(target: String) {
        #expect(RequestPath.normalize(target, PathNormalization()) == .unchanged)
    }

    @Test(arguments: ["/a%2Fb", "/a%2fb", "/a%5Cb", "/a\\b", "/a#frag", "/a?x#y", "/a%zz", "/a%2", "/caf\u{e9}"])
    func ambiguousTargetsAreRefused(target: String) {
        guard case .rejected = RequestPath.normalize(target, PathNormalization()) else {
            Issue.record("\(target) was not refused")
            return
        }
    }

    @Test func escapedSlashesCanBeKeptUnchanged() {
        let keep = PathNormalization(escapedSlashes: .keep)
        #expect(RequestPath.normalize("/a%2fb/../c", keep) == .normalized("/c"))
        #expect(RequestPath.normalize("/a%2fb", keep) == .normalized("/a%2Fb"))
        #expect(RequestPath.normalize("/a%2Fb", keep) == .unchanged)
    }

    @Test func repeatedSlashesCanBeKept() {
        let noMerge = PathNormalization(mergeSlashes: false)
        #expect(RequestPath.normalize("/a//b", noMerge) == .unchanged)
        #expect(RequestPath.normalize("/a//./b", noMerge) == .normalized("/a//b"))
    }

    @Test func theOneScanSaysWhetherThePathHasParameters() {
        #expect(RequestPath.canonicalize("/admin;x=y", PathNormalization()).hasParameters)
        #expect(!RequestPath.canonicalize("/admin?q=a;b", PathNormalization()).hasParameters, "a ; in the query is no parameter")
        #expect(RequestPath.canonicalize("/p/../admin;x", PathNormalization()) == (.normalized("/admin;x"), true))
        #expect(RequestPath.canonicalize("/a?x#y", PathNormalization()).outcome == .rejected("a fragment (#) is never part of a request target"))
    }

    @Test func parametersAreRemovedForMatching() {
        #expect(RequestPath.withoutParameters("/admin;x=y") == "/admin")
        #expect(RequestPath.withoutParameters("/a;1/b;2/c") == "/a/b/c")
        #expect(RequestPath.withoutParameters("/admin") == nil)
    }
}

@Suite struct HostHeaderTests {
    @Test(arguments: ["app.example", "APP.EXAMPLE", "app.example:80", "app.example.", "[::1]", "[::1]:8080", "10.0.0.1:443", "", "a_b.example", "xn--bcher-kva.example"])
    func validHosts(value: String) {
        #expect(HostHeader.problem(Substring(value)) == nil)
    }

    @Test(arguments: ["app example", "user@app.example", "app.example:80:81", "app.example:http", "app.example:", "app..example",
                      ".app.example", "[::1", "[fe80::1%25eth0]", "[1.2.3.4]", "app/x", "app.example:99999", "[::1]x", "caf\u{e9}.example"])
    func invalidHosts(value: String) {
        #expect(HostHeader.problem(Substring(value)) != nil)
    }

    @Test func virtualHostsIgnoreCasePortAndOneTrailingDot() {
        let table = RouteTable(virtualHosts: [
            VirtualHost(name: "app", domains: [.exact("app.example")], routes: []),
            VirtualHost(name: "any", domains: [.any], routes: []),
        ])
        for authority in ["app.example", "APP.EXAMPLE", "app.example:80", "App.Example.:8080", "app.example."] {
            #expect(table.virtualHostIndex(forAuthority: Substring(authority)) == 0, "\(authority)")
        }
    }
}

@Suite struct EmbeddedIPv4Tests {
    @Test(arguments: [
        ("::ffff:169.254.169.254", "169.254.169.254"), ("::169.254.169.254", "169.254.169.254"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"), ("64:ff9b::7f00:1", "127.0.0.1"), ("2002:a9fe:a9fe::1", "169.254.169.254"),
        ("::1", "::1"), ("::", "::"), ("2001:db8::1", "2001:db8::1"),
    ])
    func embeddedAddressesAreUnwrapped(text: String, expected: String) {
        #expect(IPAddress(parsing: text)?.unwrappingIPv4.description == expected)
    }

    @Test(arguments: ["[64:ff9b::a9fe:a9fe]", "[::169.254.169.254]", "[2002:a9fe:a9fe::]", "[::ffff:a9fe:a9fe]"])
    func aBroadAllowDoesNotReachTheMetadataAddressThroughIPv6(host: String) {
        let policy = AccessPolicy(name: "p", rules: [AccessRule(action: .allow, match: AccessMatch(), text: "allow all")])
        let verdict = policy.evaluate(AccessRequest(host: HostName(normalising: host)!, port: 80, method: "GET"))
        #expect(!verdict.allowed)
        #expect(verdict.text.hasPrefix("guard: deny to_linklocal"))
    }

    @Test func aResolvedNAT64AddressIsCheckedAsItsIPv4Address() {
        let policy = AccessPolicy(name: "p", rules: [AccessRule(action: .allow, match: AccessMatch(), text: "allow all")])
        let request = AccessRequest(host: .name("sneaky.example"), resolved: IPAddress(parsing: "64:ff9b::7f00:1"), port: 80, method: "GET")
        #expect(!policy.evaluate(request).allowed)
    }
}

@Suite struct ForwardedTrustTests {
    let xff = "203.0.113.7, 10.0.0.5, 10.0.0.6"
    let peer = IPAddress(parsing: "10.0.0.9")

    @Test func withoutTrustTheClientIsThePeer() {
        #expect(ForwardedTrust().clientAddress(forwardedFor: xff, peer: peer) == peer)
        #expect(!ForwardedTrust().trusts(peer: peer))
    }

    @Test func trustedHopsCountFromTheRightAsEnvoyDoes() {
        #expect(ForwardedTrust(trustedHops: 1).clientAddress(forwardedFor: xff, peer: peer)?.description == "10.0.0.6")
        #expect(ForwardedTrust(trustedHops: 3).clientAddress(forwardedFor: xff, peer: peer)?.description == "203.0.113.7")
        #expect(ForwardedTrust(trustedHops: 4).clientAddress(forwardedFor: xff, peer: peer) == peer, "too few entries: the peer")
    }

    @Test func trustedRangesSkipTheirOwnEntries() {
        let trust = ForwardedTrust(trustedProxies: [IPRange(parsing: "10.0.0.0/8")!])
        #expect(trust.trusts(peer: peer))
        #expect(!trust.trusts(peer: IPAddress(parsing: "192.0.2.1")))
        #expect(trust.clientAddress(forwardedFor: xff, peer: peer)?.description == "203.0.113.7")
        #expect(trust.clientAddress(forwardedFor: xff, peer: IPAddress(parsing: "192.0.2.1"))?.description == "192.0.2.1")
    }

    @Test func onlyConfiguredUpgradeProtocolsPass() {
        let websocket = UpgradeProtocols()
        #expect(websocket.filter("websocket") == "websocket")
        #expect(websocket.filter("WebSocket") == "WebSocket")
        #expect(websocket.filter("h2c") == nil)
        #expect(websocket.filter("h2c, websocket") == "websocket")
        let api = UpgradeProtocols(["websocket", "spdy"])
        #expect(api.filter("SPDY/3.1") == "SPDY/3.1")
        #expect(UpgradeProtocols(["spdy/3.1"]).filter("SPDY/3.2") == nil)
    }
}
