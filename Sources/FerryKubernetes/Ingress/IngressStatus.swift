import FerryModel

/// One entry of a `status.loadBalancer.ingress` list: an IP address or a hostname.
public struct LoadBalancerAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var ip: String?
    public var hostname: String?

    public init(ip: String? = nil, hostname: String? = nil) {
        self.ip = ip
        self.hostname = hostname
    }

    /// An IP address when the text parses as one, else a hostname (ingress-nginx's rule).
    public init(parsing text: String) {
        if IPAddress(parsing: text) != nil { self.init(ip: text) } else { self.init(hostname: text) }
    }

    /// Hostnames first, then IPs, each in text order (ingress-nginx sorts before comparing).
    public static func < (a: LoadBalancerAddress, b: LoadBalancerAddress) -> Bool {
        (a.hostname ?? "\u{10FFFF}", a.ip ?? "") < (b.hostname ?? "\u{10FFFF}", b.ip ?? "")
    }

    public var description: String { hostname ?? ip ?? "" }

    /// The JSON of one entry, as the status subresource takes it.
    public var json: [String: String] {
        var entry: [String: String] = [:]
        if let ip { entry["ip"] = ip }
        if let hostname { entry["hostname"] = hostname }
        return entry
    }

    static func decode(_ list: ManifestNode) -> [LoadBalancerAddress] {
        list.items.compactMap { item in
            let ip = item["ip"].string, hostname = item["hostname"].string
            return ip == nil && hostname == nil ? nil : LoadBalancerAddress(ip: ip, hostname: hostname)
        }
    }
}

/// What an Ingress controller writes into the `status.loadBalancer.ingress` of the Ingresses it serves,
/// with ingress-nginx's rules (`internal/ingress/status`): the addresses come from
/// `--publish-status-address` (highest precedence) or from the `--publish-service` Service; the lists
/// are sorted before they are compared, so an Ingress is written only when its addresses differ.
public enum IngressStatus {
    /// `--publish-status-address`: comma-separated IPs and hostnames (spaces after commas allowed).
    public static func addresses(publishStatusAddress text: String) -> [LoadBalancerAddress] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .map(LoadBalancerAddress.init(parsing:)).sorted()
    }

    /// `--publish-service`: a LoadBalancer's ingress entries plus its externalIPs not already listed; a
    /// ClusterIP's cluster IP; a NodePort's externalIPs, else its cluster IP; an ExternalName's name.
    public static func addresses(of service: Service) -> [LoadBalancerAddress] {
        var result: [LoadBalancerAddress]
        switch service.type {
        case "LoadBalancer":
            result = service.loadBalancer
            for ip in service.externalIPs where !result.contains(where: { $0.ip == ip }) { result.append(LoadBalancerAddress(ip: ip)) }
        case "NodePort":
            result = service.externalIPs.isEmpty ? service.clusterIP.map { [LoadBalancerAddress(ip: $0)] } ?? [] : service.externalIPs.map { LoadBalancerAddress(ip: $0) }
        case "ExternalName":
            result = service.externalName.map { [LoadBalancerAddress(hostname: $0)] } ?? []
        default:
            result = service.clusterIP.flatMap { $0 == "None" ? nil : [LoadBalancerAddress(ip: $0)] } ?? []
        }
        return result.sorted()
    }

    /// The served Ingresses (`namespace/name`) whose published addresses are not `addresses`.
    public static func outdated(_ ingresses: [Ingress], served: Set<String>, addresses: [LoadBalancerAddress]) -> [Ingress] {
        ingresses.filter { served.contains($0.metadata.key) && $0.loadBalancer.sorted() != addresses }
    }
}

/// `--publish-service NAMESPACE/NAME`: the Service whose addresses go into Ingress status.
public enum PublishService {
    /// `NAMESPACE/NAME`, or nil when the text is not of that form.
    public static func parse(_ text: String) -> (namespace: String, name: String)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return (String(parts[0]), String(parts[1]))
    }
}
