/// The grammar of a `Host` field (RFC 9110 §7.2, RFC 3986 §3.2.2): `uri-host [ ":" port ]`, where the host
/// is a reg-name or a bracketed IPv6 literal. Anything else — spaces, user information (`@`), two ports, a
/// port that is not a number — is refused with 400 on every listener, before any routing or policy.
public enum HostHeader {
    /// What is wrong with `value`, or nil when it is a valid Host (an empty one included: RFC 9112 §3.2).
    public static func problem(_ value: Substring) -> String? {
        let bytes = value.utf8
        guard !bytes.isEmpty else { return nil }
        var host = value
        var port: Substring?
        if bytes.first == UInt8(ascii: "[") {
            guard let close = value.firstIndex(of: "]") else { return "an IPv6 literal in Host lacks its closing \"]\"" }
            let inside = value[value.index(after: value.startIndex)..<close]
            guard !inside.contains("%"), let address = IPAddress(parsing: inside), address.isIPv6 else {
                return "the bracketed host in Host is not an IPv6 address"
            }
            let rest = value[value.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else { return "Host has characters after its IPv6 literal" }
                port = rest.dropFirst()
            }
            host = value[...close]
        } else {
            if let colon = value.firstIndex(of: ":") {
                host = value[..<colon]
                port = value[value.index(after: colon)...]
            }
            if let problem = regNameProblem(host) { return problem }
        }
        if let port {
            guard !port.isEmpty, port.utf8.count <= 5, port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let number = Int(port), number <= 65535 else {
                return "the port in Host must be a number from 0 to 65535 (one port only)"
            }
        }
        return nil
    }

    /// A reg-name's characters (unreserved, sub-delims, percent-encoded) and no empty label; one trailing
    /// dot (the root) is allowed.
    private static func regNameProblem(_ host: Substring) -> String? {
        if host.isEmpty { return "Host has a port but no host" }
        var labelLength = 0
        for b in host.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
                UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
                UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
                labelLength += 1
            case UInt8(ascii: "."):
                if labelLength == 0 { return "Host has an empty label (\"..\" or a leading dot)" }
                labelLength = 0
            case UInt8(ascii: "@"):
                return "Host must not carry user information (\"@\")"
            default:
                return "Host has a character a host name cannot have (space, control, \"/\", \"\\\\\", non-ASCII...)"
            }
        }
        return nil
    }
}
