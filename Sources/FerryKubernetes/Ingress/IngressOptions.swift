/// The controller's own settings (the flags of `ferry ingress`).
public struct IngressOptions: Sendable {
    /// The class Ferry serves (`--ingress-class`).
    public var ingressClass: String
    /// Also serve Ingresses that name no class (`--watch-ingress-without-class`).
    public var watchIngressWithoutClass: Bool
    /// Serves requests no Ingress rule matches (`--default-backend NAMESPACE/SERVICE:PORT`).
    public var defaultBackend: DefaultBackendReference?

    public init(ingressClass: String = "ferry", watchIngressWithoutClass: Bool = false, defaultBackend: DefaultBackendReference? = nil) {
        self.ingressClass = ingressClass
        self.watchIngressWithoutClass = watchIngressWithoutClass
        self.defaultBackend = defaultBackend
    }
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
