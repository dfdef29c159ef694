import FerryModel

/// Decodes and validates an Ingress as the API server would (pathType required, paths absolute, hosts
/// DNS names with at most a leading `*.` label, one kind of backend, a port by number or name).
enum IngressDecoding {
    static func ingress(_ root: ManifestNode, meta: ObjectMeta, origin: ManifestOrigin) -> Ingress {
        let spec = root["spec"]
        var ingress = Ingress(metadata: meta, origin: origin, ingressClassName: spec["ingressClassName"].string)
        if spec["defaultBackend"].exists { ingress.defaultBackend = backend(spec["defaultBackend"]) }
        for r in spec["rules"].items {
            var host: String?
            if let h = r["host"].string, !h.isEmpty {
                if let problem = hostProblem(h) { r["host"].error(problem) } else { host = h.lowercased() }
            }
            let paths: [HTTPIngressPath] = r["http"]["paths"].items.compactMap { p in
                guard let typeText = p["pathType"].requiredString("Exact, Prefix or ImplementationSpecific") else { return nil }
                guard let type = PathType(rawValue: typeText) else {
                    p["pathType"].error("must be Exact, Prefix or ImplementationSpecific, not \"\(typeText)\"")
                    return nil
                }
                let path = p["path"].string ?? (type == .implementationSpecific ? "/" : "")
                if type != .implementationSpecific, !path.hasPrefix("/") {
                    p["path"].error(path.isEmpty ? "is required for pathType \(typeText) and must start with \"/\"" : "must start with \"/\" (\"\(path)\")")
                    return nil
                }
                guard let b = backend(p["backend"]) else { return nil }
                return HTTPIngressPath(path: path, pathType: type, backend: b)
            }
            if r["http"].exists, !r["http"]["paths"].exists { r["http"]["paths"].error("is required when http is set (at least one path)") }
            ingress.rules.append(IngressRule(host: host, paths: paths))
        }
        ingress.loadBalancer = LoadBalancerAddress.decode(root["status"]["loadBalancer"]["ingress"])
        for t in spec["tls"].items {
            ingress.tls.append(IngressTLS(hosts: t["hosts"].items.compactMap(\.string), secretName: t["secretName"].string))
        }
        if ingress.defaultBackend == nil, !spec["rules"].exists, spec.exists {
            spec.error("an Ingress needs rules or a defaultBackend")
        }
        return ingress
    }

    static func backend(_ node: ManifestNode) -> IngressBackend? {
        let service = node["service"]
        let resource = node["resource"]
        switch (service.exists, resource.exists) {
        case (true, true):
            node.error("has both service and resource; use one")
            return nil
        case (false, false):
            node.error("needs service: {name, port} (or resource)")
            return nil
        case (false, true):
            guard let kind = resource["kind"].requiredString("the resource kind"), let name = resource["name"].requiredString("the resource name") else { return nil }
            return .resource(kind: kind, name: name)
        case (true, false):
            guard let name = service["name"].requiredString("the Service name") else { return nil }
            let port = service["port"]
            let number = port["number"]
            let portName = port["name"]
            switch (number.exists, portName.exists) {
            case (true, false):
                guard let n = number.int else { return nil }
                guard (1...65535).contains(n) else {
                    number.error("must be between 1 and 65535")
                    return nil
                }
                return .service(ServiceBackend(name: name, port: .number(n)))
            case (false, true):
                guard let n = portName.requiredString("the Service port name") else { return nil }
                return .service(ServiceBackend(name: name, port: .name(n)))
            case (true, true):
                port.error("has both number and name; use one")
                return nil
            case (false, false):
                port.error("needs number or name")
                return nil
            }
        }
    }

    /// Why `host` is not a valid Ingress host, or nil.
    static func hostProblem(_ host: String) -> String? {
        if IPAddress(parsing: host) != nil { return "\"\(host)\" is an IP address; Ingress hosts are DNS names" }
        if host.contains(":") { return "\"\(host)\" has a port; Ingress hosts have none" }
        if host == "*" { return "\"*\" alone is not allowed; leave host out to match every host" }
        switch DomainPattern.parse(host) {
        case .failure(let e): return "\"\(host)\": \(e)"
        case .success: break
        }
        let labels = host.hasPrefix("*.") ? host.dropFirst(2).split(separator: ".", omittingEmptySubsequences: false) : host.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            let ok = !label.isEmpty && label.count <= 63 && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") } && label.first != "-" && label.last != "-"
            if !ok { return "\"\(host)\" is not a DNS name (label \"\(label)\")" }
        }
        return nil
    }
}
