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
        // To fix where a spelling every client reads alike exists (and the message names it); notes where none does.
        let severity = Dictionary(env.lint().map { ($0.entry, $0.severity) }, uniquingKeysWith: { a, _ in a })
        for e in ["HTTP_PROXY", ".corp.example", "*.svc", "[::1]", "*", "host name"] { #expect(severity[e] == .fix, "\(e)") }
        for e in ["10.0.0.0/8", "api:8443"] { #expect(severity[e] == .note, "\(e)") }
        let messages = Dictionary(env.lint().map { ($0.entry, $0.message) }, uniquingKeysWith: { a, _ in a })
        #expect(messages[".corp.example"]?.contains("write corp.example") == true)
        #expect(messages["*.svc"]?.contains("write svc") == true)
        // Both cases alike, plain names and CIDRs: nothing to fix.
        let clean = ProxyEnvironment(variables: ["HTTP_PROXY": "http://p:3128", "http_proxy": "http://p:3128", "NO_PROXY": "svc,cluster.local,10.96.0.0/12", "no_proxy": "svc,cluster.local,10.96.0.0/12"])
        #expect(clean.lint().allSatisfy { $0.severity == .note } && clean.lint().count == 1)
        let differing = ProxyEnvironment(variables: ["NO_PROXY": "a", "no_proxy": "b"])
        #expect(differing.lint().map(\.severity) == [.fix])
    }

    @Test func podEnvAndJVMFlags() {
        let env = ProxyEnvironment(variables: ["HTTPS_PROXY": "http://user:pw@proxy.corp:3128", "NO_PROXY": "example.com,.svc,10.0.0.0/8,10.1.2.3"])
        #expect(env.jvmFlags() == ["-Dhttps.proxyHost=proxy.corp", "-Dhttps.proxyPort=3128", "-Dhttp.nonProxyHosts=example.com|*.example.com|*.svc|10.1.2.3"])
        #expect(env.podEnv().contains("  - name: https_proxy\n    value: \"http://user:pw@proxy.corp:3128\"\n"))
        #expect(!env.podEnv().contains("HTTP_PROXY"))
    }
}

/// Each client modelled exactly: Go's `golang.org/x/net/http/httpproxy`, Python's
/// `urllib.request.getproxies_environment` / `proxy_bypass_environment`, curl's `Curl_check_noproxy` (8.9+).
@Suite struct ProxyEnvironmentClientTests {
    let proxies = ["HTTP_PROXY": "http://p:1", "http_proxy": "http://p:1", "HTTPS_PROXY": "http://p:1", "https_proxy": "http://p:1"]

    /// [go, curl, python] use the proxy?
    func verdicts(_ url: String, noProxy: String, extra: [String: String] = [:]) -> [Bool] {
        var variables = proxies
        variables["NO_PROXY"] = noProxy
        variables["no_proxy"] = noProxy
        variables.merge(extra) { _, new in new }
        let d = ProxyEnvironment(variables: variables).decisions(for: url)!
        return d.prefix(3).map { $0.proxy != nil }
    }

    @Test func goComparesHostsAndEntriesInPunycode() {
        #expect(verdicts("https://bücher.example/", noProxy: "xn--bcher-kva.example")[0] == false)
        #expect(verdicts("https://xn--bcher-kva.example/", noProxy: "bücher.example")[0] == false)
        #expect(verdicts("https://shop.bücher.example/", noProxy: ".bücher.example")[0] == false)
    }

    @Test func nameEntriesNeverMatchIPLiteralHosts() {
        #expect(verdicts("http://10.0.0.1/", noProxy: "0.0.1") == [true, true, false], "Python compares text: 10.0.0.1 ends with .0.0.1")
        #expect(verdicts("http://[fe80::1%25.example.com]/", noProxy: "*.example.com")[0] == true, "a zoned IPv6 literal is no name")
        #expect(verdicts("http://[fe80::1%25.example.com]/", noProxy: ".example.com")[0] == true)
    }

