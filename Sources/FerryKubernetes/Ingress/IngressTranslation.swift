import FerryModel

/// The result of translating Ingress objects: Ferry routes and clusters, what each route came from,
/// and every problem found (each reported once).
public struct IngressTranslation: Sendable {
    /// The routes as HTTPS serves them (and plain HTTP for hosts without a certificate).
    public var virtualHosts: [VirtualHost] = []
    /// The routes as plain HTTP serves them: those of hosts with a certificate redirect to HTTPS.
    public var httpVirtualHosts: [VirtualHost] = []
    /// The certificates `spec.tls` asks for, oldest Ingress first.
    public var certificates: [IngressCertificate] = []
    /// Every host a `spec.tls` entry lists (lower-cased; `*.` wildcards as written).
    public var tlsHosts: Set<String> = []
    /// Hosts whose TLS goes untouched to their backend (`ssl-passthrough`).
    public var passthrough: [TLSPassthrough] = []
    /// `--default-ssl-certificate`'s Secret, read like the others.
    public var defaultCertificate: IngressCertificate?
    /// The HTTPS listener's TLS, once the role has checked the certificates (`IngressRole.certify`).
    public var listenerTLS: DownstreamTLS?
    public var clusters: [Cluster] = []
    /// Problems and ignored settings, one line each, in a stable order.
    public var notes: [String] = []
    /// Route name → where it came from.
    public var origins: [String: RouteOrigin] = [:]
    /// Cluster name → the Service port behind it and how its endpoints were chosen.
    public var backends: [String: BackendReport] = [:]
    /// Every Ingress read, whether Ferry serves it, and why.
    public var selection: [IngressSelection] = []
    /// The notes that are about one Ingress, for a Warning Event on it.
    public var events: [IngressEvent] = []
}

/// A problem of one Ingress, as a Kubernetes Event (`type: Warning`) on it.
public struct IngressEvent: Sendable, Hashable {
    /// `namespace/name`.
    public var ingress: String
    public var reason: String
    public var message: String

    public init(ingress: String, reason: String, message: String) {
        self.ingress = ingress
        self.reason = reason
        self.message = message
    }
}

/// Why an Ingress is or is not served by this controller.
public struct IngressSelection: Sendable {
    public var ingress: String
    public var selected: Bool
    public var reason: String
}

/// Where a route came from, for `ferry explain` and `/config_dump`.
public struct RouteOrigin: Sendable, Encodable {
    public enum Kind: String, Sendable, Encodable {
        /// An Ingress path.
        case path
        /// The canary Ingress's backend chosen by header or cookie (`always` or the header value).
        case canaryMatch = "canary"
        /// The main backend forced by a `never` header or cookie.
        case canaryNever = "canary-never"
        /// `app-root`: `/` redirects to the application root.
        case appRoot = "app-root"
        /// The Ingress's `spec.defaultBackend` for hosts it defines.
        case ingressDefaultBackend = "ingress-default-backend"
        /// `--default-backend` of the controller.
        case controllerDefaultBackend = "controller-default-backend"
    }
    public var kind: Kind
    /// `namespace/name` of the Ingress; nil for the controller's default backend.
    public var ingress: String?
    public var file: String?
    public var host: String?
    public var rule: Int?
    public var pathIndex: Int?
    public var path: String?
    public var pathType: String?
    /// The canary Ingress, when one shares the path.
    public var canary: String?
    /// `use-regex` / `rewrite-target` made this host match paths as regular expressions.
    public var regexHost: Bool = false
}

/// The Service port behind a cluster.
public struct BackendReport: Sendable, Encodable {
    /// `Service default/web port 80 (http)`.
    public var service: String
    public var endpoints: [String]
    /// How the endpoints were chosen, or why there are none.
    public var detail: String
}
