import FerryModel

/// Services and EndpointSlices → the `ServicePortTable` a service proxy serves, as kube-proxy reads them:
/// one entry per Service port; NodePorts for NodePort and LoadBalancer Services, load-balancer IPs from the
/// status; endpoints from the Service's EndpointSlices whose port has the same name and protocol, the
/// first address of each endpoint, deduplicated across slices; `publishNotReadyAddresses` makes every
/// endpoint ready. A dual-stack Service (`spec.clusterIPs`) gives an entry per IP family, with that family's
/// addresses and the slices of its `addressType`. Headless and ExternalName Services are not proxied.
public enum ServiceProxyTranslator {
    public struct Translation: Sendable {
        public var table: ServicePortTable
        /// Services left out and why, for logs and `--dry-run`.
        public var notes: [String]
        /// The ranges of the ServiceCIDR objects read (deduplicated, in order).
        public var serviceCIDRs: [IPRange] = []
    }

    public static func translate(_ set: ManifestSet) -> Translation {
        var ports: [ProxiedServicePort] = []
        var notes: [String] = []
        var slicesByService: [String: [EndpointSlice]] = [:]
        for slice in set.endpointSlices {
            guard let service = slice.serviceName else { continue }
            slicesByService["\(slice.metadata.namespace)/\(service)", default: []].append(slice)
        }
        for service in set.services.sorted(by: { ($0.metadata.namespace, $0.metadata.name) < ($1.metadata.namespace, $1.metadata.name) }) {
            let key = "\(service.metadata.namespace)/\(service.metadata.name)"
            if service.type == "ExternalName" { continue }
            guard let clusterIPText = service.clusterIP, clusterIPText != "None" else {
                if service.clusterIP == nil {
                    notes.append("Service \(key) has no spec.clusterIP: a service proxy needs the address the API server allocated; it is left out")
                }
                continue
            }
            // One entry per family of a dual-stack Service (spec.clusterIPs), each with its family's addresses.
            var clusterIPs: [IPAddress] = []
            for text in service.clusterIPs.isEmpty ? [clusterIPText] : service.clusterIPs {
                guard let ip = IPAddress(parsing: text) else {
                    notes.append("Service \(key): cluster IP \"\(text)\" is not an IP address; it is left out")
                    continue
                }
                if !clusterIPs.contains(where: { $0.isIPv6 == ip.isIPv6 }) { clusterIPs.append(ip) }
            }
            let exposesNodePorts = service.type == "NodePort" || service.type == "LoadBalancer"
            let allExternalIPs = addresses(service.externalIPs, "spec.externalIPs", key, &notes)
            let allLBIPs = service.type == "LoadBalancer" ? addresses(service.loadBalancerIPs, "status.loadBalancer.ingress", key, &notes) : []
            var allRanges: [IPRange] = []
            for text in service.loadBalancerSourceRanges {
                if let range = IPRange(parsing: text.filter { $0 != " " }) { allRanges.append(range) } else { notes.append("Service \(key): loadBalancerSourceRanges entry \"\(text)\" is not a CIDR; it is ignored") }
            }
            for clusterIP in clusterIPs {
                let v6 = clusterIP.isIPv6
                let externalIPs = allExternalIPs.filter { $0.isIPv6 == v6 }
                let lbIPs = allLBIPs.filter { $0.isIPv6 == v6 }
                let ranges = allRanges.filter { $0.base.isIPv6 == v6 }
                for port in service.ports {
                    guard let proto = TransportProtocol(rawValue: port.protocol.lowercased()) else {
                        if clusterIP == clusterIPs.first { notes.append("Service \(key) port \(port.port): protocol \(port.protocol) is not TCP, UDP or SCTP; it is left out") }
                        continue
                    }
                    let endpoints = Self.endpoints(for: port, protocol: proto, slices: slicesByService[key] ?? [], addressType: v6 ? "IPv6" : "IPv4",
                                                   publishNotReady: service.publishNotReadyAddresses)
                    ports.append(ProxiedServicePort(
                        namespace: service.metadata.namespace, service: service.metadata.name, portName: port.name ?? "", protocol: proto,
                        clusterIP: clusterIP, port: port.port, nodePort: exposesNodePorts ? port.nodePort : nil,
                        externalIPs: externalIPs, loadBalancerIPs: lbIPs, loadBalancerSourceRanges: ranges,
                        affinityTimeoutSeconds: service.sessionAffinity == "ClientIP" ? service.sessionAffinityTimeoutSeconds : nil,
                        internalTrafficLocal: service.internalTrafficPolicy == "Local",
                        externalTrafficLocal: service.externalTrafficPolicy == "Local" && (exposesNodePorts || !externalIPs.isEmpty),
                        healthCheckNodePort: service.type == "LoadBalancer" && service.externalTrafficPolicy == "Local" ? service.healthCheckNodePort : nil,
                        endpoints: endpoints))
                }
            }
        }
        var cidrs: [IPRange] = []
        for range in set.serviceCIDRs.flatMap(\.cidrs) where !cidrs.contains(range) { cidrs.append(range) }
        return Translation(table: ServicePortTable(ports: ports), notes: notes, serviceCIDRs: cidrs)
    }

    static func addresses(_ texts: [String], _ field: String, _ key: String, _ notes: inout [String]) -> [IPAddress] {
        texts.compactMap { text in
            if let ip = IPAddress(parsing: text) { return ip }
            notes.append("Service \(key): \(field) entry \"\(text)\" is not an IP address; it is ignored")
            return nil
        }
    }

    /// The endpoints of one family (`addressType` IPv4 or IPv6) for a Service port.
    static func endpoints(for port: ServicePort, protocol proto: TransportProtocol, slices: [EndpointSlice], addressType: String, publishNotReady: Bool) -> [ProxiedEndpoint] {
        var seen = Set<String>()
        var result: [ProxiedEndpoint] = []
        for slice in slices where slice.addressType == addressType {
            guard let slicePort = slice.ports.first(where: { ($0.name ?? "") == (port.name ?? "") && $0.protocol.lowercased() == proto.rawValue }),
                  let number = slicePort.port
            else { continue }
            for endpoint in slice.endpoints {
                guard let first = endpoint.addresses.first, let ip = IPAddress(parsing: first) else { continue }
                let e = ProxiedEndpoint(ip: ip, port: number, nodeName: endpoint.nodeName,
                                        ready: publishNotReady || endpoint.isReady, serving: publishNotReady || endpoint.isServing, terminating: endpoint.isTerminating)
                if seen.insert(e.hostPort).inserted { result.append(e) }
            }
        }
        return result
    }
}
