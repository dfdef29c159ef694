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
        // Hosts whose client-certificate check cannot be made: refused over HTTPS, never served without it.
        var refused: [String: String] = [:]
        // Hosts that check client certificates: what their upstreams are told (ingress-nginx's ssl-client-* fields).
        var certificateHeaders: [String: ClientCertificateHeaders] = [:]
        for certificate in translation.certificates {
            let hosts = certificate.hosts.joined(separator: ", ")
            var verification: ClientVerification?
            if let auth = certificate.clientAuthentication {
                switch clientVerification(auth) {
                case .success(let v): verification = v
                case .failure(let problem):
                    let text = "Ingress \(certificate.ingress): auth-tls-secret: \(problem.description); HTTPS requests for \(hosts) are refused (403) until it is fixed"
                    translation.notes.append(text)
                    translation.events.append(IngressEvent(ingress: certificate.ingress, reason: "InvalidClientCA", message: text))
                    for host in certificate.hosts { refused[host] = problem.description }
                }
            }
            guard let secret = certificate.secret else { continue }  // no secretName: the default certificate
            var problem = certificate.problem
            if problem == nil, let chain = certificate.certificatePEM, let key = certificate.keyPEM {
                switch CertificateCheck.check(chainPEM: chain, keyPEM: key, now: now) {
                case .success:
                    certificates.append(ServerCertificate(chain: .inline(chain, origin: "Secret \(secret) tls.crt"), key: .inline(key, origin: "Secret \(secret) tls.key"),
                                                          serverNames: certificate.hosts, clientVerification: verification))
                    served.formUnion(certificate.hosts)
                    if verification != nil, let auth = certificate.clientAuthentication {
                        for host in certificate.hosts { certificateHeaders[host] = auth.passCertificate ? .certificate : .details }
                    }
                case .failure(let failure):
                    problem = "Secret \(secret): \(failure)"
                }
            }
            if let problem {
                let text = "Ingress \(certificate.ingress): \(problem); the default certificate serves \(hosts)"
                translation.notes.append(text)
                translation.events.append(IngressEvent(ingress: certificate.ingress, reason: "InvalidCertificate", message: text))
                if certificate.clientAuthentication != nil {
                    for host in certificate.hosts { refused[host] = "its certificate cannot serve, so client certificates cannot be asked for" }
                }
            }
        }
        if !refused.isEmpty || !certificateHeaders.isEmpty {
            translation.virtualHosts = translation.virtualHosts.map { vhost in
                var vhost = vhost
                if let reason = refused[vhost.name.lowercased()] {
                    for index in vhost.routes.indices {
                        vhost.routes[index].action = .directResponse(status: 403, body: "Forbidden: client certificates cannot be checked for this host (\(reason))\n")
                    }
                } else if let headers = certificateHeaders[vhost.name.lowercased()] {
                    for index in vhost.routes.indices { vhost.routes[index].clientCertificateHeaders = headers }
                }
                return vhost
            }
        }
        var tls = DownstreamTLS(defaultCertificate: defaultCertificate, certificates: certificates)
        tls.passthrough = translation.passthrough
        translation.listenerTLS = tls
        let servedNames = ServerNameTable(covering: served)
        if let hsts = settings.options.hsts {
            translation.virtualHosts = translation.virtualHosts.map { vhost in
                guard servedNames.covers(vhost.name) else { return vhost }
                var vhost = vhost
                for index in vhost.routes.indices {
                    vhost.routes[index].responseHeaders.append(ResponseHeader(name: "strict-transport-security", value: hsts.value))
                }
                return vhost
            }
        }
    }

    /// The client-certificate check of `auth-tls-*`, or why it cannot be made.
    static func clientVerification(_ auth: IngressCertificate.ClientAuthentication) -> Result<ClientVerification, CertificateCheck.Problem> {
        if let problem = auth.problem { return .failure(CertificateCheck.Problem(problem)) }
        guard let ca = auth.caPEM else { return .failure(CertificateCheck.Problem("Secret \(auth.secret) has no ca.crt")) }
        if let problem = CertificateCheck.checkBundle(ca) { return .failure(CertificateCheck.Problem("Secret \(auth.secret) ca.crt: \(problem)")) }
        let mode: ClientVerification.Mode = switch auth.mode {
        case "optional": .optional
        case "optional_no_ca": .optionalNoCA
        default: .required
        }
        return .success(ClientVerification(ca: .inline(ca, origin: "Secret \(auth.secret) ca.crt"), mode: mode))
    }
}
