import FerryTestSupport
import Foundation
import Testing

/// `ferry egress` as clients use it: curl -x for http:// and for https:// through CONNECT to a local TLS
/// origin, a client that only has HTTPS_PROXY set, Python requests with proxies=, and denials.
/// Every name resolves through `--hosts-file`; nothing reaches DNS or the outside.
@Suite(.serialized)
struct EgressProcessTests {
    struct Setup {
        let dir: String
        let origin: TestOrigin
        let tls: Subprocess
        let tlsPort: Int
        let cert: String
        let ferry: FerryProcess
        var proxy: String { "http://127.0.0.1:\(ferry.port("egress") ?? 0)" }
    }

    static func withEgress(_ body: (Setup) async throws -> Void) async throws {
        guard Prerequisites.have("curl", "openssl", "python3"), let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("egress")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try await TLSFixtures.certificate(in: dir, name: "secure.test")
        let (tls, tlsPort) = try await TLSFixtures.startOrigin(in: dir, cert: cert, key: key)
        defer { tls.signal(SIGKILL) }
        let origin = try TestOrigin(name: "plain", group: Fixtures.originGroup, host: "127.0.0.2")
        defer { origin.close() }
        try "127.0.0.2 origin.test\n127.0.0.3 secure.test  # the TLS origin\n127.0.0.2 blocked.test\n".write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: [
            "egress", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1", "--hosts-file", dir + "/hosts",
            "--deny", ".blocked.test",
            "--allow", "127.0.0.2/32:\(origin.port)",
            "--allow", "127.0.0.3:\(tlsPort)",
        ])
        let setup = Setup(dir: dir, origin: origin, tls: tls, tlsPort: tlsPort, cert: cert, ferry: ferry)
        do {
            try await body(setup)
        } catch {
            await ferry.stop()
            throw error
        }
        await ferry.stop()
    }

    @Test func curlThroughTheProxyForHTTPAndHTTPS() async throws {
        try await Self.withEgress { s in
            let plain = try await Curl.request("http://origin.test:\(s.origin.port)/echo?x=1", ["-x", s.proxy])
            #expect(plain.status == 200 && plain.header("x-origin") == "plain")
            #expect(plain.body.contains("\"uri\":\"\\/echo?x=1\""), "origin-form upstream: \(plain.body)")
            #expect(s.origin.lastHeaders.contains { $0.0.lowercased() == "host" && $0.1 == "origin.test:\(s.origin.port)" })

            let secure = try await Curl.request("https://secure.test:\(s.tlsPort)/", ["-x", s.proxy, "--cacert", s.cert])
            #expect(secure.status == 200 && secure.body == "secure hello via secure.test:\(s.tlsPort)\n", "\(secure.stderr)")

            // A client configured only through HTTPS_PROXY (as a Pod's env sets it).
            let env = ["HTTPS_PROXY": s.proxy, "PATH": "/usr/bin:/bin"]
            let viaEnv = try await Subprocess.run(Curl.curlPath, ["-sS", "--cacert", s.cert, "https://secure.test:\(s.tlsPort)/"], environment: env)
            #expect(viaEnv.stdout == "secure hello via secure.test:\(s.tlsPort)\n", "\(viaEnv.stderr)")

            // One line per tunnel, written when it closes: verdict, rule, and bytes both ways (TLS records).
            #expect(await Waiting.until { s.ferry.accessLog.filter { $0.contains("\"method\":\"CONNECT\"") }.count == 2 })
            let tunnels = s.ferry.accessLog.filter { $0.contains("\"method\":\"CONNECT\"") }
            for line in tunnels {
                #expect(line.contains("\"authority\":\"secure.test:\(s.tlsPort)\"") && line.contains("\"verdict\":\"allow\"") && line.contains("\"rule\":\"3: allow 127.0.0.3:\(s.tlsPort)\""), "\(line)")
                #expect(!line.contains("\"bytes_received\":0,") && !line.contains("\"bytes_sent\":0,"), "\(line)")
            }
        }
    }

    @Test func pythonRequestsWithProxies() async throws {
        guard let python = Prerequisites.python(with: "requests") else { return }
        try await Self.withEgress { s in
            let script = """
            import requests, sys
            proxies = {"http": sys.argv[1], "https": sys.argv[1]}
            a = requests.get("http://origin.test:%s/py" % sys.argv[2], proxies=proxies, timeout=10)
            b = requests.get("https://secure.test:%s/" % sys.argv[3], proxies=proxies, verify=sys.argv[4], timeout=10)
            c = requests.get("http://blocked.test:%s/" % sys.argv[2], proxies=proxies, timeout=10)
            print(a.status_code, a.headers.get("x-origin"), b.status_code, b.text.strip(), c.status_code)
            """
            let r = try await Subprocess.run(python, ["-c", script, s.proxy, "\(s.origin.port)", "\(s.tlsPort)", s.cert])
            #expect(r.stdout == "200 plain 200 secure hello via secure.test:\(s.tlsPort) 403\n", "\(r.stderr)")
        }
    }

    @Test func aSlowReaderBehindATunnelDoesNotGrowMemory() async throws {
        try await Self.withEgress { s in
            // Through a CONNECT tunnel the origin offers 512 MiB as fast as it can; the client reads 64 KiB
            // every 20 ms for 3 s. Backpressure must keep Ferry from buffering what the client has not read.
            let script = """
            import socket, sys, time
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
            s.sendall(b"CONNECT origin.test:%s HTTP/1.1\\r\\nHost: origin.test\\r\\n\\r\\n" % sys.argv[2].encode())
            head = b""
            while b"\\r\\n\\r\\n" not in head:
                head += s.recv(1)
            assert head.startswith(b"HTTP/1.1 200"), head
            s.sendall(b"GET /bytes/536870912 HTTP/1.1\\r\\nHost: origin.test\\r\\n\\r\\n")
            got, end = 0, time.time() + 3
            while time.time() < end:
                got += len(s.recv(65536))
                time.sleep(0.02)
            print(got, flush=True)
            s.close()
            """
            let baseline = s.ferry.peakMemoryKiB ?? 0
            let r = try await Subprocess.run(Prerequisites.path(of: "python3")!, ["-c", script, "\(s.ferry.port("egress")!)", "\(s.origin.port)"], timeout: .seconds(30))
            let read = Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            #expect(read > 0 && read < 64 * 1024 * 1024, "the client read slowly: \(read) bytes; \(r.stderr)")
            let peak = s.ferry.peakMemoryKiB ?? Int.max
            #expect(peak - baseline < 48 * 1024, "peak \(peak) KiB against \(baseline) KiB before the tunnel")
        }
    }

    @Test func aChildProxyReachesTheOriginsThroughItsParent() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withEgress { s in
            // The child has no hosts file: it resolves nothing and asks the parent (the suite's egress) with CONNECT.
            let child = try await FerryProcess(binary: binary, arguments: [
                "egress", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1",
                "--allow", "origin.test:\(s.origin.port)", "--allow", "secure.test:\(s.tlsPort)",
                "--upstream-proxy", "\(s.proxy)",
            ])
            defer { Task { await child.stop() } }
            let childProxy = "http://127.0.0.1:\(child.port("egress") ?? 0)"
            let plain = try await Curl.request("http://origin.test:\(s.origin.port)/chained", ["-x", childProxy])
            #expect(plain.status == 200 && plain.body.contains("\"uri\":\"\\/chained\""), "\(plain.status) \(plain.body)")
            let secure = try await Curl.request("https://secure.test:\(s.tlsPort)/", ["-x", childProxy, "--cacert", s.cert])
            #expect(secure.body == "secure hello via secure.test:\(s.tlsPort)\n", "\(secure.stderr)")
            // The parent saw CONNECTs from the child for both.
            #expect(await Waiting.until { s.ferry.accessLog.filter { $0.contains("\"method\":\"CONNECT\"") && $0.contains("\"verdict\":\"allow\"") }.count >= 2 })
            // A parent that refuses: the child answers 502 and says why.
            let refused = try await Curl.request("http://blocked.test:\(s.origin.port)/", ["-x", childProxy])
            #expect(refused.status == 403, "the child's own policy denies first: \(refused.body)")
        }
    }

    @Test func proxyAuthenticationWithAUsersFile() async throws {
        guard let binary = Prerequisites.ferryBinary(), let python = Prerequisites.python(with: "requests") else { return }
        try await Self.withEgress { s in
            // alice's hash comes from ferry itself; bob's from Python's hashlib with 1000 rounds: the format is
            // the same PBKDF2-HMAC-SHA256 any implementation computes.
            let made = try await Subprocess.run("/bin/sh", ["-c", "printf 'wonderland\\n' | \(binary) egress --hash-password"])
            #expect(made.status == 0 && made.stdout.hasPrefix("$pbkdf2-sha256$600000$"), "\(made.stderr)")
            let bobHash = try await Subprocess.run(python, ["-c", "import hashlib,base64; salt=b'0123456789abcdef'; print('$pbkdf2-sha256$1000$%s$%s' % (base64.b64encode(salt).decode(), base64.b64encode(hashlib.pbkdf2_hmac('sha256', b'builder', salt, 1000)).decode()))"])
            let usersFile = s.dir + "/users"
            try "# proxy users\nalice:\(made.stdout.trimmingCharacters(in: .whitespacesAndNewlines))\nbob:\(bobHash.stdout.trimmingCharacters(in: .whitespacesAndNewlines))\n".write(toFile: usersFile, atomically: true, encoding: .utf8)
            let ferry = try await FerryProcess(binary: binary, arguments: [
                "egress", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1", "--hosts-file", s.dir + "/hosts",
                "--users-file", usersFile,
                "--allow", "127.0.0.2/32:\(s.origin.port) for alice",
                "--allow", "127.0.0.3:\(s.tlsPort)",
            ])
            defer { Task { await ferry.stop() } }
            let proxy = "http://127.0.0.1:\(ferry.port("egress") ?? 0)"
            let url = "http://origin.test:\(s.origin.port)/auth"

            let none = try await Curl.request(url, ["-x", proxy])
            #expect(none.status == 407 && none.header("proxy-authenticate") == "Basic realm=\"ferry\"")
            #expect(try await Curl.request(url, ["-x", proxy, "--proxy-user", "alice:wrong"]).status == 407)
            let alice = try await Curl.request(url, ["-x", proxy, "--proxy-user", "alice:wonderland"])
            #expect(alice.status == 200 && alice.header("x-origin") == "plain")
            #expect(!alice.body.lowercased().contains("proxy-authorization"), "credentials are not forwarded: \(alice.body)")
            let bob = try await Curl.request(url, ["-x", proxy, "--proxy-user", "bob:builder"])
            #expect(bob.status == 403, "the rule is for alice only: \(bob.body)")
            let tunnel = try await Curl.request("https://secure.test:\(s.tlsPort)/", ["-x", proxy, "--proxy-user", "bob:builder", "--cacert", s.cert])
            #expect(tunnel.status == 200, "\(tunnel.stderr)")
            let py = try await Subprocess.run(python, ["-c", "import requests,sys; r = requests.get(sys.argv[1], proxies={'http': sys.argv[2]}, timeout=10); print(r.status_code)", url, "http://alice:wonderland@127.0.0.1:\(ferry.port("egress") ?? 0)"])
            #expect(py.stdout == "200\n", "\(py.stderr)")
            #expect(await Waiting.until { ferry.accessLog.contains { $0.contains("\"user\":\"alice\"") && $0.contains("\"status\":200") } })
        }
    }

    @Test func aPolicyInTheConfigurationFileReloadsWithoutCuttingATunnel() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withEgress { s in
            func config(_ rules: String) -> String {
                """
                admin: {address: "127.0.0.1:0"}
                listeners:
                  - name: egress
                    address: "127.0.0.1:0"
                    forward_proxy: {policy: outbound, hosts_file: hosts}
                policies:
                  - name: outbound
                    rules:
                \(rules)
                clusters: []
                """
            }
            let path = s.dir + "/egress.yaml"
            try config("      - allow: 127.0.0.2/32:\(s.origin.port)\n      - allow: 127.0.0.3:\(s.tlsPort)").write(toFile: path, atomically: true, encoding: .utf8)
            let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", path, "--threads", "1"], configPath: path)
            defer { Task { await ferry.stop() } }
            let proxy = "http://127.0.0.1:\(ferry.port("egress") ?? 0)"
            #expect(try await Curl.request("http://origin.test:\(s.origin.port)/", ["-x", proxy]).status == 200)
            // A slow response through a tunnel that starts before the edit.
            let hold = try Subprocess(Curl.curlPath, ["-sS", "-p", "-x", proxy, "-w", "\n%{http_code}", "http://origin.test:\(s.origin.port)/hold/30"])
            #expect(await Waiting.until { s.origin.requestsStarted >= 2 })
            try ferry.rewriteConfig(config("      - deny: .test\n      - allow: 127.0.0.3:\(s.tlsPort)"))
            #expect(await Waiting.until { ferry.appliedReloads >= 1 })
            let denied = try await Curl.request("http://origin.test:\(s.origin.port)/", ["-x", proxy])
            #expect(denied.status == 403 && denied.body.contains("rule 1 (deny .test)"))
            #expect(await hold.waitForExit(timeout: .seconds(30)) == 0)
            #expect(hold.stdout == String(repeating: ".", count: 30) + "\n200", "the tunnel kept going")
        }
    }

    @Test func deniedRequestsAndTunnelsNameTheRule() async throws {
        try await Self.withEgress { s in
            let denied = try await Curl.request("http://blocked.test:\(s.origin.port)/", ["-x", s.proxy])
            #expect(denied.status == 403)
            #expect(denied.body.contains("denied by rule 1 (deny .blocked.test) of policy egress"), "\(denied.body)")
            #expect(s.origin.requestsStarted == 0)

            let tunnel = try await Curl.request("https://blocked.test:443/", ["-x", s.proxy])
            #expect(tunnel.status == 0 && tunnel.stderr.contains("403"), "\(tunnel.stderr)")

            // Not named by any rule: the default denies; a port the rule does not name: denied too.
            #expect(try await Curl.request("http://origin.test:\(s.origin.port + 1)/", ["-x", s.proxy]).status == 403)
            let guardText = try await Curl.request("http://10.1.2.3:25/", ["-x", s.proxy])
            #expect(guardText.status == 403)

            // A denied CONNECT is answered and closed: bytes sent after it are never read as a request.
            let client = try RawClient(port: s.ferry.port("egress")!)
            client.send("CONNECT blocked.test:443 HTTP/1.1\r\nHost: blocked.test:443\r\n\r\nGET http://origin.test:\(s.origin.port)/smuggled HTTP/1.1\r\nHost: origin.test\r\n\r\n")
            let (answer, closed) = client.readUntilClose()
            #expect(closed && answer.hasPrefix("HTTP/1.1 403"))
            #expect(answer.components(separatedBy: "HTTP/1.1").count == 2, "one response, then close: \(answer)")
            #expect(s.origin.requestsStarted == 0)

            // SIGHUP to a proxy configured by flags: nothing to reload, and it keeps serving.
            s.ferry.signal(SIGHUP)
            #expect(await Waiting.untilAsync { (try? await Curl.request("http://origin.test:\(s.origin.port)/after-hup", ["-x", s.proxy]))?.status == 200 })

            // Origin-form on the proxy port: 400 with a hint.
            let direct = try await Curl.request("\(s.proxy)/")
            #expect(direct.status == 400 && direct.body.contains("this is a forward proxy"))
            // User information in the target (curl would move it into a header, so this is sent by hand).
            let raw = try RawClient(port: s.ferry.port("egress")!)
            raw.send("GET http://user:pw@origin.test:\(s.origin.port)/ HTTP/1.1\r\nHost: origin.test\r\n\r\n")
            #expect(raw.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 400"))
            let badPort = try RawClient(port: s.ferry.port("egress")!)
            badPort.send("CONNECT secure.test HTTP/1.1\r\nHost: secure.test\r\n\r\n")
            #expect(badPort.readUntilClose().text.hasPrefix("HTTP/1.1 400"))
        }
    }
}
