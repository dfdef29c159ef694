import FerryModel

/// One certificate an Ingress asks for: its `spec.tls[]` entry's hosts and Secret, with the Secret's PEM text
/// when it could be read (the role checks the certificate itself and falls back to the default one).
public struct IngressCertificate: Sendable, Hashable {
    /// `namespace/name` of the Ingress.
    public var ingress: String
    /// Nil: the entry names no Secret, and its hosts get the default certificate.
    public var secret: SecretReference?
    /// Lower-cased; hosts an older Ingress already has a certificate for are left out.
    public var hosts: [String]
    public var certificatePEM: String?
    public var keyPEM: String?
    /// Why the Secret cannot serve (missing, not TLS, no `tls.crt`/`tls.key`).
    public var problem: String?
    /// Client certificates the hosts ask for (`auth-tls-secret`, `auth-tls-verify-client`).
    public var clientAuthentication: ClientAuthentication?

    /// The CA of `auth-tls-secret` and how client certificates are checked.
    public struct ClientAuthentication: Sendable, Hashable {
        public var secret: SecretReference
        /// `on`, `optional` or `optional_no_ca`.
        public var mode: String
        public var caPEM: String?
        /// `auth-tls-pass-certificate-to-upstream`: `ssl-client-cert` beside the other `ssl-client-*` fields.
        public var passCertificate = false
        /// Why the CA cannot be used (the hosts are then refused, never served without the check).
        public var problem: String?
    }
}

extension TranslationState {
    /// The certificates of `spec.tls`, oldest Ingress first; a host belongs to the first Ingress listing it.
    /// An entry without hosts covers its Ingress's rule hosts.
    mutating func translateTLS(_ ingresses: [Ingress], annotations: [String: NginxAnnotations] = [:]) {
        var taken: [String: String] = [:]
        var secrets: [String: Secret] = [:]
        for secret in set.secrets where secrets[secret.metadata.key] == nil { secrets[secret.metadata.key] = secret }
        for ingress in ingresses {
            let key = ingress.metadata.key
            for (index, entry) in ingress.tls.enumerated() {
                var hosts: [String] = []
                let listed = entry.hosts.isEmpty ? ingress.rules.compactMap(\.host) : entry.hosts
                for host in listed.map({ $0.lowercased() }) {
                    if let owner = taken[host], owner != key {
                        note("Ingress \(key): spec.tls[\(index)] host \(host) already has a certificate from Ingress \(owner), which is older", reason: "Conflict", about: key)
                        continue
                    }
                    if !hosts.contains(host) { hosts.append(host) }
                    taken[host] = key
                }
                guard !hosts.isEmpty else { continue }
                var certificate = IngressCertificate(ingress: key, hosts: hosts)
                if let name = entry.secretName, !name.isEmpty {
                    let reference = SecretReference(namespace: ingress.metadata.namespace, name: name)
                    certificate.secret = reference
                    (certificate.certificatePEM, certificate.keyPEM, certificate.problem) = Self.pem(of: secrets[reference.description], reference)
                }
                if let a = annotations[key], let ca = a.authTLSSecret, a.authTLSVerifyClient != "off" {
                    let reference = SecretReference(parsing: ca) ?? SecretReference(namespace: ingress.metadata.namespace, name: ca)
                    var auth = IngressCertificate.ClientAuthentication(secret: reference, mode: a.authTLSVerifyClient)
                    auth.passCertificate = a.authTLSPassCertificate
                    if let secret = secrets[reference.description] {
                        auth.caPEM = secret.tlsValues["ca.crt"]
                        if auth.caPEM == nil { auth.problem = "Secret \(reference) has no ca.crt" }
                    } else {
                        auth.problem = "Secret \(reference) not found"
                    }
                    if certificate.secret == nil { auth.problem = auth.problem ?? "client certificates need the host's own certificate (spec.tls secretName)" }
                    certificate.clientAuthentication = auth
                }
                result.certificates.append(certificate)
            }
        }
        result.tlsHosts = Set(taken.keys)
        if let reference = options.defaultSSLCertificate {
            var certificate = IngressCertificate(ingress: "", secret: reference, hosts: [])
            (certificate.certificatePEM, certificate.keyPEM, certificate.problem) = Self.pem(of: secrets[reference.description], reference)
            result.defaultCertificate = certificate
        }
    }

