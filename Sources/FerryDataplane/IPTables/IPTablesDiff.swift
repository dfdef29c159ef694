/// What the next sync would change in the kernel: Ferry's chains and rules in `iptables-save` output
/// compared with a rendered transaction. Rules are compared in a canonical form, because iptables-save
/// prints them in its own order and spelling (`-d 10.96.0.10/32 -p tcp -m comment …`, `--set-xmark`).
public enum IPTablesDiff {
    public struct Change: Sendable, Hashable {
        public var table: String
        /// `+` added, `-` removed.
        public var sign: Character
        public var line: String
    }

    /// Chains of the two tables that Ferry writes (besides per-service chains).
    static let ownedChains: [String: Set<String>] = [
        "filter": ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"],
        "nat": ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"],
    ]

    static func owned(_ chain: String, table: String) -> Bool {
        ownedChains[table]?.contains(chain) == true || (table == "nat" && ChainNames.isServiceChain(chain))
    }

    public static func diff(saved: String, next: IPTablesTransaction) -> [Change] {
        // The current state: chains and rules of Ferry's chains, and jumps into them from the built-in chains.
        var currentChains: [String: Set<String>] = [:]
        var currentRules: [String: [String: String]] = [:]  // table → canonical → line
        var table = ""
        for raw in saved.split(whereSeparator: \.isNewline) {
            let line = String(raw)
            if line.hasPrefix("*") { table = String(line.dropFirst()); continue }
            if line.hasPrefix(":") {
                let chain = String(line.dropFirst().prefix { $0 != " " })
                if owned(chain, table: table) { currentChains[table, default: []].insert(chain) }
                continue
            }
            guard line.hasPrefix("-A ") else { continue }
            let words = RuleTrace.words(line)
            guard words.count > 1 else { continue }
            let target = words.firstIndex(of: "-j").flatMap { $0 + 1 < words.count ? words[$0 + 1] : nil } ?? ""
            if owned(words[1], table: table) || (words[1].uppercased() == words[1] && !words[1].hasPrefix("KUBE-") && owned(target, table: table)) {
                currentRules[table, default: [:]][canonical(line)] = line
            }
        }
        var nextRules: [String: [String: String]] = [:]
        for rule in next.jumpRules {
            let line = "-A \(rule.chain) " + rule.arguments.map { $0.contains(" ") ? "\"\($0)\"" : $0 }.joined(separator: " ")
            nextRules[rule.table, default: [:]][canonical(line)] = line
        }
        for line in next.filterRules where line.hasPrefix("-A ") { nextRules["filter", default: [:]][canonical(line)] = line }
        for line in next.natRules where line.hasPrefix("-A ") { nextRules["nat", default: [:]][canonical(line)] = line }
        let nextChains: [String: Set<String>] = ["filter": Set(next.filterChains), "nat": Set(next.natChains.filter { !next.natRules.contains("-X \($0)") })]

        var changes: [Change] = []
        for t in ["filter", "nat"] {
            for chain in nextChains[t, default: []].subtracting(currentChains[t, default: []]).sorted() { changes.append(Change(table: t, sign: "+", line: ":\(chain)")) }
            for chain in currentChains[t, default: []].subtracting(nextChains[t, default: []]).sorted() { changes.append(Change(table: t, sign: "-", line: ":\(chain)")) }
            let now = currentRules[t, default: [:]], then = nextRules[t, default: [:]]
            for key in Set(then.keys).subtracting(now.keys).sorted() { changes.append(Change(table: t, sign: "+", line: then[key]!)) }
            for key in Set(now.keys).subtracting(then.keys).sorted() { changes.append(Change(table: t, sign: "-", line: now[key]!)) }
        }
        return changes
    }

    /// A rule in a spelling-independent form: its chain, then its options with their values (negations kept,
    /// addresses with a prefix length, marks as `--set-xmark`, probabilities as numbers), sorted.
    static func canonical(_ line: String) -> String {
        let words = RuleTrace.words(line)
        guard words.count >= 2 else { return line }
        var parts: [String] = []
        var i = 2
        var negate = false
        while i < words.count {
            let w = words[i]
            if w == "!" { negate = true; i += 1; continue }
            var key = w
            var value = ""
            let takesValue = w.hasPrefix("-") && i + 1 < words.count && !words[i + 1].hasPrefix("-") && words[i + 1] != "!"
                && !["--rcheck", "--reap", "--set", "--random-fully"].contains(w)
            if takesValue {
                value = words[i + 1]
                i += 1
            }
            switch key {
            case "-s", "-d", "--source", "--destination":
                key = key.count > 2 ? (key == "--source" ? "-s" : "-d") : key
                if !value.contains("/") { value += value.contains(":") ? "/128" : "/32" }
            case "--or-mark": key = "--set-xmark"; value = "\(hex(value))/\(hex(value))"
            case "--xor-mark": key = "--set-xmark"; value = "\(hex(value))/0x0"
            case "--set-xmark", "--mark":
                value = value.split(separator: "/").map { hex(String($0)) }.joined(separator: "/")
            case "--probability": value = Double(value).map { String(format10($0)) } ?? value
            default: break
            }
            parts.append((negate ? "!" : "") + key + "=" + value)
            negate = false
            i += 1
        }
        return words[1] + " " + parts.sorted().joined(separator: " ")
    }

    static func hex(_ text: String) -> String {
        let digits = text.lowercased().hasPrefix("0x") ? String(text.dropFirst(2)) : text
        return UInt64(digits, radix: 16).map { "0x" + String($0, radix: 16) } ?? text
    }

    /// A probability as an integer count of 1e-10 (iptables-save prints 11 decimals, kube-proxy 10).
    static func format10(_ value: Double) -> String {
        String(Int((value * 1e10).rounded()))
    }

    /// The changes as `ferry rules diff` prints them.
    public static func describe(_ changes: [Change]) -> String {
        if changes.isEmpty { return "no changes: the rules in the kernel are what the manifests make\n" }
        var text = ""
        var table = ""
        for change in changes {
            if change.table != table {
                table = change.table
                text += "# \(table)\n"
            }
            text += "\(change.sign) \(change.line)\n"
        }
        return text
    }
}
