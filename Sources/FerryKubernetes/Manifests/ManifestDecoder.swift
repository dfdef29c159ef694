import FerryModel
import Foundation
import Yams

/// Reads Kubernetes manifests (multi-document YAML or JSON, `kind: List` included) into typed objects.
/// Kinds Ferry does not use are skipped; a malformed object is reported with its file, document, name
/// and field, and the whole set is refused so that the last good one stays in force.
public enum ManifestDecoder {
    /// Decodes the text of one file. Throws `ManifestError`.
    public static func decode(text: String, file: String) throws -> ManifestSet {
        var set = ManifestSet()
        set.files = [file]
        var diagnostics: [ManifestDiagnostic] = []
        var documents: [Node] = []
        do {
            // The sequence stops at a syntax error and keeps it in `error` (iterating does not throw).
            var sequence = try Yams.compose_all(yaml: text)
            while let document = sequence.next() { documents.append(document) }
            if let error = sequence.error { throw error }
        } catch {
            throw ManifestError([syntaxDiagnostic(error, file: file, document: documents.count + 1)])
        }
        for (index, document) in documents.enumerated() {
            let reporter = ManifestReporter(file: file, document: index + 1)
            let root = ManifestNode(node: document, path: "", reporter: reporter)
            if !root.exists { continue }  // an empty document between `---` lines
            if root["kind"].string == "List" {
                for item in root["items"].items {
                    decodeObject(item, origin: ManifestOrigin(file: file, document: index + 1), into: &set)
                }
            } else {
                decodeObject(root, origin: ManifestOrigin(file: file, document: index + 1), into: &set)
            }
            diagnostics += reporter.diagnostics
        }
        if !diagnostics.isEmpty { throw ManifestError(diagnostics) }
        return set
    }

    static func decodeObject(_ root: ManifestNode, origin: ManifestOrigin, into set: inout ManifestSet) {
        guard root.isMapping else {
            root.error("a manifest document must be a Kubernetes object (a mapping with apiVersion and kind)")
            return
        }
        guard let kind = root["kind"].requiredString("the object's kind, e.g. Ingress") else { return }
        let apiVersion = root["apiVersion"].string ?? ""
        let decoded: Bool
        switch (kind, apiVersion) {
        case ("Ingress", "networking.k8s.io/v1"):
            guard let meta = metadata(root, kind: kind) else { return }
            set.ingresses.append(IngressDecoding.ingress(root, meta: meta, origin: origin))
            decoded = true
        case ("IngressClass", "networking.k8s.io/v1"):
            guard let meta = metadata(root, kind: kind, namespaced: false) else { return }
            set.ingressClasses.append(IngressClass(metadata: meta, origin: origin, controller: root["spec"]["controller"].string))
            decoded = true
        case ("Service", "v1"):
            guard let meta = metadata(root, kind: kind) else { return }
            set.services.append(service(root, meta: meta, origin: origin))
            decoded = true
        case ("EndpointSlice", "discovery.k8s.io/v1"):
            guard let meta = metadata(root, kind: kind) else { return }
            set.endpointSlices.append(endpointSlice(root, meta: meta, origin: origin))
            decoded = true
        case ("Secret", "v1"):
            guard let meta = metadata(root, kind: kind) else { return }
            let data = root["data"].stringMap, stringData = root["stringData"].stringMap
            var secret = Secret(metadata: meta, origin: origin, type: root["type"].string ?? "Opaque", keys: Array(data.keys).sorted() + Array(stringData.keys).sorted())
            for key in Secret.tlsKeys {
                if let text = stringData[key] {
                    secret.tlsValues[key] = text
                } else if let encoded = data[key] {
                    if let bytes = Data(base64Encoded: encoded.filter { !$0.isWhitespace }), let text = String(data: bytes, encoding: .utf8) {
                        secret.tlsValues[key] = text
                    } else {
                        secret.undecodable.append(key)
                    }
                }
            }
            set.secrets.append(secret)
            decoded = true
        case ("Node", "v1"):
            guard let meta = metadata(root, kind: kind, namespaced: false) else { return }
            var node = ClusterNode(metadata: meta)
            node.addresses = root["status"]["addresses"].items.compactMap { item in
                guard let type = item["type"].string, let address = item["address"].string else { return nil }
                return (type, address)
            }
            node.podCIDRs = root["spec"]["podCIDRs"].items.compactMap(\.string)
            node.deleting = root["metadata"]["deletionTimestamp"].string != nil
            node.taintKeys = root["spec"]["taints"].items.compactMap { $0["key"].string }
            set.nodes.append(node)
            decoded = true
        case ("Pod", "v1"):
            guard let meta = metadata(root, kind: kind, namespaced: true) else { return }
            var pod = Pod(metadata: meta)
            let listed = root["status"]["podIPs"].items.compactMap { $0["ip"].string }
            pod.ips = (listed.isEmpty ? [root["status"]["podIP"].string].compactMap { $0 } : listed).compactMap(IPAddress.init(parsing:))
            pod.hostNetwork = root["spec"]["hostNetwork"].string == "true"
            pod.phase = root["status"]["phase"].string ?? ""
            set.pods.append(pod)
            decoded = true
        case ("ServiceCIDR", "networking.k8s.io/v1"):
            guard let meta = metadata(root, kind: kind, namespaced: false) else { return }
            var cidrs: [IPRange] = []
            for (index, item) in root["spec"]["cidrs"].items.enumerated() {
                guard let text = item.string, let range = IPRange(parsing: text) else {
                    root["spec"]["cidrs"].error("spec.cidrs[\(index)] is not a CIDR such as 10.96.0.0/12")
                    continue
                }
                cidrs.append(range)
            }
            set.serviceCIDRs.append(ServiceCIDR(metadata: meta, cidrs: cidrs))
            decoded = true
        case ("Ingress", _), ("IngressClass", _), ("EndpointSlice", _), ("ServiceCIDR", _):
            root["apiVersion"].error("\(kind) is read as \(kind == "EndpointSlice" ? "discovery.k8s.io/v1" : "networking.k8s.io/v1"), not \"\(apiVersion)\"; convert the manifest")
            decoded = false
        default:
            decoded = false
        }
        if !decoded { set.skippedKinds[kind, default: 0] += 1 }
    }

