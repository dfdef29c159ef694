import FerryConfig
import FerryTestSupport
import Foundation
import Testing

/// `ferry ingress` with `spec.tls`: HTTPS with the Secret's certificate chosen by SNI, the generated default
/// certificate for other names, plain HTTP redirected with 308, HSTS, a renewed Secret taking over, and a
/// broken Secret falling back to the default certificate without refusing anything.
@Suite(.serialized)
struct IngressTLSProcessTests {
    static func secret(_ made: SelfSignedCertificate, name: String = "shop-tls") -> String {
        """
        apiVersion: v1
        kind: Secret
        metadata: {name: \(name), namespace: shop}
        type: kubernetes.io/tls
        data:
          tls.crt: \(Data(made.certificatePEM.utf8).base64EncodedString())
          tls.key: \(Data(made.keyPEM.utf8).base64EncodedString())
        """
    }

    /// The shop Ingress: shop.test with the `shop-tls` certificate, plain.test without; `annotations` as YAML.
    static func ingress(annotations: String = "{}") -> String {
        """
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: shop, namespace: shop, creationTimestamp: "2024-01-01T00:00:00Z", annotations: \(annotations)}
    spec:
      ingressClassName: ferry
      tls: [{hosts: [shop.test], secretName: shop-tls}]
      rules:
        - host: shop.test
          http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
        - host: plain.test
          http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
    """
    }

    @Test(.requires("curl", "python3")) func httpsBySecretRedirectsHSTSRenewalAndFallback() async throws {
        guard Prerequisites.have("curl", "python3"), let binary = Prerequisites.ferryBinary() else { return }
        let origins = try IngressProcessTests.Origins()
        defer { origins.close() }
        let dir = try TLSFixtures.folder("ingress-tls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ca = try SelfSignedCertificate(commonName: "Ferry Test CA", isCA: true)
        try ca.certificatePEM.write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/manifests", withIntermediateDirectories: true)
        try IngressProcessTests.services(origins).write(toFile: dir + "/manifests/services.yaml", atomically: true, encoding: .utf8)
        try Self.ingress().write(toFile: dir + "/manifests/ingress.yaml", atomically: true, encoding: .utf8)
        let shop = try SelfSignedCertificate(commonName: "shop", dnsNames: ["shop.test"], issuer: ca)
        try Self.secret(shop).write(toFile: dir + "/manifests/secret.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: [
            "ingress", "--manifests", dir + "/manifests", "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1"])
        defer { Task { await ferry.stop() } }
        let https = try #require(ferry.port("ingress-https"))

        // HTTPS with the Secret's certificate, verified by curl against the CA and the name; HSTS on it.
        let secure = try await Curl.request("https://shop.test:\(https)/products/1", ["--cacert", dir + "/ca.pem", "--resolve", "shop.test:\(https):127.0.0.1"])
        #expect(secure.status == 200 && secure.header("x-origin")?.hasPrefix("web") == true, "\(secure.status) \(secure.stderr)")
        #expect(secure.header("strict-transport-security") == "max-age=31536000; includeSubDomains")
        // plain.test has no certificate: the generated one serves it, without HSTS.
        let other = try await Curl.request("https://plain.test:\(https)/", ["-k", "--resolve", "plain.test:\(https):127.0.0.1"])
        #expect(other.status == 200 && other.header("strict-transport-security") == nil, "\(other.status) \(other.stderr)")
        var presented = try await DownstreamTLSTests.handshakes(port: https, dir: dir, names: ["shop.test", "plain.test", "-"], trustDefault: true)
        #expect(presented.map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
            == ["shop.test shop", "plain.test Kubernetes", "- Kubernetes"], "\(presented)")

        // Plain HTTP: shop.test redirects (308, no port, no trailing slash); plain.test is served.
        let redirected = try await Curl.request(ferry.url("/cart/?", listener: "ingress-http").replacingOccurrences(of: "?", with: ""), ["-H", "Host: shop.test:8080", "-X", "POST"])
        #expect(redirected.status == 308 && redirected.header("location") == "https://shop.test/cart", "\(redirected.status) \(redirected.headers)")
        let plain = try await Curl.request(ferry.url("/", listener: "ingress-http"), ["-H", "Host: plain.test"])
        #expect(plain.status == 200)

        // The Secret renewed: new connections get the new certificate.
        let renewed = try SelfSignedCertificate(commonName: "shop-renewed", dnsNames: ["shop.test"], issuer: ca)
        try Self.secret(renewed).write(toFile: dir + "/manifests/secret.yaml", atomically: true, encoding: .utf8)
        #expect(await Waiting.until { ferry.appliedReloads >= 1 })
        presented = try await DownstreamTLSTests.handshakes(port: https, dir: dir, names: ["shop.test"])
        #expect(presented.first?.hasPrefix("shop.test shop-renewed ") == true, "\(presented)")

