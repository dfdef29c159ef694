import FerryModel

/// What the next sync would change in the kernel's `kube-proxy` table. Both sides are `nft list table`
/// output — the current table, and the next one as nft itself prints it after loading the rendered
/// transaction into an empty network namespace — so spelling differences cannot show up as changes.
/// Entries of the affinity sets (clients remembered at run time) are not compared.
public enum NFTablesDiff {
    public struct Change: Sendable, Hashable {
        /// `+` added, `-` removed.
        public var sign: Character
        /// `chain services`, `rule services: ip daddr . …`, `element service-ips: 172.30.0.41 . tcp . 80 : goto …`.
        public var line: String
    }

    public static func diff(current: String, next: String) -> [Change] {
        let now = Set(items(current)), then = Set(items(next))
        return then.subtracting(now).sorted().map { Change(sign: "+", line: $0) } + now.subtracting(then).sorted().map { Change(sign: "-", line: $0) }
    }

    /// The listing as comparable items: each chain, set and map with its properties, each rule with its
    /// chain, each element with its set or map.
    static func items(_ listing: String) -> [String] {
        var result: [String] = []
        var block: (kind: String, name: String)?
        var elements: String?
        for raw in listing.split(separator: "\n") {
            let line = String(raw.trimmingSpaces)
            if var pending = elements {
                pending += " " + line
                if depth(pending) == 0 {
                    result += split(pending).map { "element \(block!.name): \($0)" }
                    elements = nil
                } else {
                    elements = pending
                }
                continue
            }
            let words = line.split(separator: " ").map(String.init)
            if ["chain", "set", "map"].contains(words.first ?? ""), line.hasSuffix("{"), words.count >= 2 {
                block = (words[0], words[1])
                result.append("\(words[0]) \(words[1])")
                continue
            }
            guard let current = block else { continue }
            if line == "}" {
                block = nil
                continue
            }
            if current.kind == "chain" {
                if line.hasPrefix("type ") || line.hasPrefix("comment ") { result.append("chain \(current.name): \(line)") } else if !line.isEmpty { result.append("rule \(current.name): \(line)") }
            } else if line.hasPrefix("elements = {") {
                if NFTablesNames.isAffinitySet(current.name) { continue }
                let text = String(line.dropFirst("elements = ".count))
                if depth(text) == 0 { result += split(text).map { "element \(current.name): \($0)" } } else { elements = text }
            } else if !line.isEmpty, !line.hasPrefix("size ") || !NFTablesNames.isAffinitySet(current.name) {
                result.append("\(current.kind) \(current.name): \(line)")
            }
        }
        return result
    }

    static func depth(_ text: String) -> Int {
        text.reduce(0) { $0 + ($1 == "{" ? 1 : $1 == "}" ? -1 : 0) }
    }

    /// `{ a, b }` → [a, b] (commas inside quotes kept).
    static func split(_ braces: String) -> [String] {
        let inner = braces.drop { $0 != "{" }.dropFirst().reversed().drop { $0 != "}" }.dropFirst().reversed()
        var parts: [String] = []
        var current = ""
        var quoted = false
        for c in inner {
            if c == "\"" { quoted.toggle() }
            if c == "," && !quoted {
                parts.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current)
        return parts.map { String($0.trimmingSpaces) }.filter { !$0.isEmpty }
    }

    /// The changes as `ferry rules diff` prints them.
    public static func describe(_ changes: [Change], family: String = "ip") -> String {
        if changes.isEmpty { return "no changes: the rules in the kernel are what the manifests make\n" }
        return "# nftables table \(family) kube-proxy\n" + changes.map { "\($0.sign) \($0.line)\n" }.joined()
    }
}
