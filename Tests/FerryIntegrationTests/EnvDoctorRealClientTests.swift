import FerryModel
import FerryTestSupport
import Foundation
import Testing

/// `ferry env`'s verdicts for curl and Python checked against the real clients on this machine.
/// Only IP-literal URLs on loopback are fetched, so nothing resolves or leaves the machine.
@Suite(.serialized)
struct EnvDoctorRealClientTests {
    static let noProxyValues = ["", "127.0.0.5", "127.0.0.0/8", "127.0.0.5:1", "*", ".0.0.5", "10.0.0.0/8"]

    @Test(.requires("curl"), arguments: noProxyValues)
    func curlDoesWhatTheDoctorSays(noProxy: String) async throws {
        guard Prerequisites.have("curl") else { return }
        // The "proxy" is an origin that answers anything, so a proxied request gets 200; a direct one goes to
        // 127.0.0.5 on a port nobody listens on and fails to connect.
        let proxy = try TestOrigin(name: "proxy", group: Fixtures.originGroup)
        defer { proxy.close() }
        let url = "http://127.0.0.5:\(unusedPort())/"
        let variables = ["http_proxy": "http://127.0.0.1:\(proxy.port)", "no_proxy": noProxy]
        let verdict = try #require(ProxyEnvironment(variables: variables).decisions(for: url)?.first { $0.client == .curl })
        var environment = variables
        environment["PATH"] = "/usr/bin:/bin"
        let real = try await Subprocess.run(Curl.curlPath, ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", url], environment: environment)
        #expect((real.stdout == "200") == (verdict.proxy != nil), "doctor: \(verdict.reason); curl: \(real.stdout) \(real.stderr)")
    }

    @Test(.requires("python3")) func pythonUrllibDoesWhatTheDoctorSays() async throws {
        guard Prerequisites.have("python3") else { return }
        let hosts = ["api.example.com", "example.com", "10.1.2.3", "a.b.svc", "localhost"]
        let values = ["example.com", ".example.com", "10.0.0.0/8", "*.svc", ".svc", "*", "localhost:80", "api.example.com:443"]
        let script = """
        import sys, urllib.request
        for line in sys.stdin.read().splitlines():
            no_proxy, host = line.split("|")
            print(int(urllib.request.proxy_bypass_environment(host, {"no": no_proxy})))
        """
        var input = ""
        var expected: [String] = []
        for value in values {
            for host in hosts {
                input += "\(value)|\(host)\n"
                let env = ProxyEnvironment(variables: ["http_proxy": "http://p:1", "no_proxy": value])
                let d = env.decisions(for: "http://\(host)/")!.first { $0.client == .python }!
                expected.append(d.proxy == nil ? "1" : "0")
            }
        }
        let file = try Fixtures.writeTemp(input, name: "cases.txt")
        let run = try await Subprocess.run("/bin/sh", ["-c", "\(Prerequisites.path(of: "python3")!) -c '\(script)' < \(file)"])
        #expect(run.stdout.split(separator: "\n").map(String.init) == expected, "\(run.stderr)")
    }

    /// Which variable Python reads, in which case, under CGI, hidden by an empty lower-case one: the
    /// doctor against `urllib.request.getproxies_environment()` and `proxy_bypass_environment` run with
    /// exactly these variables.
    @Test(arguments: [
        ["HTTP_PROXY": "http://upper:1", "http_proxy": ""],
        ["HTTP_PROXY": "http://upper:1"],
        ["Http_Proxy": "http://mixed:1"],
        ["HTTP_PROXY": "http://upper:1", "REQUEST_METHOD": "GET"],
        ["http_proxy": "http://lower:1", "REQUEST_METHOD": "GET"],
        ["http_proxy": "http://lower:1", "NO_PROXY": "example.com", "no_proxy": ""],
        ["http_proxy": "http://lower:1", "no_proxy": "example.com"],
        ["http_proxy": "http://lower:1", "no_proxy": "::1"],
        ["http_proxy": "http://lower:1", "no_proxy": "[::1]"],
    ])
    func pythonReadsTheVariablesAsTheDoctorSays(variables: [String: String]) async throws {
        guard Prerequisites.have("python3") else { return }
        let script = """
        import sys, urllib.request
        for url in sys.argv[1:]:
            req = urllib.request.Request(url)
            proxies = urllib.request.getproxies_environment()
            p = proxies.get(req.type)
            if p and urllib.request.proxy_bypass_environment(req.host, proxies):
                p = None
            print(p or "direct")
        """
        let urls = ["http://example.com/", "http://[::1]:8080/"]
        var environment = variables
        environment["PATH"] = "/usr/bin:/bin"
        let run = try await Subprocess.run(Prerequisites.path(of: "python3")!, ["-c", script] + urls, environment: environment)
        let doctor = ProxyEnvironment(variables: variables)
        let expected = urls.map { url in doctor.decisions(for: url)!.first { $0.client == .python }!.proxy ?? "direct" }
        #expect(run.stdout.split(separator: "\n").map(String.init) == expected, "\(variables): \(run.stderr)")
    }

    @Test func theCommandPrintsTheTableAndJSON() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let env = ["PATH": "/usr/bin:/bin", "HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": ".corp.example,10.0.0.0/8"]
        let json = try await Subprocess.run(binary, ["env", "https://10.1.2.3/", "--output", "json"], environment: env)
        #expect(json.status == 0, "\(json.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let clients = object?["clients"] as? [String: [String: Any]]
        #expect(clients?["go"]?["uses_proxy"] as? Bool == false)
        #expect(clients?["python"]?["uses_proxy"] as? Bool == true)
        #expect(clients?["python"]?["proxy"] as? String == "http://proxy.corp:3128")
        #expect(clients?["java"]?["uses_proxy"] as? Bool == false)
        let text = try await Subprocess.run(binary, ["env", "https://git.corp.example/", "--no-proxy", "corp.example"], environment: env)
        #expect(text.stdout.contains("go      direct: NO_PROXY entry corp.example matches corp.example and its subdomains"), "\(text.stdout)")
        #expect(text.stdout.contains("-Dhttps.proxyHost=proxy.corp -Dhttps.proxyPort=3128 -Dhttp.nonProxyHosts=corp.example|*.corp.example"))
        let ftp = try await Subprocess.run(binary, ["env", "ftp://files.example/", "--output", "json"], environment: env.merging(["ftp_proxy": "http://f:1"]) { a, _ in a })
        #expect(ftp.status == 0, "a URL of another scheme gets a verdict per client: \(ftp.stderr)")
        let ftpClients = (try JSONSerialization.jsonObject(with: Data(ftp.stdout.utf8)) as? [String: Any])?["clients"] as? [String: [String: Any]]
        #expect(ftpClients?["go"]?["uses_proxy"] as? Bool == false)
        #expect(ftpClients?["curl"]?["proxy"] as? String == "http://f:1")
        let bad = try await Subprocess.run(binary, ["env", "not a url"], environment: env)
        #expect(bad.status != 0 && bad.stderr.contains("expected a URL such as https://api.example.com/"))
        // The installed curl is named, and how it differs from the current release when it is older.
        let curlLine = try await Subprocess.run(Curl.curlPath, ["--version"]).stdout.split(separator: "\n").first.map(String.init) ?? ""
        let version = curlLine.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        let parts = version.split(separator: ".").compactMap { Int($0) }
        if parts.count >= 2, (parts[0], parts[1]) < (8, 9) {
            #expect(text.stdout.contains("the curl installed here is \(version), older than the current release"), "\(text.stdout)")
            #expect(!text.stdout.contains("behaves as the table says"))
        } else {
            #expect(text.stdout.contains("curl installed here: \(version), a release that behaves as the table says"))
        }
    }
}
