import FerryModel
import Testing

@Suite struct HostNameTests {
    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("127.0.1", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "127.0.0.1"), ("[::1]", "[::1]"), ("169.254.169.254.", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"), ("0.0.0.0", "0.0.0.0"),
    ])
    func ipLiteralsInEverySpellingAreAddresses(text: String, expected: String) {
        #expect(HostName(normalising: text)?.description == expected)
    }

    @Test(arguments: [
        ("Example.COM", "example.com"), ("example.com.", "example.com"), ("bücher.example", "xn--bcher-kva.example"),
        ("München.de", "xn--mnchen-3ya.de"), ("1x.example.com", "1x.example.com"), ("123.example", "123.example"),
    ])
    func namesAreNormalised(text: String, expected: String) {
        #expect(HostName(normalising: text) == .name(expected))
    }

    /// An empty label (`name..`, `a..b`) and numeric parts with leading zeros (octal to inet_aton, decimal to
    /// others: `0177.0.0.1`, `10.0.0.010`) have no one meaning.
    @Test(arguments: ["", ".", "a..b", "exa mple.com", "a/b", "user@host", "256.256.256.256.256", "[1.2.3.4]", "a:b",
                      "name..", "example.com..", "0177.0.0.1", "017700000001", "10.0.0.010", "127.0.0.01"])
    func notHosts(text: String) {
        #expect(HostName(normalising: text) == nil)
    }
}

@Suite struct AccessPolicyTests {
    func policy(_ rules: [String], default action: AccessRule.Action = .deny, guards: [AccessGuard] = AccessGuard.squidDefaults) -> AccessPolicy {
        let parsed = rules.map { text -> AccessRule in
            let action: AccessRule.Action = text.hasPrefix("deny ") ? .deny : .allow
            return try! AccessRule.parse(action, String(text.split(separator: " ", maxSplits: 1)[1])).get()
        }
        return AccessPolicy(name: "p", rules: parsed, defaultAction: action, guards: guards)
    }

    func verdict(_ p: AccessPolicy, _ host: String, _ port: Int = 443, method: String = "CONNECT", resolved: String? = nil, source: String? = nil) -> Verdict {
        p.evaluate(AccessRequest(host: HostName(normalising: host)!, resolved: resolved.flatMap { IPAddress(parsing: $0) }, port: port, method: method, source: source.flatMap { IPAddress(parsing: $0) }))
    }

    @Test(arguments: [
        ("example.com", "example.com", true), ("example.com", "www.example.com", false),
        (".example.com", "example.com", true), (".example.com", "a.b.example.com", true), (".example.com", "badexample.com", false),
        ("*.example.com", "example.com", false), ("*.example.com", "a.example.com", true), ("*.example.com", "a.b.example.com", true),
        ("~^api[0-9]+\\.example\\.com$", "api7.example.com", true), ("~^api[0-9]+\\.example\\.com$", "api.example.com", false),
        (".EXAMPLE.com.", "Www.Example.Com.", true), (".bücher.example", "shop.xn--bcher-kva.example", true),
    ])
    func dstdomainSemantics(rule: String, host: String, allowed: Bool) {
        #expect(verdict(policy(["allow \(rule)"]), host).allowed == allowed)
    }

    @Test func firstMatchWinsAndTheDecidingRuleIsNamed() {
        let p = policy(["deny secret.example.com", "allow .example.com"])
        let denied = verdict(p, "secret.example.com")
        #expect(!denied.allowed && denied.rule == 1 && denied.text == "deny secret.example.com")
        let allowed = verdict(p, "www.example.com")
        #expect(allowed.allowed && allowed.rule == 2 && allowed.text == "allow .example.com")
        let other = verdict(p, "other.org")
        #expect(!other.allowed && other.rule == nil && other.text == "default deny")
    }

    @Test func ipRulesMatchEverySpellingAndResolvedAddresses() {
        let p = policy(["deny 10.0.0.0/8", "allow *"])
        for spelling in ["10.1.2.3", "167838211", "0xa010203", "10.66051", "[::ffff:10.1.2.3]", "[::10.1.2.3]", "[64:ff9b::a01:203]", "[2002:a01:203::1]"] {
            #expect(!verdict(p, spelling).allowed, "\(spelling)")
        }
        // A name that resolves into the denied range is denied once the address is known.
        #expect(verdict(p, "internal.example.com").allowed)
        #expect(!verdict(p, "internal.example.com", resolved: "10.9.9.9").allowed)
        #expect(verdict(p, "internal.example.com", resolved: "93.184.216.34").allowed)
    }

