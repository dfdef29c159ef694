import FerryModel

/// What the rule tracers (`IPTablesTracer`, `NFTablesTracer`) take and give: a packet of a new connection
/// arriving at the node, and the outcomes it may have, each with its probability, the chains passed, and
/// why it ended where it did.
public enum RuleTrace {
    public struct Packet: Sendable, Hashable {
        public var source: IPAddress
        public var destination: IPAddress
        public var destinationPort: Int
        public var `protocol`: TransportProtocol

        public init(source: IPAddress, destination: IPAddress, destinationPort: Int, protocol: TransportProtocol) {
            self.source = source
            self.destination = destination
            self.destinationPort = destinationPort
            self.protocol = `protocol`
        }
    }

    public struct Outcome: Sendable, Hashable {
        /// `DNAT 10.180.0.1:80`, `REJECT`, `DROP`, or `no match`.
        public var action: String
        public var probability: Double
        /// The chains passed, in order.
        public var chains: [String]
        /// Marked for masquerading (the source is rewritten on the way out).
        public var masqueraded: Bool
        /// The comment of the deciding rule (why it was rejected or dropped).
        public var reason: String?
    }

    /// The outcomes as `ferry rules explain` prints them.
    public static func describe(_ outcomes: [Outcome], packet: Packet) -> String {
        var text = "packet \(packet.protocol.rawValue) \(packet.source) → \(packet.destination):\(packet.destinationPort)\n"
        let byChains = Dictionary(grouping: outcomes, by: { $0.chains })
        for chains in byChains.keys.sorted(by: { $0.joined() < $1.joined() }) {
            text += "  via " + chains.joined(separator: " → ") + "\n"
            for o in byChains[chains]! {
                var line = "    \(o.action)"
                if o.action.hasPrefix("DNAT") || outcomes.count > 1 { line += " p=" + String(format4(o.probability)) }
                if o.masqueraded { line += " (masqueraded)" }
                if let reason = o.reason { line += " — \(reason)" }
                text += line + "\n"
            }
        }
        return text
    }

    /// Words of a rule as iptables or nft write it: a double-quoted string (an iptables comment) is one
    /// word without its quotes; `{ … }` (an nft set or verdict map) is one word with its braces.
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quoted = false
        var depth = 0
        for c in text {
            if c == "\"" { quoted.toggle(); continue }
            if c == "{" { depth += 1 }
            if c == "}" { depth -= 1 }
            if c == " " && !quoted && depth == 0 {
                if !current.isEmpty { words.append(current) }
                current = ""
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// `0.5000`: four decimals.
    static func format4(_ value: Double) -> String {
        let scaled = Int((value * 10_000).rounded())
        let fraction = String(scaled % 10_000)
        return "\(scaled / 10_000)." + String(repeating: "0", count: 4 - fraction.count) + fraction
    }
}
