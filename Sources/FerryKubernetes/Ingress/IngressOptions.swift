/// The controller's own settings (the flags of `ferry ingress`).
public struct IngressOptions: Sendable {
    /// The class Ferry serves (`--ingress-class`).
    public var ingressClass: String
    /// Also serve Ingresses that name no class (`--watch-ingress-without-class`).
    public var watchIngressWithoutClass: Bool
    /// Serves requests no Ingress rule matches (`--default-backend NAMESPACE/SERVICE:PORT`).
    public var defaultBackend: DefaultBackendReference?
    /// `--default-ssl-certificate NAMESPACE/NAME`: the `kubernetes.io/tls` Secret served to names no Ingress
    /// has a certificate for (else a self-signed certificate made at start).
    public var defaultSSLCertificate: SecretReference?
    /// `--ssl-redirect`: plain HTTP to a host with a certificate is redirected to HTTPS (an Ingress's
    /// `ssl-redirect` annotation overrides it).
    public var sslRedirect = true
    /// `--http-redirect-code`: the status of that redirect (301, 302, 307 or 308).
    public var httpRedirectCode = 308
    /// `Strict-Transport-Security` on HTTPS responses of hosts with a certificate; nil: none.
    public var hsts: HSTS? = HSTS()
    /// `--enable-ssl-passthrough`: honour the `ssl-passthrough` annotation.
    public var enableSSLPassthrough = false

    public init(ingressClass: String = "ferry", watchIngressWithoutClass: Bool = false, defaultBackend: DefaultBackendReference? = nil) {
        self.ingressClass = ingressClass
        self.watchIngressWithoutClass = watchIngressWithoutClass
        self.defaultBackend = defaultBackend
    }

    /// ingress-nginx's `hsts-*` settings, with its defaults.
    public struct HSTS: Sendable, Hashable {
        public var maxAge = 31_536_000
        public var includeSubdomains = true
        public var preload = false

        public init(maxAge: Int = 31_536_000, includeSubdomains: Bool = true, preload: Bool = false) {
            self.maxAge = maxAge
            self.includeSubdomains = includeSubdomains
            self.preload = preload
        }

        /// The header's value: `max-age=31536000; includeSubDomains`.
        public var value: String {
            "max-age=\(maxAge)" + (includeSubdomains ? "; includeSubDomains" : "") + (preload ? "; preload" : "")
        }
    }
}

/// `NAMESPACE/NAME` of a Secret.
public struct SecretReference: Sendable, Hashable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        self.init(namespace: String(parts[0]), name: String(parts[1]))
    }

    public var description: String { "\(namespace)/\(name)" }
}

/// `NAMESPACE/SERVICE:PORT`, the port by number or name.
public struct DefaultBackendReference: Sendable, Hashable, CustomStringConvertible {
    public var namespace: String
    public var service: ServiceBackend

    public init?(parsing text: String) {
        guard let slash = text.firstIndex(of: "/"), let colon = text.lastIndex(of: ":"), slash < colon else { return nil }
        let namespace = String(text[..<slash])
        let name = String(text[text.index(after: slash)..<colon])
        let port = String(text[text.index(after: colon)...])
        guard !namespace.isEmpty, !name.isEmpty, !port.isEmpty, !name.contains("/") else { return nil }
        self.namespace = namespace
        if let n = Int(port) {
            guard (1...65535).contains(n) else { return nil }
            self.service = ServiceBackend(name: name, port: .number(n))
        } else {
            self.service = ServiceBackend(name: name, port: .name(port))
        }
    }

    public var description: String { "\(namespace)/\(service.name):\(service.port)" }
}
