import FerryModel

/// Follows one packet of a new connection arriving at the node through a rendered `NFTablesRuleset`, the
/// way the kernel's hooks would run kube-proxy's table: `filter-prerouting-pre-dnat` (load-balancer source
/// ranges), `nat-prerouting` (the `service-ips` and `service-nodeports` dispatch, the random spread over
/// endpoints), then, when nothing rewrote it, `filter-input` or `filter-forward` (Services without
/// endpoints, invalid ClusterIP ports). `numgen random` splits the packet into weighted outcomes. Pure; it
/// reads the rules kube-proxy's grammar writes, nothing more.
public enum NFTablesTracer {
    /// `localAddresses`: the node's own addresses (`fib daddr type local`).
    public static func trace(_ packet: RuleTrace.Packet, through ruleset: NFTablesRuleset, localAddresses: [IPAddress]) -> [RuleTrace.Outcome] {
        var walker = Walker(packet: packet, ruleset: ruleset, local: localAddresses)
        let admitted = walker.run("filter-prerouting-pre-dnat", weight: 1, path: ["filter-prerouting-pre-dnat"])
        let notRewritten = walker.run("nat-prerouting", weight: admitted, path: ["nat-prerouting"])
        // What nat did not rewrite meets the filter chains of its destination: the node itself or forwarded.
        let filterChain = localAddresses.contains(packet.destination) ? "filter-input" : "filter-forward"
        let unmatched = walker.run(filterChain, weight: notRewritten, path: [filterChain])
        var outcomes = walker.outcomes
        if unmatched > 1e-12 {
            outcomes.append(.init(action: "no match", probability: unmatched, chains: ["nat-prerouting", "services"], masqueraded: false, reason: nil))
        }
        return outcomes
    }

    struct Walker {
        let packet: RuleTrace.Packet
        let ruleset: NFTablesRuleset
        let local: [IPAddress]
        var outcomes: [RuleTrace.Outcome] = []

        /// Sends `weight` of the packet through a base chain; returns the part it accepts (falls off the end).
        mutating func run(_ chain: String, weight: Double, path: [String]) -> Double {
            guard weight > 1e-12 else { return 0 }
            let result = walk(chain, weight: weight, path: path, masq: false)
            return result.continued + result.returned
        }

        /// The part that falls off the end of `chain` (back to where it was jumped from) and the part a
        /// `goto` inside it handed on that came back (also to the caller).
        mutating func walk(_ chain: String, weight: Double, path: [String], masq: Bool) -> (continued: Double, returned: Double) {
            var remaining = weight
            var returned = 0.0
            var masq = masq
            for rule in ruleset.chain(chain)?.rules ?? [] where remaining > 1e-12 {
                guard let (verdict, reason) = evaluate(rule) else { continue }
                switch verdict {
                case .jump("mark-for-masquerade"):
                    masq = true
                case .jump(let target), .goto(let target):
                    let back = walk(target, weight: remaining, path: path + [target], masq: masq)
                    if case .jump = verdict {
                        remaining = back.continued + back.returned
                    } else {
                        returned += back.continued + back.returned
                        remaining = 0
                    }
                case .split(let targets):
                    let share = remaining / Double(targets.count)
                    for target in targets {
                        let back = walk(target, weight: share, path: path + [target], masq: masq)
                        returned += back.continued + back.returned
                    }
                    remaining = 0
                case .dnat(let to):
                    outcomes.append(.init(action: "DNAT \(to)", probability: remaining, chains: path, masqueraded: masq, reason: nil))
                    remaining = 0
                case .drop, .reject:
                    outcomes.append(.init(action: verdict == .drop ? "DROP" : "REJECT", probability: remaining, chains: path, masqueraded: false, reason: reason ?? rule.comment ?? firewallReason(chain)))
                    remaining = 0
                case .returnToCaller:
                    return (remaining, returned)
                case .none:
                    break
                }
            }
            return (remaining, returned)
        }

