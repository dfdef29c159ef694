import FerryConfig
import FerryKubernetes
import FerryModel
import FerryRoles
import Foundation
import Testing

/// The Ingress controller's certificate checks: a usable Secret serves its hosts by SNI and gets HSTS, an
/// unusable one leaves them on the default certificate with a note and a Warning Event.
struct IngressCertifyTests {
    static func translation(secrets: [String: SelfSignedCertificate], options: IngressOptions = IngressOptions()) -> IngressTranslation {
        var set = ManifestSet()
        for (host, secret) in [("good.test", "good"), ("bad.test", "bad"), ("gone.test", "gone")] {
            var ingress = Ingress(metadata: ObjectMeta(name: secret, namespace: "web", creationTimestamp: "2024-01-01T00:00:00Z"), ingressClassName: "ferry",
                                  rules: [IngressRule(host: host, paths: [HTTPIngressPath(path: "/", pathType: .prefix, backend: .service(ServiceBackend(name: "web", port: .number(80))))])])
            ingress.tls = [IngressTLS(hosts: [host], secretName: secret)]
            set.ingresses.append(ingress)
        }
        for (name, made) in secrets {
            set.secrets.append(Secret(metadata: ObjectMeta(name: name, namespace: "web"), type: "kubernetes.io/tls", keys: ["tls.crt", "tls.key"],
                                      tlsValues: ["tls.crt": made.certificatePEM, "tls.key": made.keyPEM]))
        }
        set.services.append(Service(metadata: ObjectMeta(name: "web", namespace: "web"), ports: [ServicePort(name: "http", port: 80)]))
        var settings = IngressRole.Settings(manifests: [], listenTLS: HostPort(host: "127.0.0.1", port: 0))
        settings.options = options
        return IngressRole.translate(set, settings: settings)
    }

