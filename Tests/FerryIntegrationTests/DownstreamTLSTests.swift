import FerryConfig
import FerryTestSupport
import Foundation
import Testing

/// TLS that Ferry terminates: the certificate chosen by SNI, client certificates, protocol profiles, and a
/// certificate renewed under load without a failed handshake. Clients are curl and Python's `ssl`.
@Suite(.serialized)
struct DownstreamTLSTests {
    /// A test CA and certificates it signs, written into a fresh folder: `NAME.pem` and `NAME.key`.
    struct Certificates {
        let dir: String
        let ca: SelfSignedCertificate

        init(_ names: [String: [String]]) throws {
            dir = try TLSFixtures.folder("dtls")
            ca = try SelfSignedCertificate(commonName: "Ferry Test CA", isCA: true)
            try ca.certificatePEM.write(toFile: "\(dir)/ca.pem", atomically: true, encoding: .utf8)
            for (name, dnsNames) in names { try write(name, dnsNames: dnsNames) }
        }

        /// (Re)writes `NAME.pem`/`NAME.key` with a fresh key, atomically (a renewal).
        func write(_ name: String, dnsNames: [String], commonName: String? = nil) throws {
            let made = try SelfSignedCertificate(commonName: commonName ?? name, dnsNames: dnsNames, issuer: ca)
            try made.keyPEM.write(toFile: "\(dir)/\(name).key", atomically: true, encoding: .utf8)
            try made.certificatePEM.write(toFile: "\(dir)/\(name).pem", atomically: true, encoding: .utf8)
        }
    }

    /// Python `ssl` handshakes: for each server name (`-` for none) prints the presented certificate's common
    /// name, the protocol and the cipher, or `error: ...`. `rounds` is `N` or `N:CN` (stop early once the
    /// certificate CN was presented 20 times).
    static let handshakeScript = """
    import socket, ssl, sys
    port, ca = int(sys.argv[1]), sys.argv[2]
    rounds, _, until = sys.argv[3].partition(":")
    rounds, seen = int(rounds), 0
    cert = sys.argv[4] if sys.argv[4] != "-" else None
    key = sys.argv[5] if sys.argv[5] != "-" else None
    version = sys.argv[6]
    names = sys.argv[7:]
    # TRUST_DEFAULT=1: also trust the certificate served without SNI (a generated default certificate).
    import os
    trust_default = ssl.get_server_certificate(("127.0.0.1", port)) if os.environ.get("TRUST_DEFAULT") else None
    for _ in range(rounds):
        for name in names:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(ca)
            if trust_default:
                ctx.load_verify_locations(cadata=trust_default)
            ctx.check_hostname = False
            if version == "1.2":
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            elif version.startswith("1.2:"):
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                ctx.set_ciphers(version[4:])
            if cert:
                ctx.load_cert_chain(cert, key)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                    with ctx.wrap_socket(raw, server_hostname=None if name == "-" else name) as s:
                        cn = dict(x[0] for x in s.getpeercert()["subject"]).get("commonName")
                        host = "x" if name == "-" else name
                        s.sendall(("GET / HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n" % host).encode())
                        reply = b""
                        while True:
                            d = s.recv(65536)
                            if not d:
                                break
                            reply += d
                        status = reply.split(b" ")[1].decode() if reply else "none"
                        print(name, cn, s.version(), s.cipher()[0], status, flush=True)
                        seen += cn == until
            except Exception as e:
                print(name, "error:", type(e).__name__, str(e).replace("\\n", " "), flush=True)
        if seen >= 20:
            break
    """