    /// `ssl-passthrough`: each rule host of such an Ingress relays its TLS, untouched, to the backend of the
    /// rule's `/` path (else its first path), as ingress-nginx does; the oldest Ingress wins a host.
    mutating func translatePassthrough(_ ingresses: [Ingress], annotations: [String: NginxAnnotations]) {
        var taken: Set<String> = []
        for ingress in ingresses {
            guard let a = annotations[ingress.metadata.key], a.sslPassthrough else { continue }
            let key = ingress.metadata.key
            guard options.enableSSLPassthrough else {
                note("Ingress \(key): annotation nginx.ingress.kubernetes.io/ssl-passthrough ignored: start ferry ingress with --enable-ssl-passthrough", reason: "AnnotationIgnored", about: key)
                continue
            }
            for rule in ingress.rules {
                guard let host = rule.host?.lowercased(), let path = rule.paths.first(where: { $0.path == "/" }) ?? rule.paths.first else { continue }
                guard taken.insert(host).inserted else {
                    note("Ingress \(key): ssl-passthrough for \(host) is already given by an older Ingress", reason: "Conflict", about: key)
                    continue
                }
                subject = key
                guard case .forward(let targets) = forwardAction(path.backend, namespace: ingress.metadata.namespace, settings: ClusterSettings(connectTimeout: .seconds(5), loadBalancing: .roundRobin), context: "Ingress \(key) ssl-passthrough"),
                      let cluster = targets.first?.name else { continue }
                result.passthrough.append(TLSPassthrough(serverNames: [host], cluster: cluster))
            }
        }
    }

    /// The chain and key of a `kubernetes.io/tls` Secret, or why there are none.
    static func pem(of secret: Secret?, _ reference: SecretReference) -> (String?, String?, String?) {
        guard let secret else { return (nil, nil, "Secret \(reference) not found") }
        if !secret.undecodable.isEmpty {
            return (nil, nil, "Secret \(reference): \(secret.undecodable.sorted().joined(separator: ", ")) is not base64 of PEM text")
        }
        guard let chain = secret.tlsValues["tls.crt"], let key = secret.tlsValues["tls.key"] else {
            return (nil, nil, "Secret \(reference) (type \(secret.type)) has no tls.crt and tls.key")
        }
        return (chain, key, nil)
    }

    /// The plain-HTTP listener's virtual hosts: the HTTPS ones, with the routes that redirect to HTTPS as
    /// ingress-nginx decides it per location — `force-ssl-redirect`, else `ssl-redirect` (the annotation, else
    /// `--ssl-redirect`) when the host has a certificate; never under `/.well-known/acme-challenge`.
    mutating func plainHTTPVirtualHosts(annotations: [String: NginxAnnotations]) {
        // Hosts a `spec.tls` entry lists, exactly or by a wildcard covering them.
        let certified = ServerNameTable(covering: result.tlsHosts)
        result.httpVirtualHosts = result.virtualHosts.map { vhost in
            var vhost = vhost
            let host = vhost.name == "*" ? nil : vhost.name
            vhost.routes = vhost.routes.map { route in
                let origin = result.origins[route.name]
                let a = origin?.ingress.flatMap { annotations[$0] }
                let path = origin?.path ?? ""
                if path.hasPrefix("/.well-known/acme-challenge") { return route }
                let redirects = (a?.forceSSLRedirect ?? false)
                    || ((a?.sslRedirect ?? options.sslRedirect) && host.map(certified.covers) == true)
                guard redirects else { return route }
                var redirected = route
                redirected.action = .redirect(.toHTTPS(status: options.httpRedirectCode, preserveTrailingSlash: a?.preserveTrailingSlash ?? false))
                return redirected
            }
            return vhost
        }
    }
}
