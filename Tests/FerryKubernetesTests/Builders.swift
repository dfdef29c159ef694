import FerryKubernetes
import FerryModel

/// Small builders for Kubernetes objects in tests.
enum K {
    static func backend(_ service: String, _ port: Int) -> IngressBackend {
        .service(ServiceBackend(name: service, port: .number(port)))
    }

    static func path(_ path: String, _ type: PathType = .prefix, to service: String, port: Int = 80) -> HTTPIngressPath {
        HTTPIngressPath(path: path, pathType: type, backend: backend(service, port))
    }

    static func ingress(
        _ name: String, namespace: String = "default", created: String? = nil, className: String? = "ferry",
        annotations: [String: String] = [:], defaultBackend: IngressBackend? = nil, rules: [IngressRule] = []
    ) -> Ingress {
        Ingress(metadata: ObjectMeta(name: name, namespace: namespace, annotations: annotations, creationTimestamp: created),
                origin: ManifestOrigin(file: "\(name).yaml", document: 1),
                ingressClassName: className, defaultBackend: defaultBackend, rules: rules)
    }

    static func service(_ name: String, namespace: String = "default", ports: [ServicePort] = [ServicePort(name: "http", port: 80)]) -> Service {
        Service(metadata: ObjectMeta(name: name, namespace: namespace), ports: ports)
    }

    static func slice(_ service: String, namespace: String = "default", portName: String? = "http", port: Int = 8080, _ endpoints: [SliceEndpoint]) -> EndpointSlice {
        EndpointSlice(metadata: ObjectMeta(name: "\(service)-\(endpoints.count)", namespace: namespace, labels: ["kubernetes.io/service-name": service]),
                      endpoints: endpoints, ports: [EndpointPort(name: portName, port: port)])
    }

    static func ready(_ address: String) -> SliceEndpoint {
        SliceEndpoint(addresses: [address], ready: true, serving: true, terminating: false)
    }

    /// A set where every named service exists with one ready endpoint (10.0.0.N:8080).
    static func set(_ ingresses: [Ingress], services: [String], classes: [IngressClass] = []) -> ManifestSet {
        var set = ManifestSet()
        set.ingresses = ingresses
        set.ingressClasses = classes
        for (i, name) in services.enumerated() {
            set.services.append(service(name))
            set.endpointSlices.append(slice(name, [ready("10.0.0.\(i + 1)")]))
        }
        return set
    }

    /// The route serving `host` + `path`, as the data plane's route table picks it.
    static func route(_ t: IngressTranslation, host: String, path: String, method: String = "GET", headers: [String: String] = [:]) -> Route? {
        let table = RouteTable(virtualHosts: t.virtualHosts)
        guard let m = table.match(authority: Substring(host), path: Substring(path), method: method, header: { headers[$0] }) else { return nil }
        return table.route(m)
    }

    /// The single cluster a route forwards to, or nil.
    static func cluster(_ route: Route?) -> String? {
        guard case .forward(let targets)? = route?.action, targets.count == 1 else { return nil }
        return targets[0].name
    }

    /// The service name of the single cluster a route forwards to (`default/web:80` → `web`).
    static func service(of route: Route?) -> String? {
        guard let c = cluster(route) else { return nil }
        let afterSlash = c.split(separator: "/", maxSplits: 1).last ?? ""
        return String(afterSlash.split(separator: ":").first ?? "")
    }
}
