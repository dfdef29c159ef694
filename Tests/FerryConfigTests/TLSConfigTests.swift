import FerryConfig
import FerryModel
import Foundation
import Testing

/// Certificates are read and checked where configuration is: names, validity, key match, with the field.
struct CertificateCheckTests {
    @Test func aGoodCertificateGivesItsNames() throws {
        let made = try SelfSignedCertificate(commonName: "shop", dnsNames: ["Shop.example.com", "*.shop.example.com"])
        let summary = try CertificateCheck.check(chainPEM: made.certificatePEM, keyPEM: made.keyPEM).get()
        #expect(summary.dnsNames == ["shop.example.com", "*.shop.example.com"])
        #expect(summary.commonName == "shop")
        #expect(summary.serverNames == ["shop.example.com", "*.shop.example.com"])
    }

    @Test func withoutAlternativeNamesTheCommonNameServes() throws {
        let made = try SelfSignedCertificate(commonName: "legacy.example.com")
        let summary = try CertificateCheck.check(chainPEM: made.certificatePEM, keyPEM: made.keyPEM).get()
        #expect(summary.serverNames == ["legacy.example.com"])
    }

    @Test func aKeyOfAnotherCertificateIsRefused() throws {
        let a = try SelfSignedCertificate(commonName: "a", dnsNames: ["a.test"])
        let b = try SelfSignedCertificate(commonName: "b", dnsNames: ["b.test"])
        let problem = try #require(failure(CertificateCheck.check(chainPEM: a.certificatePEM, keyPEM: b.keyPEM)))
        #expect(problem.description == "the private key does not belong to the certificate (CN=a): their public keys differ")
    }

    @Test func anExpiredCertificateIsRefused() throws {
        let old = try SelfSignedCertificate(commonName: "old", dnsNames: ["old.test"],
            notValidBefore: Date(timeIntervalSince1970: 1_600_000_000), notValidAfter: Date(timeIntervalSince1970: 1_700_000_000))
        let problem = try #require(failure(CertificateCheck.check(chainPEM: old.certificatePEM, keyPEM: old.keyPEM)))
        #expect(problem.description == "the certificate (CN=old) expired on 2023-11-14")
    }

    @Test func aCertificateNotYetValidIsRefused() throws {
        let early = try SelfSignedCertificate(commonName: "early", notValidBefore: Date().addingTimeInterval(86400 * 3))
        let problem = try #require(failure(CertificateCheck.check(chainPEM: early.certificatePEM, keyPEM: early.keyPEM)))
        #expect(problem.description.hasPrefix("the certificate (CN=early) is not valid before "))
    }

    @Test func textThatIsNoCertificateIsRefused() throws {
        let made = try SelfSignedCertificate(commonName: "a")
        #expect(failure(CertificateCheck.check(chainPEM: "hello", keyPEM: made.keyPEM))?.description == "no PEM certificate (-----BEGIN CERTIFICATE-----) found")
        #expect(failure(CertificateCheck.check(chainPEM: made.certificatePEM, keyPEM: "nope"))?.description.hasPrefix("the private key cannot be read") == true)
        #expect(CertificateCheck.checkBundle(made.keyPEM) != nil)
        #expect(CertificateCheck.checkBundle(made.certificatePEM) == nil)
    }

    func failure(_ result: Result<CertificateCheck.Summary, CertificateCheck.Problem>) -> CertificateCheck.Problem? {
        if case .failure(let problem) = result { return problem }
        return nil
    }
}

