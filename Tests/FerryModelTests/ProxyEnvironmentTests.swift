import FerryModel
import Testing

@Suite struct ProxyEnvironmentTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var noProxy: String
        var url: String
        /// Whether go, curl and python use the proxy.
        var go: Bool, curl: Bool, python: Bool
        var testDescription: String { "NO_PROXY=\(noProxy) \(url)" }
    }

    static let cases: [Case] = [
        Case(noProxy: "", url: "https://api.example.com/", go: true, curl: true, python: true),
        Case(noProxy: "example.com", url: "https://api.example.com/", go: false, curl: false, python: false),
        Case(noProxy: "example.com", url: "https://example.com/", go: false, curl: false, python: false),
        Case(noProxy: ".example.com", url: "https://example.com/", go: true, curl: false, python: false),
        Case(noProxy: ".example.com", url: "https://a.example.com/", go: false, curl: false, python: false),
        Case(noProxy: "*.example.com", url: "https://a.example.com/", go: false, curl: true, python: true),
        Case(noProxy: "*", url: "https://anything.org/", go: false, curl: false, python: false),
        Case(noProxy: "10.0.0.0/8", url: "http://10.1.2.3/", go: false, curl: false, python: true),
        Case(noProxy: "10.1.2.3", url: "http://10.1.2.3:8080/", go: false, curl: false, python: false),
        Case(noProxy: "example.com:8443", url: "https://example.com:8443/", go: false, curl: true, python: false),
        Case(noProxy: "example.com:8443", url: "https://example.com/", go: true, curl: true, python: true),
        Case(noProxy: "badexample.com", url: "https://example.com/", go: true, curl: true, python: true),
        Case(noProxy: "", url: "http://localhost:8080/", go: false, curl: true, python: true),
        Case(noProxy: "", url: "http://127.0.0.1/", go: false, curl: true, python: true),
        Case(noProxy: "EXAMPLE.com", url: "https://Www.Example.COM/", go: false, curl: false, python: false),
    ]

    @Test(arguments: cases)
    func clientsReadNoProxyDifferently(_ c: Case) throws {
        let env = ProxyEnvironment(variables: ["HTTP_PROXY": "http://proxy:3128", "http_proxy": "http://proxy:3128", "HTTPS_PROXY": "http://proxy:3128", "https_proxy": "http://proxy:3128", "NO_PROXY": c.noProxy, "no_proxy": c.noProxy])
        let d = try #require(env.decisions(for: c.url))
        #expect((d[0].proxy != nil) == c.go, "go: \(d[0].reason)")
        #expect((d[1].proxy != nil) == c.curl, "curl: \(d[1].reason)")
        #expect((d[2].proxy != nil) == c.python, "python: \(d[2].reason)")
        #expect(d[3].proxy == nil)
    }

    @Test func whichVariablesEachClientReads() throws {
        // Upper-case HTTP_PROXY alone: Go and Python use it, curl does not (httpoxy).
        let upper = ProxyEnvironment(variables: ["HTTP_PROXY": "proxy:3128"])
        let d = try #require(upper.decisions(for: "http://example.com/"))
        #expect(d.map { $0.proxy != nil } == [true, false, true, false])
        #expect(d[0].proxy == "http://proxy:3128")
        // Only HTTP_PROXY set: no client uses it for https.
        let https = try #require(upper.decisions(for: "https://example.com/"))
        #expect(https.allSatisfy { $0.proxy == nil })
        // ALL_PROXY: curl only.
        let all = try #require(ProxyEnvironment(variables: ["ALL_PROXY": "http://p:1"]).decisions(for: "https://example.com/"))
        #expect(all.map { $0.proxy != nil } == [false, true, false, false])
        // Both cases set differently: Go takes upper case, curl and Python lower case.
        let both = try #require(ProxyEnvironment(variables: ["HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:1"]).decisions(for: "https://example.com/"))
        #expect(both.map(\.proxy) == ["http://upper:1", "http://lower:1", "http://lower:1", nil])
    }

    @Test func lintNamesWhatClientsReadDifferently() {
        let env = ProxyEnvironment(variables: ["HTTP_PROXY": "http://p:3128", "NO_PROXY": ".corp.example, 10.0.0.0/8,*.svc,api:8443,[::1],*,host name"])
        let entries = env.lint().map(\.entry)
        #expect(entries.contains("HTTP_PROXY"))
        for e in [".corp.example", "10.0.0.0/8", "*.svc", "api:8443", "[::1]", "*", "host name"] { #expect(entries.contains(e), "\(e)") }
    }

    @Test func podEnvAndJVMFlags() {
        let env = ProxyEnvironment(variables: ["HTTPS_PROXY": "http://user:pw@proxy.corp:3128", "NO_PROXY": "example.com,.svc,10.0.0.0/8,10.1.2.3"])
        #expect(env.jvmFlags() == ["-Dhttps.proxyHost=proxy.corp", "-Dhttps.proxyPort=3128", "-Dhttp.nonProxyHosts=example.com|*.example.com|*.svc|10.1.2.3"])
        #expect(env.podEnv().contains("  - name: https_proxy\n    value: \"http://user:pw@proxy.corp:3128\"\n"))
        #expect(!env.podEnv().contains("HTTP_PROXY"))
    }
}