    @Test func goodSecretsServeBadOnesFallBackWithAnEvent() throws {
        let good = try SelfSignedCertificate(commonName: "good", dnsNames: ["good.test"])
        let expired = try SelfSignedCertificate(commonName: "bad", dnsNames: ["bad.test"],
            notValidBefore: Date(timeIntervalSince1970: 1_600_000_000), notValidAfter: Date(timeIntervalSince1970: 1_700_000_000))
        let t = Self.translation(secrets: ["good": good, "bad": expired])
        let tls = try #require(t.listenerTLS)
        #expect(tls.certificates.map(\.serverNames) == [["good.test"]])
        #expect(tls.certificates[0].chain == .inline(good.certificatePEM, origin: "Secret web/good tls.crt"))
        guard case .inline(let fallback, let origin) = tls.defaultCertificate.chain else { Issue.record("expected the generated certificate"); return }
        #expect(origin == "generated certificate")
        #expect(try CertificateCheck.check(chainPEM: fallback, keyPEM: { if case .inline(let k, _) = tls.defaultCertificate.key { return k }; return "" }()).get().commonName
            == IngressRole.fallbackCommonName)
        #expect(t.events.contains(IngressEvent(ingress: "web/bad", reason: "InvalidCertificate",
            message: "Ingress web/bad: Secret web/bad: the certificate (CN=bad) expired on 2023-11-14; the default certificate serves bad.test")))
        #expect(t.events.contains { $0.ingress == "web/gone" && $0.message.contains("Secret web/gone not found") })
        // HSTS only where a valid certificate serves the host.
        func hsts(_ host: String) -> [ResponseHeader] { t.virtualHosts.first { $0.name == host }?.routes.first?.responseHeaders ?? [] }
        #expect(hsts("good.test") == [ResponseHeader(name: "Strict-Transport-Security", value: "max-age=31536000; includeSubDomains")])
        #expect(hsts("bad.test").isEmpty && hsts("gone.test").isEmpty)
    }

    @Test func hstsFollowsItsOptions() throws {
        var options = IngressOptions()
        options.hsts = IngressOptions.HSTS(maxAge: 600, includeSubdomains: false, preload: true)
        let t = Self.translation(secrets: ["good": try SelfSignedCertificate(commonName: "good", dnsNames: ["good.test"])], options: options)
        #expect(t.virtualHosts.first { $0.name == "good.test" }?.routes.first?.responseHeaders.first?.value == "max-age=600; preload")
        options.hsts = nil
        let none = Self.translation(secrets: ["good": try SelfSignedCertificate(commonName: "good", dnsNames: ["good.test"])], options: options)
        #expect(none.virtualHosts.first { $0.name == "good.test" }?.routes.first?.responseHeaders.isEmpty == true)
    }

    @Test func aMissingClientCAFailsClosed() throws {
        var set = ManifestSet()
        var ingress = Ingress(metadata: ObjectMeta(name: "partners", namespace: "web", annotations: ["nginx.ingress.kubernetes.io/auth-tls-secret": "web/partners-ca"],
                                                   creationTimestamp: "2024-01-01T00:00:00Z"), ingressClassName: "ferry",
                              rules: [IngressRule(host: "partners.test", paths: [HTTPIngressPath(path: "/", pathType: .prefix, backend: .service(ServiceBackend(name: "web", port: .number(80))))])])
        ingress.tls = [IngressTLS(hosts: ["partners.test"], secretName: "partners")]
        set.ingresses.append(ingress)
        let made = try SelfSignedCertificate(commonName: "partners", dnsNames: ["partners.test"])
        set.secrets.append(Secret(metadata: ObjectMeta(name: "partners", namespace: "web"), type: "kubernetes.io/tls", keys: ["tls.crt", "tls.key"],
                                  tlsValues: ["tls.crt": made.certificatePEM, "tls.key": made.keyPEM]))
        set.services.append(Service(metadata: ObjectMeta(name: "web", namespace: "web"), ports: [ServicePort(name: "http", port: 80)]))
        let settings = IngressRole.Settings(manifests: [], listenTLS: HostPort(host: "127.0.0.1", port: 0))
        let t = IngressRole.translate(set, settings: settings)
        guard case .directResponse(let status, _)? = t.virtualHosts.first(where: { $0.name == "partners.test" })?.routes.first?.action else {
            Issue.record("expected the host's HTTPS routes to refuse"); return
        }
        #expect(status == 403)
        #expect(t.events.contains { $0.reason == "InvalidClientCA" && $0.message.contains("Secret web/partners-ca not found") })
        // With the CA present, the host's certificate asks for client certificates.
        let ca = try SelfSignedCertificate(commonName: "partners CA", isCA: true)
        set.secrets.append(Secret(metadata: ObjectMeta(name: "partners-ca", namespace: "web"), type: "Opaque", keys: ["ca.crt"], tlsValues: ["ca.crt": ca.certificatePEM]))
        let fixed = IngressRole.translate(set, settings: settings)
        #expect(fixed.listenerTLS?.certificates.first?.clientVerification == ClientVerification(ca: .inline(ca.certificatePEM, origin: "Secret web/partners-ca ca.crt"), mode: .required))
        guard case .forward? = fixed.virtualHosts.first(where: { $0.name == "partners.test" })?.routes.first?.action else {
            Issue.record("expected forwarding once the CA is there"); return
        }
        // Its upstream is told about the client certificate (ssl-client-*), the certificate itself only on request.
        #expect(fixed.virtualHosts.first(where: { $0.name == "partners.test" })?.routes.allSatisfy { $0.clientCertificateHeaders == .details } == true)
        set.ingresses[0].metadata.annotations["nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream"] = "true"
        let passing = IngressRole.translate(set, settings: settings)
        #expect(passing.virtualHosts.first(where: { $0.name == "partners.test" })?.routes.allSatisfy { $0.clientCertificateHeaders == .certificate } == true)
    }
}
