import Crypto
import FerryModel

/// kube-proxy's chain names, so that rules Ferry writes look exactly like the ones operators know:
/// `KUBE-SVC-` + the first 16 characters of base32(sha256(servicePortName + protocol)), and `KUBE-SEP-` the
/// same over servicePortName + protocol + `ip:port`.
public enum ChainNames {
    public static func service(_ port: ProxiedServicePort) -> String { "KUBE-SVC-" + hash16(port) }
    public static func serviceLocal(_ port: ProxiedServicePort) -> String { "KUBE-SVL-" + hash16(port) }
    public static func external(_ port: ProxiedServicePort) -> String { "KUBE-EXT-" + hash16(port) }
    public static func firewall(_ port: ProxiedServicePort) -> String { "KUBE-FW-" + hash16(port) }
    public static func endpoint(_ port: ProxiedServicePort, _ endpoint: ProxiedEndpoint) -> String {
        "KUBE-SEP-" + hash16(port.name + port.protocol.rawValue + endpoint.hostPort)
    }

    /// Whether a chain is a per-service or per-endpoint chain Ferry (or kube-proxy) writes.
    public static func isServiceChain(_ name: String) -> Bool {
        ["KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-FW-", "KUBE-EXT-"].contains { name.hasPrefix($0) }
    }

    static func hash16(_ port: ProxiedServicePort) -> String {
        hash16(port.name + port.protocol.rawValue)
    }

    static func hash16(_ text: String) -> String {
        String(Base32.standard(Array(SHA256.hash(data: Array(text.utf8)))).prefix(16))
    }
}

/// RFC 4648 base32 with the standard alphabet and padding (Go's `base32.StdEncoding`).
enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func standard(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 4) / 5 * 8)
        var index = 0
        while index < bytes.count {
            let count = min(5, bytes.count - index)
            var bits: UInt64 = 0
            for i in 0..<5 { bits = bits << 8 | UInt64(i < count ? bytes[index + i] : 0) }
            // 1 to 5 bytes make 2, 4, 5, 7 or 8 symbols; the rest of the 8 is padding.
            let symbols = [2, 4, 5, 7, 8][count - 1]
            for i in 0..<8 {
                out.append(i < symbols ? alphabet[Int((bits >> UInt64(35 - i * 5)) & 31)] : UInt8(ascii: "="))
            }
            index += 5
        }
        return String(decoding: out, as: UTF8.self)
    }
}