        func firewallReason(_ chain: String) -> String? {
            chain.hasPrefix("firewall-") ? "the source is outside the loadBalancerSourceRanges (\(chain))" : nil
        }

        enum Verdict: Equatable {
            case jump(String), goto(String), split([String]), dnat(String), drop, reject, returnToCaller, none
        }

        /// The verdict the rule gives this packet, with the reason a map element states; nil when it does not match.
        func evaluate(_ rule: NFTablesRuleset.Rule) -> (Verdict, String?)? {
            let t = RuleTrace.words(rule.text)
            var i = 0
            func word(_ k: Int) -> String { i + k < t.count ? t[i + k] : "" }
            while i < t.count {
                switch t[i] {
                case "ct":
                    i += 3  // `ct state new`: the traced packet opens a connection
                case "ip" where word(2) == ".", "ip6" where word(2) == ".":
                    // `ip daddr . meta l4proto . th dport vmap @map`
                    return lookup(String(word(9).dropFirst()), key: "\(packet.destination) . \(packet.protocol.rawValue) . \(packet.destinationPort)")
                case "ip", "ip6":
                    let address = word(1) == "saddr" ? packet.source : packet.destination
                    var k = 2
                    let negated = word(k) == "!="
                    if negated { k += 1 }
                    guard contains(word(k), address) != negated else { return nil }
                    i += k + 1
                case "fib":
                    let address = word(1) == "saddr" ? packet.source : packet.destination
                    guard local.contains(address) else { return nil }
                    i += 4
                case "meta" where word(2) == ".":
                    // `meta l4proto . th dport vmap @map`
                    return lookup(String(word(6).dropFirst()), key: "\(packet.protocol.rawValue) . \(packet.destinationPort)")
                case "meta":
                    guard word(2) == packet.protocol.rawValue else { return nil }
                    i += 3
                case "numgen":
                    // `numgen random mod N vmap { 0 : goto A , 1 : goto B }`
                    let inner = RuleTrace.words(String(word(5).dropFirst().dropLast()))
                    let targets = inner.indices.compactMap { inner[$0] == "goto" && $0 + 1 < inner.count ? inner[$0 + 1] : nil }
                    return (.split(targets), nil)
                case "jump": return (.jump(word(1)), nil)
                case "goto": return (.goto(word(1)), nil)
                case "drop": return (.drop, nil)
                case "reject": return (.reject, nil)
                case "return": return (.returnToCaller, nil)
                case "dnat": return (.dnat(word(2)), nil)
                default:
                    return (.none, nil)  // mark, masquerade, update: no say in where the packet goes
                }
            }
            return (.none, nil)
        }

        /// A verdict-map lookup: the element's verdict, or no match.
        func lookup(_ map: String, key: String) -> (Verdict, String?)? {
            guard let element = ruleset.collection(map)?.elements.first(where: { $0.key == key }), let value = element.value else { return nil }
            let words = value.split(separator: " ").map(String.init)
            switch words.first {
            case "goto" where words[1] == "reject-chain":
                return (.reject, element.comment.map { "\($0) has no endpoints" })
            case "goto": return (.goto(words[1]), nil)
            case "jump": return (.jump(words[1]), nil)
            case "drop": return (.drop, element.comment.map { "\($0) has no local endpoints" })
            default: return nil
            }
        }

        /// Whether `address` is in `@set` (affinity sets hold no entry for a new client), `{ a, b }`, or a
        /// single address or CIDR.
        func contains(_ operand: String, _ address: IPAddress) -> Bool {
            if operand.hasPrefix("@") {
                return ruleset.collection(String(operand.dropFirst()))?.elements.contains { range($0.key)?.contains(address) == true } ?? false
            }
            let items = operand.hasPrefix("{") ? operand.dropFirst().dropLast().split(separator: ",").map { String($0.trimmingSpaces) } : [operand]
            return items.contains { range($0)?.contains(address) == true }
        }

        func range(_ text: String) -> IPRange? {
            IPRange(parsing: text.contains("/") ? text : text + (text.contains(":") ? "/128" : "/32"))
        }
    }

}
