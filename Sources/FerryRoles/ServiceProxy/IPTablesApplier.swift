import FerryDataplane
import FerryModel

/// Applies an `IPTablesTransaction` to the kernel as kube-proxy does: the KUBE chains and the jump rules
/// into them are ensured one by one (never replacing other rules of the built-in chains), then the whole
/// filter and nat content goes in with one `iptables-restore --noflush --counters`. IPv6 rules go through
/// the ip6tables tools the same way. Needs CAP_NET_ADMIN.
enum IPTablesApplier {
    /// `iptables` or `ip6tables`, `iptables-save` or `ip6tables-save`...
    static func tool(_ name: String, ipv6: Bool) -> String {
        ipv6 ? "ip6" + name.dropFirst(2) : name
    }

    /// The nat chains that exist now (`iptables-save -t nat`), to find stale service chains.
    static func existingNATChains(ipv6: Bool = false) throws -> Set<String> {
        let save = tool("iptables-save", ipv6: ipv6)
        let saved = try SystemCommand.run(save, ["-t", "nat"])
        guard saved.status == 0 else { throw SystemCommand.Failure(description: "\(save) -t nat failed: \(saved.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        return Set(saved.stdout.split(whereSeparator: \.isNewline).compactMap { line in
            line.hasPrefix(":") ? String(line.dropFirst().prefix { $0 != " " }) : nil
        })
    }

    /// `input`: the restore input to write (a partial sync's); the whole transaction's by default.
    static func apply(_ transaction: IPTablesTransaction, input: String? = nil, ipv6: Bool = false) throws {
        let iptables = tool("iptables", ipv6: ipv6)
        for rule in transaction.jumpRules {
            let target = rule.arguments.last!
            // The chain must exist before a rule can jump to it (`-N` fails harmlessly when it does).
            _ = try SystemCommand.run(iptables, ["-w", "-t", rule.table, "-N", target])
            let check = try SystemCommand.run(iptables, ["-w", "-t", rule.table, "-C", rule.chain] + rule.arguments)
            if check.status != 0 {
                let insert = try SystemCommand.run(iptables, ["-w", "-t", rule.table, "-I", rule.chain] + rule.arguments)
                guard insert.status == 0 else {
                    throw SystemCommand.Failure(description: "\(iptables) -t \(rule.table) -I \(rule.chain) failed: \(insert.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
            }
        }
        let restoreTool = tool("iptables-restore", ipv6: ipv6)
        let restore = try SystemCommand.run(restoreTool, ["-w", "--noflush", "--counters"], input: input ?? transaction.restoreInput)
        guard restore.status == 0 else {
            throw SystemCommand.Failure(description: "\(restoreTool) refused the rules: \(restore.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Removes everything Ferry (or kube-proxy) installed, IPv4 and IPv6 (when ip6tables is installed).
    static func cleanup() throws {
        try cleanup(ipv6: false)
        if (try? SystemCommand.path(of: "ip6tables-restore")) != nil { try cleanup(ipv6: true) }
    }

    /// The jump rules, then the KUBE chains of both tables, of one family.
    static func cleanup(ipv6: Bool) throws {
        let iptables = tool("iptables", ipv6: ipv6)
        for rule in IPTablesRenderer.jumpRules + PortalRenderer.jumpRules {
            while try SystemCommand.run(iptables, ["-w", "-t", rule.table, "-D", rule.chain] + rule.arguments).status == 0 {}
        }
        let nat = try existingNATChains(ipv6: ipv6)
        var lines = ["*nat"]
        let natOwned = nat.filter { ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"].contains($0) || PortalRenderer.chains.contains($0) || ChainNames.isServiceChain($0) }.sorted()
        lines += natOwned.map { ":\($0) - [0:0]" } + natOwned.map { "-X \($0)" } + ["COMMIT"]
        let saved = try SystemCommand.run(tool("iptables-save", ipv6: ipv6), ["-t", "filter"])
        let filter = Set(saved.stdout.split(whereSeparator: \.isNewline).compactMap { $0.hasPrefix(":") ? String($0.dropFirst().prefix { $0 != " " }) : nil })
        let filterOwned = filter.intersection(["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"]).sorted()
        lines += ["*filter"] + filterOwned.map { ":\($0) - [0:0]" } + filterOwned.map { "-X \($0)" } + ["COMMIT"]
        let restoreTool = tool("iptables-restore", ipv6: ipv6)
        let restore = try SystemCommand.run(restoreTool, ["-w", "--noflush"], input: lines.joined(separator: "\n") + "\n")
        guard restore.status == 0 else {
            throw SystemCommand.Failure(description: "\(restoreTool) could not remove the chains: \(restore.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
}
