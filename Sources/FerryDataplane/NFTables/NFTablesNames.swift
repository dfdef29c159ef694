import Crypto
import FerryModel

/// kube-proxy's nftables names (`pkg/proxy/nftables/proxier.go`): a prefix, then the first 8 characters of
/// base32(sha256(name)), `-`, and the readable name itself, `ns/svc/proto/port` for a Service port and
/// `ns/svc/proto/port__ip/port` for an endpoint (IPv6 colons become dots), cut to 240 characters with `...`.
public enum NFTablesNames {
    public static let table = "kube-proxy"

    public static func service(_ port: ProxiedServicePort) -> String { "service-" + base(port) }
    public static func serviceLocal(_ port: ProxiedServicePort) -> String { "local-" + base(port) }
    public static func external(_ port: ProxiedServicePort) -> String { "external-" + base(port) }
    public static func firewall(_ port: ProxiedServicePort) -> String { "firewall-" + base(port) }
    public static func endpoint(_ port: ProxiedServicePort, _ endpoint: ProxiedEndpoint) -> String { "endpoint-" + base(port, endpoint) }
    public static func affinity(_ port: ProxiedServicePort, _ endpoint: ProxiedEndpoint) -> String { "affinity-" + base(port, endpoint) }

    /// Per-service and per-endpoint chains are the only ones with a `/` in their names.
    public static func isServiceChain(_ name: String) -> Bool { name.contains("/") }
    public static func isAffinitySet(_ name: String) -> Bool { name.hasPrefix("affinity-") }

    static func base(_ port: ProxiedServicePort) -> String {
        hashAndTruncate("\(port.namespace)/\(port.service)/\(port.protocol.rawValue)/\(port.portName)")
    }

    static func base(_ port: ProxiedServicePort, _ endpoint: ProxiedEndpoint) -> String {
        let ip = String(endpoint.ip.description.map { $0 == ":" ? "." : $0 })
        return hashAndTruncate("\(port.namespace)/\(port.service)/\(port.protocol.rawValue)/\(port.portName)__\(ip)/\(endpoint.port)")
    }

    /// nftables names are at most 256 characters; kube-proxy keeps 16 for its prefixes.
    static let baseLengthMax = 256 - 16

    static func hashAndTruncate(_ name: String) -> String {
        let hashed = String(Base32.standard(Array(SHA256.hash(data: Array(name.utf8)))).prefix(8)) + "-" + name
        return hashed.count > baseLengthMax ? String(hashed.prefix(baseLengthMax - 3)) + "..." : hashed
    }
}
