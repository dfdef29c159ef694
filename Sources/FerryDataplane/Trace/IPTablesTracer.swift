import FerryModel

/// Follows one packet through rendered iptables rules (the text `IPTablesRenderer` produced, read back) the
/// way the kernel would for a new connection arriving at the node: nat PREROUTING (ClusterIP, external and
/// load-balancer IPs, NodePorts), then, when nothing rewrote it, the filter chains that reject or drop it.
/// Probabilistic jumps split the packet into weighted outcomes, so the answer lists every endpoint it may
/// reach. Pure.
public enum IPTablesTracer {
    public typealias Packet = RuleTrace.Packet
    public typealias Outcome = RuleTrace.Outcome

    /// A rule read back from `-A CHAIN …` text.
    struct Rule {
        var chain: String
        var target: String?
        var comment: String?
        var proto: String?
        var destination: (IPRange, negated: Bool)?
        var source: (IPRange, negated: Bool)?
        var destinationPort: Int?
        var destinationLocal = false
        var sourceLocal = false
        var probability: Double?
        var recentCheck = false
        var dnat: String?
    }

    /// `localAddresses`: the node's own addresses (`-m addrtype --dst-type LOCAL`).
    public static func trace(_ packet: Packet, through transaction: IPTablesTransaction, localAddresses: [IPAddress]) -> [Outcome] {
        let nat = chains(transaction.natRules)
        let filter = chains(transaction.filterRules)
        var outcomes: [Outcome] = []
        walk(packet, chain: "KUBE-SERVICES", in: nat, local: localAddresses, weight: 1, path: ["nat PREROUTING", "KUBE-SERVICES"], masq: false, into: &outcomes)
        // What nat did not rewrite meets the filter chains: the load-balancer firewall, then the REJECT/DROP
        // rules of Services without (local) endpoints.
        var result: [Outcome] = []
        for outcome in outcomes {
            guard outcome.action == "no match" else {
                result.append(outcome)
                continue
            }
            var decided = false
            for chain in ["KUBE-PROXY-FIREWALL", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES"] {
                for rule in filter[chain] ?? [] where matches(rule, packet, local: localAddresses) {
                    if let target = rule.target, target == "REJECT" || target == "DROP" {
                        result.append(Outcome(action: target, probability: outcome.probability, chains: outcome.chains + ["filter \(chain)"], masqueraded: false, reason: rule.comment))
                        decided = true
                        break
                    }
                }
                if decided { break }
            }
            if !decided { result.append(outcome) }
        }
        return result
    }

    /// Sends `weight` of the packet through `chain`; returns the part that fell off its end (back to the caller).
    @discardableResult
    static func walk(_ packet: Packet, chain: String, in table: [String: [Rule]], local: [IPAddress], weight: Double, path: [String], masq: Bool,
                     into outcomes: inout [Outcome]) -> Double {
        var remaining = weight
        var masq = masq
        for rule in table[chain] ?? [] where remaining > 1e-12 && matches(rule, packet, local: local) {
            if rule.recentCheck { continue }  // a new client has no affinity entry yet
            guard let target = rule.target else { continue }
            let taken = remaining * (rule.probability ?? 1)
            if target == "KUBE-MARK-MASQ" {
                masq = true
                continue
            }
            if target == "DNAT", let to = rule.dnat {
                outcomes.append(Outcome(action: "DNAT \(to)", probability: taken, chains: path, masqueraded: masq, reason: nil))
                remaining -= taken
                continue
            }
            if target.hasPrefix("KUBE-") {
                let back = walk(packet, chain: target, in: table, local: local, weight: taken, path: path + [target], masq: masq, into: &outcomes)
                remaining -= taken - back
            }
        }
        if path.count == 2, remaining > 1e-12 {
            outcomes.append(Outcome(action: "no match", probability: remaining, chains: path, masqueraded: false, reason: nil))
            return 0
        }
        return remaining
    }

    static func matches(_ rule: Rule, _ packet: Packet, local: [IPAddress]) -> Bool {
        if let proto = rule.proto, proto != packet.protocol.rawValue { return false }
        if let (range, negated) = rule.destination, range.contains(packet.destination) == negated { return false }
        if let (range, negated) = rule.source, range.contains(packet.source) == negated { return false }
        if let port = rule.destinationPort, port != packet.destinationPort { return false }
        if rule.destinationLocal, !local.contains(packet.destination) { return false }
        if rule.sourceLocal, !local.contains(packet.source) { return false }
        return true
    }

    /// Rules by chain, in order, read from `-A` lines.
    static func chains(_ lines: [String]) -> [String: [Rule]] {
        var result: [String: [Rule]] = [:]
        for line in lines where line.hasPrefix("-A ") {
            let words = RuleTrace.words(line)
            guard words.count >= 2 else { continue }
            var rule = Rule(chain: words[1])
            var i = 2
            var negate = false
            while i < words.count {
                let w = words[i]
                let next = i + 1 < words.count ? words[i + 1] : ""
                switch w {
                case "!": negate = true; i += 1; continue
                case "-j": rule.target = next; i += 1
                case "--comment": rule.comment = next; i += 1
                case "-p": rule.proto = next; i += 1
                case "-d": rule.destination = range(next).map { ($0, negate) }; i += 1
                case "-s": rule.source = range(next).map { ($0, negate) }; i += 1
                case "--dport": rule.destinationPort = Int(next); i += 1
                case "--dst-type": rule.destinationLocal = next == "LOCAL" && !negate; i += 1
                case "--src-type": rule.sourceLocal = next == "LOCAL" && !negate; i += 1
                case "--probability": rule.probability = Double(next); i += 1
                case "--rcheck": rule.recentCheck = true
                case "--to-destination": rule.dnat = next; i += 1
                default: break
                }
                negate = false
                i += 1
            }
            result[rule.chain, default: []].append(rule)
        }
        return result
    }

    /// An address or CIDR of a rule as a range.
    static func range(_ text: String) -> IPRange? {
        IPRange(parsing: text.contains("/") ? text : text + (text.contains(":") ? "/128" : "/32"))
    }

}