    static func metadata(_ root: ManifestNode, kind: String, namespaced: Bool = true) -> ObjectMeta? {
        let m = root["metadata"]
        guard let name = m["name"].requiredString("metadata.name") else { return nil }
        let namespace = namespaced ? (m["namespace"].string ?? "default") : ""
        root.reporter.object = namespaced ? "\(kind) \(namespace)/\(name)" : "\(kind) \(name)"
        var meta = ObjectMeta(name: name, namespace: namespace, annotations: m["annotations"].stringMap, labels: m["labels"].stringMap,
                              creationTimestamp: m["creationTimestamp"].string, resourceVersion: m["resourceVersion"].string)
        meta.uid = m["uid"].string
        return meta
    }

    static func service(_ root: ManifestNode, meta: ObjectMeta, origin: ManifestOrigin) -> Service {
        let spec = root["spec"]
        let ports: [ServicePort] = spec["ports"].items.compactMap { p in
            guard let port = p["port"].int else {
                if !p["port"].exists { p["port"].error("is required (the Service port number)") }
                return nil
            }
            guard (1...65535).contains(port) else {
                p["port"].error("must be between 1 and 65535")
                return nil
            }
            var servicePort = ServicePort(name: p["name"].string, port: port, targetPort: portReference(p["targetPort"]), protocol: p["protocol"].string ?? "TCP")
            servicePort.nodePort = p["nodePort"].int
            return servicePort
        }
        var service = Service(metadata: meta, origin: origin, type: spec["type"].string ?? "ClusterIP", ports: ports, externalName: spec["externalName"].string)
        service.clusterIP = spec["clusterIP"].string
        service.clusterIPs = spec["clusterIPs"].items.compactMap(\.string)
        service.externalIPs = spec["externalIPs"].items.compactMap(\.string)
        service.loadBalancerSourceRanges = spec["loadBalancerSourceRanges"].items.compactMap(\.string)
        service.loadBalancerIPs = root["status"]["loadBalancer"]["ingress"].items.compactMap { $0["ip"].string }
        service.loadBalancer = LoadBalancerAddress.decode(root["status"]["loadBalancer"]["ingress"])
        service.sessionAffinity = spec["sessionAffinity"].string ?? "None"
        if let timeout = spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"].int { service.sessionAffinityTimeoutSeconds = timeout }
        service.internalTrafficPolicy = spec["internalTrafficPolicy"].string ?? "Cluster"
        service.externalTrafficPolicy = spec["externalTrafficPolicy"].string ?? "Cluster"
        service.healthCheckNodePort = spec["healthCheckNodePort"].int
        service.publishNotReadyAddresses = spec["publishNotReadyAddresses"].bool ?? false
        return service
    }

    static func endpointSlice(_ root: ManifestNode, meta: ObjectMeta, origin: ManifestOrigin) -> EndpointSlice {
        let addressType = root["addressType"].string ?? "IPv4"
        let endpoints: [SliceEndpoint] = root["endpoints"].items.map { e in
            let addresses = e["addresses"].items.compactMap(\.string)
            if addresses.isEmpty { e["addresses"].error("needs at least one address") }
            if addressType != "FQDN" {
                for (i, a) in addresses.enumerated() where IPAddress(parsing: a) == nil {
                    e["addresses"].error("[\(i)] \"\(a)\" is not an IP address (addressType \(addressType))")
                }
            }
            let c = e["conditions"]
            var endpoint = SliceEndpoint(addresses: addresses, ready: c["ready"].bool, serving: c["serving"].bool, terminating: c["terminating"].bool)
            endpoint.nodeName = e["nodeName"].string
            return endpoint
        }
        let ports: [EndpointPort] = root["ports"].items.map { p in
            let port = p["port"].int
            if let port, !(1...65535).contains(port) { p["port"].error("must be between 1 and 65535") }
            return EndpointPort(name: p["name"].string, port: port, protocol: p["protocol"].string ?? "TCP")
        }
        return EndpointSlice(metadata: meta, origin: origin, addressType: addressType, endpoints: endpoints, ports: ports)
    }

    /// `targetPort` / `port` references: an integer or a name.
    static func portReference(_ node: ManifestNode) -> ServicePortReference? {
        guard node.exists, let scalar = node.node?.scalar else { return nil }
        if let n = Int(scalar.string) { return .number(n) }
        return .name(scalar.string)
    }

    static func syntaxDiagnostic(_ error: Error, file: String, document: Int) -> ManifestDiagnostic {
        switch error as? YamlError {
        case .scanner(_, let problem, let mark, _)?, .parser(_, let problem, let mark, _)?, .composer(_, let problem, let mark, _)?:
            return ManifestDiagnostic(file: file, document: document, object: "", line: mark.line, field: "", message: "YAML syntax: \(problem)")
        default:
            return ManifestDiagnostic(file: file, document: document, object: "", line: nil, field: "", message: "YAML syntax: \(error)")
        }
    }
}