    @Test func portsAndRanges() {
        let p = policy(["allow api.github.com:443", "allow .internal.example:8000-8999", "allow *.db.example:5432,6432"])
        #expect(verdict(p, "api.github.com", 443).allowed)
        #expect(!verdict(p, "api.github.com", 80, method: "GET").allowed)
        #expect(verdict(p, "x.internal.example", 8080, method: "GET").allowed)
        #expect(!verdict(p, "x.internal.example", 9000, method: "GET").allowed)
        // CONNECT to 5432 is outside SSL_ports, but the rule names the port, so it is allowed.
        #expect(verdict(p, "pg.db.example", 5432).allowed)
    }

    @Test func squidGuards() {
        let p = policy(["allow *"])
        let port = verdict(p, "example.com", 25, method: "GET")
        #expect(!port.allowed && port.text == "guard: deny !Safe_ports (80, 21, 443, 70, 210, 1025-65535, 280, 488, 591, 777)")
        let connect = verdict(p, "example.com", 8443)
        #expect(!connect.allowed && connect.text == "guard: deny CONNECT !SSL_ports (443)")
        #expect(verdict(p, "example.com", 8443, method: "GET").allowed)
        #expect(!verdict(p, "127.0.0.1", 443).allowed)
        #expect(!verdict(p, "2130706433", 443).allowed)
        #expect(!verdict(p, "[::1]", 443).allowed)
        #expect(!verdict(p, "localhost.example", 443, resolved: "127.0.0.1").allowed, "no rebinding into loopback")
        #expect(!verdict(p, "169.254.169.254", 80, method: "GET").allowed)
        #expect(!verdict(p, "metadata.google.internal", 80, method: "GET", resolved: "169.254.169.254").allowed)
        // A rule that names the address lifts the guard for it.
        let local = policy(["allow 127.0.0.1/32:8080"])
        #expect(verdict(local, "127.0.0.1", 8080, method: "GET").allowed)
        #expect(!verdict(local, "127.0.0.2", 8080, method: "GET").allowed)
        // Guards also hold against an allow-all default.
        #expect(!verdict(policy([], default: .allow), "127.0.0.1", 80, method: "GET").allowed)
        #expect(verdict(policy([], default: .allow, guards: []), "127.0.0.1", 80, method: "GET").allowed)
    }

    @Test func sourcesMethodsAndUsers() {
        var p = policy([])
        p.rules = [
            AccessRule(action: .allow, match: AccessMatch(domains: [.subtree("example.com")], methods: ["GET"], sources: [IPRange(parsing: "10.0.0.0/8")!]), text: "allow GET from 10/8"),
            AccessRule(action: .allow, match: AccessMatch(users: ["alice"]), text: "allow alice"),
        ]
        #expect(p.evaluate(AccessRequest(host: .name("example.com"), port: 80, method: "GET", source: IPAddress(parsing: "10.1.1.1"))).allowed)
        #expect(!p.evaluate(AccessRequest(host: .name("example.com"), port: 80, method: "POST", source: IPAddress(parsing: "10.1.1.1"))).allowed)
        #expect(!p.evaluate(AccessRequest(host: .name("example.com"), port: 80, method: "GET", source: IPAddress(parsing: "192.168.1.1"))).allowed)
        #expect(p.evaluate(AccessRequest(host: .name("any.org"), port: 443, method: "CONNECT", user: "alice")).allowed)
        #expect(!p.evaluate(AccessRequest(host: .name("any.org"), port: 443, method: "CONNECT", user: "bob")).allowed)
    }

    @Test(arguments: ["", ":", "example.com:0", "example.com:70000", "example.com:443-80", "exa mple.com", "[fd00::/8", "10.0.0.0/33:443"])
    func badRuleTextIsRefused(text: String) {
        if case .success(let r) = AccessRule.parse(.allow, text) { Issue.record("accepted \(r)") }
    }

    @Test func ipv6RulesWithPorts() throws {
        let rule = try AccessRule.parse(.allow, "[fd00::/8]:443").get()
        #expect(rule.match.addresses.map(\.description) == ["fd00::/8"] && rule.match.ports == [443...443])
    }
}