        // A Secret whose key is not its certificate's: shop.test falls back to the default certificate, with
        // a note; the configuration is not refused and routing goes on.
        let stranger = try SelfSignedCertificate(commonName: "stranger", dnsNames: ["shop.test"], issuer: ca)
        var broken = renewed
        broken.keyPEM = stranger.keyPEM
        try Self.secret(broken).write(toFile: dir + "/manifests/secret.yaml", atomically: true, encoding: .utf8)
        #expect(await Waiting.until { ferry.appliedReloads >= 2 })
        #expect(ferry.stderr.contains("Ingress shop/shop: Secret shop/shop-tls: the private key does not belong to the certificate (CN=shop-renewed)"), "\(ferry.stderr)")
        presented = try await DownstreamTLSTests.handshakes(port: https, dir: dir, names: ["shop.test"], trustDefault: true)
        #expect(presented.first?.hasPrefix("shop.test Kubernetes") == true, "\(presented)")
        let stillRouted = try await Curl.request("https://shop.test:\(https)/", ["-k", "--resolve", "shop.test:\(https):127.0.0.1"])
        #expect(stillRouted.status == 200)
    }

    @Test(.requires("python3")) func clientCertificatesPerHostFromAuthTLSSecret() async throws {
        guard Prerequisites.have("python3"), let binary = Prerequisites.ferryBinary() else { return }
        let origins = try IngressProcessTests.Origins()
        defer { origins.close() }
        let dir = try TLSFixtures.folder("ingress-mtls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ca = try SelfSignedCertificate(commonName: "Ferry Test CA", isCA: true)
        try ca.certificatePEM.write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)
        let client = try SelfSignedCertificate(commonName: "partner-1", issuer: ca)
        try client.certificatePEM.write(toFile: dir + "/client.pem", atomically: true, encoding: .utf8)
        try client.keyPEM.write(toFile: dir + "/client.key", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/manifests", withIntermediateDirectories: true)
        try IngressProcessTests.services(origins).write(toFile: dir + "/manifests/services.yaml", atomically: true, encoding: .utf8)
        let shop = try SelfSignedCertificate(commonName: "shop", dnsNames: ["shop.test"], issuer: ca)
        try (Self.secret(shop) + """

        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: partners-ca, namespace: shop}
        data: {ca.crt: \(Data(ca.certificatePEM.utf8).base64EncodedString())}
        ---

        """ + Self.ingress(annotations: "{nginx.ingress.kubernetes.io/auth-tls-secret: shop/partners-ca}")).write(toFile: dir + "/manifests/all.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: [
            "ingress", "--manifests", dir + "/manifests", "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1"])
        defer { Task { await ferry.stop() } }
        let https = try #require(ferry.port("ingress-https"))
        let with = try await DownstreamTLSTests.handshakes(port: https, dir: dir, names: ["shop.test"], clientCertificate: "client")
        #expect(with.first?.hasSuffix(" 200") == true, "\(with)")
        let without = try await DownstreamTLSTests.handshakes(port: https, dir: dir, names: ["shop.test", "plain.test"], trustDefault: true)
        #expect(without.first?.contains("error") == true || without.first?.hasSuffix(" none") == true, "\(without)")
        #expect(without.last?.hasSuffix(" 200") == true, "a host without auth-tls asks for nothing: \(without)")
    }

    @Test(.requires("python3", "curl", "openssl")) func sslPassthroughReachesTheOriginsOwnTLS() async throws {
        guard Prerequisites.have("python3", "curl", "openssl"), let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("ingress-passthrough")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (originCert, originKey) = try await TLSFixtures.certificate(in: dir, name: "secure.test")
        let (origin, originPort) = try await TLSFixtures.startOrigin(in: dir, cert: originCert, key: originKey)
        defer { origin.signal(SIGKILL) }
        try FileManager.default.createDirectory(atPath: dir + "/manifests", withIntermediateDirectories: true)
        try """
        apiVersion: v1
        kind: Service
        metadata: {name: secure, namespace: shop}
        spec: {ports: [{name: https, port: 443}]}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: secure-1, namespace: shop, labels: {kubernetes.io/service-name: secure}}
        addressType: IPv4
        ports: [{name: https, port: \(originPort)}]
        endpoints: [{addresses: ["127.0.0.3"], conditions: {ready: true}}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: secure
          namespace: shop
          annotations: {nginx.ingress.kubernetes.io/ssl-passthrough: "true"}
        spec:
          ingressClassName: ferry
          rules:
            - host: secure.test
              http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: secure, port: {number: 443}}}}]}
        """.write(toFile: dir + "/manifests/all.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: [
            "ingress", "--manifests", dir + "/manifests", "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            "--threads", "1", "--enable-ssl-passthrough"])
        defer { Task { await ferry.stop() } }
        let https = try #require(ferry.port("ingress-https"))
        let passed = try await Curl.request("https://secure.test:\(https)/x", ["--cacert", originCert, "--resolve", "secure.test:\(https):127.0.0.1"])
        #expect(passed.status == 200 && passed.body.hasPrefix("secure hello via secure.test"), "\(passed.status) \(passed.body) \(passed.stderr)")
    }
}