    @Test func bracketedIPv6Entries() {
        // Go reads [v6]:port; a bracketed entry without a port never matches in Go or curl.
        #expect(verdicts("http://[2001:db8::1]:8080/", noProxy: "[2001:db8::1]:8080")[0] == false)
        #expect(verdicts("http://[2001:db8::1]/", noProxy: "[2001:db8::1]:8080")[0] == true)
        #expect(verdicts("http://[2001:db8::1]/", noProxy: "[2001:db8::1]") == [true, true, false], "Python compares [2001:db8::1] as text")
        #expect(verdicts("http://[2001:db8::1]/", noProxy: "2001:db8::1") == [false, false, true], "Python compares the host with its brackets")
        #expect(verdicts("http://[2001:db8::1]/", noProxy: "2001:db8::/32") == [false, false, true])
    }

    @Test func goRefusesHTTPProxyForHTTPInACGIEnvironment() {
        let env = ProxyEnvironment(variables: ["HTTP_PROXY": "http://p:1", "HTTPS_PROXY": "http://p:1", "REQUEST_METHOD": "GET"])
        let http = env.decisions(for: "http://example.com/")!
        #expect(http[0].fails && http[0].proxy == nil)
        #expect(http[2].proxy == nil, "Python drops upper-case HTTP_PROXY under CGI")
        let https = env.decisions(for: "https://example.com/")!
        #expect(!https[0].fails && https[0].proxy == "http://p:1")
        let lower = ProxyEnvironment(variables: ["http_proxy": "http://p:1", "REQUEST_METHOD": "GET"]).decisions(for: "http://example.com/")!
        #expect(lower[2].proxy == "http://p:1", "Python still reads lower-case http_proxy under CGI")
        #expect(lower[0].fails, "Go refuses whichever spelling")
    }

    @Test func pythonLetsAnEmptyLowerCaseVariableHideTheUpperCaseOne() {
        let hidden = ProxyEnvironment(variables: ["HTTP_PROXY": "http://p:1", "http_proxy": ""]).decisions(for: "http://example.com/")!
        #expect(hidden[0].proxy == "http://p:1", "Go reads HTTP_PROXY first")
        #expect(hidden[2].proxy == nil)
        let noProxy = ProxyEnvironment(variables: ["https_proxy": "http://p:1", "NO_PROXY": "example.com", "no_proxy": ""]).decisions(for: "https://example.com/")!
        #expect(noProxy[2].proxy != nil, "no_proxy=\"\" hides NO_PROXY from Python")
        #expect(noProxy[0].proxy == nil, "Go reads NO_PROXY")
        let mixed = ProxyEnvironment(variables: ["Https_Proxy": "http://m:1"]).decisions(for: "https://example.com/")!
        #expect(mixed[2].proxy == "http://m:1")
        #expect(mixed[0].proxy == nil && mixed[1].proxy == nil)
    }

    @Test func curlNeedsCommasAndAloneIgnoresATrailingDotOnTheHost() {
        #expect(verdicts("https://b.example/", noProxy: "a.example b.example")[1] == true, "a blank not followed by a comma ends curl's list")
        #expect(verdicts("https://b.example/", noProxy: "a.example , b.example")[1] == false)
        #expect(verdicts("https://example.com./", noProxy: "example.com") == [true, false, true])
    }

    @Test func otherSchemesGetAVerdictPerClient() {
        let env = ProxyEnvironment(variables: ["ftp_proxy": "http://f:1", "ALL_PROXY": "http://a:1"])
        let d = env.decisions(for: "ftp://files.example/pub/")!
        #expect(d[0].proxy == nil && d[0].reason.contains("only http"))
        #expect(d[1].proxy == "http://f:1")
        #expect(d[2].proxy == "http://f:1")
        #expect(d[3].proxy == nil)
        #expect(ProxyEnvironment(variables: ["ALL_PROXY": "http://a:1"]).decisions(for: "gopher://g.example/")![1].proxy == "http://a:1")
    }
}