/// `tls:` on a listener in YAML: the default certificate, SNI certificates, profile, client verification.
struct TLSConfigDecodingTests {
    /// Writes certificates into a temporary folder and returns it.
    static func folder(_ certificates: [String: SelfSignedCertificate]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-tlsconfig-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, made) in certificates {
            try made.certificatePEM.write(toFile: "\(dir)/\(name).pem", atomically: true, encoding: .utf8)
            try made.keyPEM.write(toFile: "\(dir)/\(name).key", atomically: true, encoding: .utf8)
        }
        return dir
    }

    static func yaml(_ tls: String) -> String {
        """
        listeners:
          - name: web
            address: 127.0.0.1:8443
            tls:
        \(tls.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            http:
              virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, direct_response: {status: 200, body: ok}}]}]
        clusters: []
        """
    }

    @Test func sniCertificatesTakeTheirNamesFromTheCertificate() throws {
        let dir = try Self.folder([
            "default": try SelfSignedCertificate(commonName: "default"),
            "shop": try SelfSignedCertificate(commonName: "shop", dnsNames: ["shop.example.com", "*.shop.example.com"]),
            "blog": try SelfSignedCertificate(commonName: "blog", dnsNames: ["blog.example.com"]),
            "ca": try SelfSignedCertificate(commonName: "clients", isCA: true),
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try ConfigLoader.decode(yaml: Self.yaml("""
        certificate_file: default.pem
        key_file: default.key
        profile: intermediate
        certificates:
          - {certificate_file: shop.pem, key_file: shop.key}
          - {certificate_file: blog.pem, key_file: blog.key, server_names: [Blog.Example.com, www.blog.example.com], client_ca_file: ca.pem, verify_client: optional}
        """), file: "\(dir)/ferry.yaml")
        let tls = try #require(config.listeners[0].tls)
        #expect(tls.profile == .intermediate)
        #expect(tls.defaultCertificate.chain == .file("\(dir)/default.pem"))
        #expect(tls.defaultCertificate.serverNames.isEmpty)
        #expect(tls.certificates.map(\.serverNames) == [["shop.example.com", "*.shop.example.com"], ["blog.example.com", "www.blog.example.com"]])
        #expect(tls.certificates[0].clientVerification == nil)
        #expect(tls.certificates[1].clientVerification == ClientVerification(ca: .file("\(dir)/ca.pem"), mode: .optional))
        #expect(tls.files.count == 7)
    }

    @Test func listenerWideClientVerificationAppliesToCertificatesWithoutTheirOwn() throws {
        let dir = try Self.folder([
            "default": try SelfSignedCertificate(commonName: "default"),
            "shop": try SelfSignedCertificate(commonName: "shop", dnsNames: ["shop.example.com"]),
            "ca": try SelfSignedCertificate(commonName: "clients", isCA: true),
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try ConfigLoader.decode(yaml: Self.yaml("""
        {certificate_file: default.pem, key_file: default.key, client_ca_file: ca.pem, require_client_certificate: true,
         certificates: [{certificate_file: shop.pem, key_file: shop.key}]}
        """), file: "\(dir)/ferry.yaml")
        let tls = try #require(config.listeners[0].tls)
        let expected = ClientVerification(ca: .file("\(dir)/ca.pem"), mode: .required)
        #expect(tls.defaultCertificate.clientVerification == expected)
        #expect(tls.certificates[0].clientVerification == expected)
        #expect(tls.verifiesClients)
    }

    @Test func badCertificatesAreRefusedWithTheirField() throws {
        let dir = try Self.folder([
            "default": try SelfSignedCertificate(commonName: "default"),
            "old": try SelfSignedCertificate(commonName: "old", dnsNames: ["old.test"],
                notValidBefore: Date(timeIntervalSince1970: 1_600_000_000), notValidAfter: Date(timeIntervalSince1970: 1_700_000_000)),
            "other": try SelfSignedCertificate(commonName: "other", dnsNames: ["other.test"]),
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let messages: [String]
        do {
            _ = try ConfigLoader.decode(yaml: Self.yaml("""
            certificate_file: default.pem
            key_file: other.key
            profile: fast
            certificates:
              - {certificate_file: old.pem, key_file: old.key}
              - {certificate_file: other.pem, key_file: other.key, server_names: ["a.*.test"]}
              - {certificate_file: other.pem, key_file: other.key, verify_client: on}
              - {certificate_file: missing.pem, key_file: other.key}
            """), file: "\(dir)/ferry.yaml")
            Issue.record("expected the configuration to be refused")
            return
        } catch let error as ConfigError {
            messages = error.diagnostics.map(\.description)
        }
        #expect(messages.contains { $0.contains("listeners[0].tls.key_file: the private key does not belong to the certificate (CN=default): their public keys differ (default.pem, other.key)") })
        #expect(messages.contains { $0.contains("listeners[0].tls.profile: unknown profile \"fast\"; expected one of: modern, intermediate, tls13") })
        #expect(messages.contains { $0.contains("listeners[0].tls.certificates[0].certificate_file: the certificate (CN=old) expired on 2023-11-14 (old.pem, old.key)") })
        #expect(messages.contains { $0.contains("listeners[0].tls.certificates[1].server_names[0]: \"a.*.test\" may hold only letters") })
        #expect(messages.contains { $0.contains("listeners[0].tls.certificates[2].verify_client: verify_client needs client_ca_file") })
        #expect(messages.contains { $0.contains("listeners[0].tls.certificates[3].certificate_file: cannot read missing.pem") })
    }

    @Test func aNameServedTwiceIsRefused() throws {
        let dir = try Self.folder([
            "default": try SelfSignedCertificate(commonName: "default"),
            "a": try SelfSignedCertificate(commonName: "a", dnsNames: ["shop.example.com"]),
            "b": try SelfSignedCertificate(commonName: "b", dnsNames: ["shop.example.com"]),
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: ConfigError.self) {
            try ConfigLoader.decode(yaml: Self.yaml("""
            {certificate_file: default.pem, key_file: default.key, certificates: [{certificate_file: a.pem, key_file: a.key}, {certificate_file: b.pem, key_file: b.key}]}
            """), file: "\(dir)/ferry.yaml")
        }
    }

    @Test func passthroughNamesAndTheirClusterAreChecked() throws {
        let dir = try Self.folder([
            "default": try SelfSignedCertificate(commonName: "default"),
            "shop": try SelfSignedCertificate(commonName: "shop", dnsNames: ["shop.example.com"]),
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try ConfigLoader.decode(yaml: Self.yaml("""
        {certificate_file: default.pem, key_file: default.key, passthrough: [{server_names: [DB.example.com, "*.db.example.com"], cluster: db}]}
        """).replacingOccurrences(of: "clusters: []", with: "clusters: [{name: db, endpoints: [\"127.0.0.1:5432\"]}]"), file: "\(dir)/ferry.yaml")
        #expect(good.listeners[0].tls?.passthrough == [TLSPassthrough(serverNames: ["db.example.com", "*.db.example.com"], cluster: "db")])
        let messages: [String]
        do {
            _ = try ConfigLoader.decode(yaml: Self.yaml("""
            {certificate_file: default.pem, key_file: default.key, certificates: [{certificate_file: shop.pem, key_file: shop.key}],
             passthrough: [{server_names: [shop.example.com], cluster: dbx}]}
            """), file: "\(dir)/ferry.yaml")
            Issue.record("expected a refusal"); return
        } catch let error as ConfigError {
            messages = error.diagnostics.map(\.description)
        }
        #expect(messages.contains { $0.contains("tls.passthrough[0].server_names[0]: server name \"shop.example.com\" is already served by certificates[0]") })
        #expect(messages.contains { $0.contains("listeners[0].tls.passthrough[0].cluster: unknown cluster \"dbx\"") })
    }

    @Test func clientCertificateHeadersAreARouteChoice() throws {
        func yaml(_ value: String) -> String {
            """
            listeners:
              - name: web
                address: "127.0.0.1:0"
                http:
                  virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, forward: {cluster: app}, client_certificate_headers: \(value)}]}]
            clusters: [{name: app, endpoints: ["127.0.0.1:9000"]}]
            """
        }
        let good = try ConfigLoader.decode(yaml: yaml("certificate"), file: "ferry.yaml")
        #expect(good.listeners[0].http.virtualHosts[0].routes[0].clientCertificateHeaders == .certificate)
        do {
            _ = try ConfigLoader.decode(yaml: yaml("all"), file: "ferry.yaml")
            Issue.record("expected a refusal")
        } catch let error as ConfigError {
            #expect(error.diagnostics.map(\.description).contains { $0.contains("client_certificate_headers: unknown value \"all\"; expected one of: none, details, certificate") })
        }
    }
}
