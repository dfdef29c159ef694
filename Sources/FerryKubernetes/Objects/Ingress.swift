/// networking.k8s.io/v1 Ingress.
public struct Ingress: Sendable {
    public var metadata: ObjectMeta
    public var origin: ManifestOrigin?
    public var ingressClassName: String?
    public var defaultBackend: IngressBackend?
    public var rules: [IngressRule]
    /// `spec.tls[].hosts` with their Secret names (TLS serving comes later; kept for explain and reports).
    public var tls: [IngressTLS]
    /// `status.loadBalancer.ingress`: the addresses the controller published for it.
    public var loadBalancer: [LoadBalancerAddress] = []

    public init(metadata: ObjectMeta, origin: ManifestOrigin? = nil, ingressClassName: String? = nil, defaultBackend: IngressBackend? = nil, rules: [IngressRule] = [], tls: [IngressTLS] = []) {
        self.metadata = metadata
        self.origin = origin
        self.ingressClassName = ingressClassName
        self.defaultBackend = defaultBackend
        self.rules = rules
        self.tls = tls
    }
}

public struct IngressRule: Sendable {
    /// Nil: the rule matches every host.
    public var host: String?
    public var paths: [HTTPIngressPath]

    public init(host: String? = nil, paths: [HTTPIngressPath]) {
        self.host = host
        self.paths = paths
    }
}

public struct HTTPIngressPath: Sendable {
    public var path: String
    public var pathType: PathType
    public var backend: IngressBackend

    public init(path: String, pathType: PathType, backend: IngressBackend) {
        self.path = path
        self.pathType = pathType
        self.backend = backend
    }
}

public enum PathType: String, Sendable, Hashable, CaseIterable {
    case exact = "Exact"
    case prefix = "Prefix"
    /// Treated as `Prefix` by Ferry (the specification leaves it to the controller).
    case implementationSpecific = "ImplementationSpecific"
}

/// An Ingress backend: a Service port, or a resource reference (which Ferry cannot serve and reports).
public enum IngressBackend: Sendable, Hashable, CustomStringConvertible {
    case service(ServiceBackend)
    case resource(kind: String, name: String)

    public var description: String {
        switch self {
        case .service(let s): "service \(s.name):\(s.port)"
        case .resource(let kind, let name): "resource \(kind)/\(name)"
        }
    }
}

public struct ServiceBackend: Sendable, Hashable {
    public var name: String
    public var port: ServicePortReference

    public init(name: String, port: ServicePortReference) {
        self.name = name
        self.port = port
    }
}

/// A Service port by number or by name.
public enum ServicePortReference: Sendable, Hashable, CustomStringConvertible {
    case number(Int)
    case name(String)

    public var description: String {
        switch self {
        case .number(let n): String(n)
        case .name(let n): n
        }
    }
}

public struct IngressTLS: Sendable, Hashable {
    public init(hosts: [String], secretName: String?) {
        self.hosts = hosts
        self.secretName = secretName
    }

    public var hosts: [String]
    public var secretName: String?
}

/// networking.k8s.io/v1 IngressClass.
public struct IngressClass: Sendable {
    public var metadata: ObjectMeta
    public var origin: ManifestOrigin?
    public var controller: String?

    public init(metadata: ObjectMeta, origin: ManifestOrigin? = nil, controller: String? = nil) {
        self.metadata = metadata
        self.origin = origin
        self.controller = controller
    }

    /// `ingressclass.kubernetes.io/is-default-class: "true"`.
    public var isDefault: Bool {
        metadata.annotations["ingressclass.kubernetes.io/is-default-class"] == "true"
    }
}