/// The short rule form of `ferry egress --allow/--deny` says what the YAML mapping says.
@Suite struct AccessRuleClauseTests {
    func rule(_ text: String) throws -> AccessRule { try AccessRule.parse(.allow, text).get() }

    @Test func aNameAndTheAddressesItMustResolveTo() throws {
        let r = try rule("registry.internal:443 at 10.20.0.0/16,10.30.0.1")
        let policy = AccessPolicy(name: "p", rules: [r])
        #expect(policy.dependsOnAddress(AccessRequest(host: .name("registry.internal"), port: 443, method: "CONNECT")))
        #expect(policy.evaluate(AccessRequest(host: .name("registry.internal"), resolved: IPAddress(parsing: "10.20.1.1"), port: 443, method: "CONNECT")).allowed)
        #expect(!policy.evaluate(AccessRequest(host: .name("registry.internal"), resolved: IPAddress(parsing: "203.0.113.9"), port: 443, method: "CONNECT")).allowed,
                "a poisoned answer outside the expected range is refused")
        #expect(!policy.evaluate(AccessRequest(host: .name("other.internal"), resolved: IPAddress(parsing: "10.20.1.1"), port: 443, method: "CONNECT")).allowed)
    }

    @Test func methodsSourcesAndUsersInAnyOrder() throws {
        let r = try rule(".example.com:80 methods get,HEAD from 10.1.0.0/16 for alice, bob")
        #expect(r.match.methods == ["GET", "HEAD"])
        #expect(r.match.sources == [IPRange(parsing: "10.1.0.0/16")!])
        #expect(r.match.users == ["alice", "bob"])
        let policy = AccessPolicy(name: "p", rules: [r])
        let request = AccessRequest(host: .name("www.example.com"), port: 80, method: "GET", source: IPAddress(parsing: "10.1.2.3"), user: "alice")
        #expect(policy.evaluate(request).allowed)
        var post = request
        post.method = "POST"
        #expect(!policy.evaluate(post).allowed)
    }

    @Test(arguments: ["example.com at", "example.com at not-a-cidr", "example.com methods G/T", "example.com stray", "example.com at 10.0.0.0/8 at 10.1.0.0/16"])
    func badClausesSayWhatToFix(text: String) {
        guard case .failure(let error) = AccessRule.parse(.allow, text) else {
            Issue.record("\(text) was accepted")
            return
        }
        #expect(!error.problem.isEmpty)
    }
}

/// Rules that select the client's Pod (namespace, labels): they apply only to a known Pod that matches.
struct SourceSelectorTests {
    static func request(_ identity: SourceIdentity?) -> AccessRequest {
        var r = AccessRequest(host: .name("pay.test"), port: 443, method: "CONNECT", source: IPAddress(parsing: "10.244.1.5"))
        r.sourceIdentity = identity
        return r
    }

    @Test func namespacesAndLabelsSelectTheSourcePod() throws {
        let rule = try AccessRule.parse(.allow, "pay.test namespaces shop,billing pods app=cart,tier=edge").get()
        #expect(rule.match.namespaces == ["shop", "billing"] && rule.match.podLabels == ["app": "cart", "tier": "edge"])
        let cart = SourceIdentity(namespace: "shop", pod: "cart-1", labels: ["app": "cart", "tier": "edge", "extra": "x"])
        #expect(rule.match.matches(Self.request(cart)))
        #expect(!rule.match.matches(Self.request(SourceIdentity(namespace: "web", pod: "cart-1", labels: cart.labels))))
        #expect(!rule.match.matches(Self.request(SourceIdentity(namespace: "shop", pod: "cart-1", labels: ["app": "cart"]))))
        #expect(!rule.match.matches(Self.request(nil)), "an unknown source is never selected")
        // A rule without selectors still applies to everyone.
        #expect(try AccessRule.parse(.allow, "pay.test").get().match.matches(Self.request(nil)))
    }

    @Test func badSelectorsSayWhatToWrite() {
        func problem(_ text: String) -> String? { if case .failure(let e) = AccessRule.parse(.allow, text) { return e.problem } else { return nil } }
        #expect(problem("pay.test pods app") == "\"app\" after \"pods\" is not a label KEY=VALUE")
        #expect(problem("pay.test namespaces") == "\"namespaces\" needs a comma-separated list, as: .example.com namespaces shop,web")
    }
}
