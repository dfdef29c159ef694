import FerryConfig
import FerryKubernetes
import FerryModel
import Foundation

/// The Ingress controller's HTTPS listener: the certificates `spec.tls` names, checked as Ferry's own
/// configuration is (a Secret that is missing, not a TLS Secret, expired, or whose key is not its
/// certificate's leaves its hosts on the default certificate, with a note and a Warning Event on the
/// Ingress — never a refused configuration); the default certificate from `--default-ssl-certificate`, else
/// one made at start.
extension IngressRole {
    /// ingress-nginx's name for its generated certificate, kept so that checks written for it still match.
    public static let fallbackCommonName = "Kubernetes Ingress Controller Fake Certificate"

    /// A self-signed certificate for names no Ingress has a certificate for (made once per process).
    public static func makeFallbackCertificate() -> SelfSignedCertificate? {
        try? SelfSignedCertificate(commonName: fallbackCommonName, dnsNames: ["ingress.local"])
    }

    /// Checks the translation's certificates and sets its `listenerTLS`; problems become notes and Events.
    public static func certify(_ translation: inout IngressTranslation, settings: Settings, now: Date = Date()) {
        guard settings.listenTLS != nil else { return }
        var defaultCertificate: ServerCertificate?
        if let configured = translation.defaultCertificate, let secret = configured.secret {
            if let problem = configured.problem {
                translation.notes.append("--default-ssl-certificate: \(problem); the generated certificate serves instead")
            } else if let chain = configured.certificatePEM, let key = configured.keyPEM {
                switch CertificateCheck.check(chainPEM: chain, keyPEM: key, now: now) {
                case .success:
                    defaultCertificate = ServerCertificate(chain: .inline(chain, origin: "Secret \(secret) tls.crt"), key: .inline(key, origin: "Secret \(secret) tls.key"))
                case .failure(let problem):
                    translation.notes.append("--default-ssl-certificate: Secret \(secret): \(problem); the generated certificate serves instead")
                }
            }
        }
        if defaultCertificate == nil, let fallback = settings.fallbackCertificate {
            defaultCertificate = ServerCertificate(chain: .inline(fallback.certificatePEM, origin: "generated certificate"), key: .inline(fallback.keyPEM, origin: "generated key"))
        }
        guard let defaultCertificate else { return }
        var certificates: [ServerCertificate] = []
        var served: Set<String> = []
        for certificate in translation.certificates {
            guard let secret = certificate.secret else { continue }  // no secretName: the default certificate
            let hosts = certificate.hosts.joined(separator: ", ")
            var problem = certificate.problem
            if problem == nil, let chain = certificate.certificatePEM, let key = certificate.keyPEM {
                switch CertificateCheck.check(chainPEM: chain, keyPEM: key, now: now) {
                case .success:
                    certificates.append(ServerCertificate(chain: .inline(chain, origin: "Secret \(secret) tls.crt"), key: .inline(key, origin: "Secret \(secret) tls.key"), serverNames: certificate.hosts))
                    served.formUnion(certificate.hosts)
                case .failure(let failure):
                    problem = "Secret \(secret): \(failure)"
                }
            }
            if let problem {
                let text = "Ingress \(certificate.ingress): \(problem); the default certificate serves \(hosts)"
                translation.notes.append(text)
                translation.events.append(IngressEvent(ingress: certificate.ingress, reason: "InvalidCertificate", message: text))
            }
        }
        translation.listenerTLS = DownstreamTLS(defaultCertificate: defaultCertificate, certificates: certificates)
        if let hsts = settings.options.hsts {
            translation.virtualHosts = translation.virtualHosts.map { vhost in
                guard served.contains(vhost.name.lowercased()) || wildcardServes(vhost.name, served) else { return vhost }
                var vhost = vhost
                for index in vhost.routes.indices {
                    vhost.routes[index].responseHeaders.append(ResponseHeader(name: "strict-transport-security", value: hsts.value))
                }
                return vhost
            }
        }
    }

    static func wildcardServes(_ host: String, _ served: Set<String>) -> Bool {
        guard let dot = host.firstIndex(of: "."), dot != host.startIndex else { return false }
        return served.contains("*" + host[dot...].lowercased())
    }
}