    static func handshakes(port: Int, dir: String, names: [String], rounds: String = "1", clientCertificate: String? = nil, version: String = "any", trustDefault: Bool = false) async throws -> [String] {
        let args = try handshakeArguments(port: port, dir: dir, names: names, rounds: rounds, clientCertificate: clientCertificate, version: version)
        let result = try await Subprocess.run(Prerequisites.path(of: "python3")!, args, environment: trustDefault ? ProcessInfo.processInfo.environment.merging(["TRUST_DEFAULT": "1"]) { $1 } : nil, timeout: .seconds(300))
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// The handshake script, written into `dir`, and its arguments.
    static func handshakeArguments(port: Int, dir: String, names: [String], rounds: String = "1", clientCertificate: String? = nil, version: String = "any") throws -> [String] {
        try handshakeScript.write(toFile: dir + "/handshake.py", atomically: true, encoding: .utf8)
        return [dir + "/handshake.py", "\(port)", dir + "/ca.pem", rounds,
                clientCertificate.map { "\(dir)/\($0).pem" } ?? "-", clientCertificate.map { "\(dir)/\($0).key" } ?? "-", version] + names
    }

    static func config(_ tls: String) -> String {
        """
        admin: {address: "127.0.0.1:0"}
        listeners:
          - name: web
            address: "127.0.0.1:0"
            tls:
        \(tls.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            http:
              virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes: [{match: {prefix: /}, direct_response: {status: 200, body: "ok\\n"}}]
        clusters: []
        """
    }

    @Test(.requires("python3", "curl")) func sniSelectsExactThenWildcardThenDefault() async throws {
        guard Prerequisites.have("python3", "curl"), let binary = Prerequisites.ferryBinary() else { return }
        let certs = try Certificates(["default": ["default.test"], "shop": ["shop.example.com"], "wild": ["*.example.org"], "apex": ["example.org"]])
        defer { try? FileManager.default.removeItem(atPath: certs.dir) }
        try Self.config("""
        certificate_file: default.pem
        key_file: default.key
        certificates:
          - {certificate_file: shop.pem, key_file: shop.key}
          - {certificate_file: wild.pem, key_file: wild.key}
          - {certificate_file: apex.pem, key_file: apex.key}
        """).write(toFile: certs.dir + "/ferry.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", certs.dir + "/ferry.yaml", "--threads", "1"], configPath: certs.dir + "/ferry.yaml")
        defer { Task { await ferry.stop() } }
        let port = try #require(ferry.port("web"))
        let lines = try await Self.handshakes(port: port, dir: certs.dir, names: [
            "shop.example.com", "SHOP.EXAMPLE.COM", "a.example.org", "example.org", "b.a.example.org", "unknown.test", "-",
        ])
        let presented = lines.map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
        #expect(presented == [
            "shop.example.com shop", "SHOP.EXAMPLE.COM shop", "a.example.org wild", "example.org apex",
            "b.a.example.org default", "unknown.test default", "- default",
        ], "\(lines)")
        #expect(lines.allSatisfy { $0.hasSuffix(" 200") }, "\(lines)")
        // curl checks the name against the certificate it is given: only the right one verifies.
        let ok = try await Curl.request("https://shop.example.com:\(port)/", ["--cacert", certs.dir + "/ca.pem", "--resolve", "shop.example.com:\(port):127.0.0.1"])
        #expect(ok.status == 200 && ok.body == "ok\n", "\(ok.status) \(ok.stderr)")
        let wildcard = try await Curl.request("https://www.example.org:\(port)/", ["--cacert", certs.dir + "/ca.pem", "--resolve", "www.example.org:\(port):127.0.0.1"])
        #expect(wildcard.status == 200, "\(wildcard.status) \(wildcard.stderr)")
    }

    @Test(.requires("python3")) func profilesLimitVersionsAndCiphers() async throws {
        guard Prerequisites.have("python3"), let binary = Prerequisites.ferryBinary() else { return }
        let certs = try Certificates(["default": ["default.test"]])
        defer { try? FileManager.default.removeItem(atPath: certs.dir) }
        for (profile, expectations) in [
            ("modern", [("any", "TLSv1.3"), ("1.2", "TLSv1.2"), ("1.2:ECDHE-ECDSA-AES128-SHA", "error")]),
            ("intermediate", [("1.2:ECDHE-ECDSA-AES128-SHA", "TLSv1.2")]),
            ("tls13", [("any", "TLSv1.3"), ("1.2", "error")]),
        ] {
            try Self.config("{certificate_file: default.pem, key_file: default.key, profile: \(profile)}")
                .write(toFile: certs.dir + "/ferry.yaml", atomically: true, encoding: .utf8)
            let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", certs.dir + "/ferry.yaml", "--threads", "1"], configPath: certs.dir + "/ferry.yaml")
            let port = try #require(ferry.port("web"))
            for (version, expected) in expectations {
                let line = try await Self.handshakes(port: port, dir: certs.dir, names: ["-"], version: version).first ?? ""
                #expect(line.split(separator: " ")[expected == "error" ? 1 : 2].hasPrefix(expected), "\(profile) \(version): \(line)")
            }
            await ferry.stop()
        }
    }

    @Test(.requires("python3")) func clientCertificatesPerServerName() async throws {
        guard Prerequisites.have("python3"), let binary = Prerequisites.ferryBinary() else { return }
        let certs = try Certificates(["default": ["default.test"], "partners": ["partners.test"], "client": []])
        defer { try? FileManager.default.removeItem(atPath: certs.dir) }
        // Only partners.test asks for client certificates signed by the test CA.
        try Self.config("""
        certificate_file: default.pem
        key_file: default.key
        certificates:
          - {certificate_file: partners.pem, key_file: partners.key, client_ca_file: ca.pem, verify_client: on}
        """).write(toFile: certs.dir + "/ferry.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", certs.dir + "/ferry.yaml", "--threads", "1"], configPath: certs.dir + "/ferry.yaml")
        defer { Task { await ferry.stop() } }
        let port = try #require(ferry.port("web"))
        let without = try await Self.handshakes(port: port, dir: certs.dir, names: ["partners.test", "default.test"])
        #expect(without[0].contains("error") || without[0].hasSuffix(" none"), "\(without)")
        #expect(without[1].hasSuffix(" 200"), "\(without)")
        let with = try await Self.handshakes(port: port, dir: certs.dir, names: ["partners.test"], clientCertificate: "client")
        #expect(with.first?.hasSuffix(" 200") == true, "\(with)")
    }

    /// ingress-nginx's `ssl-client-*` fields: the upstream learns whether and which certificate the client
    /// presented, and a client cannot send these fields itself.
    @Test(.requires("curl")) func theUpstreamIsToldTheClientCertificate() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        let certs = try Certificates(["partners": ["partners.test"], "client": []])
        defer { try? FileManager.default.removeItem(atPath: certs.dir) }
        let origin = try TestOrigin(name: "origin", group: Fixtures.originGroup)
        defer { try? origin.channel.close().wait() }
        try """
        admin: {address: "127.0.0.1:0"}
        listeners:
          - name: web
            address: "127.0.0.1:0"
            tls: {certificate_file: partners.pem, key_file: partners.key, client_ca_file: ca.pem}
            http:
              virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes:
                    - {match: {prefix: /details}, forward: {cluster: origin}, client_certificate_headers: details}
                    - {match: {prefix: /}, forward: {cluster: origin}, client_certificate_headers: certificate}
        clusters: [{name: origin, endpoints: ["\(origin.address)"]}]
        """.write(toFile: certs.dir + "/ferry.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", certs.dir + "/ferry.yaml", "--threads", "1"], configPath: certs.dir + "/ferry.yaml")
        defer { Task { await ferry.stop() } }
        let port = try #require(ferry.port("web"))
        let base = ["--cacert", certs.dir + "/ca.pem", "--resolve", "partners.test:\(port):127.0.0.1", "-H", "ssl-client-verify: SUCCESS", "-H", "ssl-client-subject-dn: CN=admin"]
        func seen(_ name: String) -> [String] { origin.lastHeaders.filter { $0.0.lowercased() == name }.map(\.1) }

        // With a certificate signed by the CA: SUCCESS, its names, and the certificate itself.
        let with = try await Curl.request("https://partners.test:\(port)/", base + ["--cert", certs.dir + "/client.pem", "--key", certs.dir + "/client.key"])
        #expect(with.status == 200, "\(with.body)")
        #expect(seen("ssl-client-verify") == ["SUCCESS"])
        #expect(seen("ssl-client-subject-dn") == ["CN=client"])
        #expect(seen("ssl-client-issuer-dn") == ["CN=Ferry Test CA"])
        let sent = try #require(seen("ssl-client-cert").first)
        #expect(!sent.contains("\n") && !sent.contains("+") && sent.hasPrefix("-----BEGIN%20CERTIFICATE-----%0A"))
        let pem = try #require(sent.removingPercentEncoding)
        let written = try String(contentsOfFile: certs.dir + "/client.pem", encoding: .utf8)
        #expect(pem.trimmingCharacters(in: .whitespacesAndNewlines) == written.trimmingCharacters(in: .whitespacesAndNewlines))

        // `details` leaves the certificate out.
        _ = try await Curl.request("https://partners.test:\(port)/details", base + ["--cert", certs.dir + "/client.pem", "--key", certs.dir + "/client.key"])
        #expect(seen("ssl-client-verify") == ["SUCCESS"])
        #expect(seen("ssl-client-cert").isEmpty)

        // Without a certificate (verification is optional): NONE, whatever the client claims.
        let without = try await Curl.request("https://partners.test:\(port)/", base)
        #expect(without.status == 200, "\(without.body)")
        #expect(seen("ssl-client-verify") == ["NONE"])
        #expect(seen("ssl-client-subject-dn").isEmpty)
        #expect(seen("ssl-client-cert").isEmpty)
    }

    @Test(.requires("python3")) func aRenewedCertificateServesNewConnectionsWithoutAFailedHandshake() async throws {
        guard Prerequisites.have("python3"), let binary = Prerequisites.ferryBinary() else { return }
        let certs = try Certificates(["default": ["default.test"], "shop": ["shop.example.com"]])
        defer { try? FileManager.default.removeItem(atPath: certs.dir) }
        try Self.config("""
        {certificate_file: default.pem, key_file: default.key, certificates: [{certificate_file: shop.pem, key_file: shop.key}]}
        """).write(toFile: certs.dir + "/ferry.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", certs.dir + "/ferry.yaml", "--threads", "1"], configPath: certs.dir + "/ferry.yaml")
        defer { Task { await ferry.stop() } }
        let port = try #require(ferry.port("web"))
        // Handshakes run while the certificate is renewed (a new key and common name, the same names).
        let load = try Subprocess(Prerequisites.path(of: "python3")!,
                                  try Self.handshakeArguments(port: port, dir: certs.dir, names: ["shop.example.com"], rounds: "3000:shop-renewed"))
        defer { load.signal(SIGKILL) }
        // Renewed once handshakes with the first certificate are under way.
        #expect(await Waiting.until { load.stdout.split(separator: "\n").count >= 20 }, "no handshakes: \(load.stderr)")
        try certs.write("shop", dnsNames: ["shop.example.com"], commonName: "shop-renewed")
        #expect(await Waiting.until { ferry.appliedReloads >= 1 }, "the renewal was not noticed")
        #expect(await load.waitForExit(timeout: .seconds(300)) == 0, "\(load.stderr)")
        let lines = load.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count < 3000, "the renewal did not reach new connections")
        #expect(!lines.contains { $0.contains("error") }, "\(lines.filter { $0.contains("error") })")
        // Both certificates served during the run: the renewal happened under load.
        #expect(lines.contains { $0.hasPrefix("shop.example.com shop ") } && lines.contains { $0.hasPrefix("shop.example.com shop-renewed ") })
        let after = try await Self.handshakes(port: port, dir: certs.dir, names: ["shop.example.com"])
        #expect(after.first?.hasPrefix("shop.example.com shop-renewed ") == true, "\(after)")
        #expect(ferry.appliedReloads == 1)
    }

    @Test(.requires("python3", "curl", "openssl")) func passthroughRelaysTheTLSStreamUntouched() async throws {
        guard Prerequisites.have("python3", "curl", "openssl"), let binary = Prerequisites.ferryBinary() else { return }
        let certs = try Certificates(["default": ["default.test"]])
        defer { try? FileManager.default.removeItem(atPath: certs.dir) }
        // The origin's own certificate and key: Ferry never sees the key.
        let originDir = certs.dir + "/origin"
        try FileManager.default.createDirectory(atPath: originDir, withIntermediateDirectories: true)
        let (originCert, originKey) = try await TLSFixtures.certificate(in: originDir, name: "secure.test")
        let (origin, originPort) = try await TLSFixtures.startOrigin(in: originDir, cert: originCert, key: originKey)
        defer { origin.signal(SIGKILL) }
        try """
        admin: {address: "127.0.0.1:0"}
        listeners:
          - name: web
            address: "127.0.0.1:0"
            tls:
              certificate_file: default.pem
              key_file: default.key
              passthrough: [{server_names: [secure.test], cluster: secure}]
            http:
              virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, direct_response: {status: 200, body: "terminated\\n"}}]}]
        clusters:
          - {name: secure, endpoints: ["127.0.0.3:\(originPort)"]}
        """.write(toFile: certs.dir + "/ferry.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", certs.dir + "/ferry.yaml", "--threads", "1"], configPath: certs.dir + "/ferry.yaml")
        defer { Task { await ferry.stop() } }
        let port = try #require(ferry.port("web"))
        // secure.test: the origin's certificate verifies end to end and the origin answers.
        let passed = try await Curl.request("https://secure.test:\(port)/x", ["--cacert", originCert, "--resolve", "secure.test:\(port):127.0.0.1"])
        #expect(passed.status == 200 && passed.body.hasPrefix("secure hello via secure.test"), "\(passed.status) \(passed.body) \(passed.stderr)")
        // Other names are terminated by Ferry.
        let terminated = try await Curl.request("https://default.test:\(port)/", ["--cacert", certs.dir + "/ca.pem", "--resolve", "default.test:\(port):127.0.0.1"])
        #expect(terminated.status == 200 && terminated.body == "terminated\n", "\(terminated.status) \(terminated.stderr)")
    }
}
