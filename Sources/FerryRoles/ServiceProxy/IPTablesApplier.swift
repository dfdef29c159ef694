import FerryDataplane
import FerryModel

/// Applies an `IPTablesTransaction` to the kernel as kube-proxy does: the KUBE chains and the jump rules
/// into them are ensured one by one (never replacing other rules of the built-in chains), then the whole
/// filter and nat content goes in with one `iptables-restore --noflush --counters`. Needs CAP_NET_ADMIN.
enum IPTablesApplier {
    /// The nat chains that exist now (`iptables-save -t nat`), to find stale service chains.
    static func existingNATChains() throws -> Set<String> {
        let saved = try SystemCommand.run("iptables-save", ["-t", "nat"])
        guard saved.status == 0 else { throw SystemCommand.Failure(description: "iptables-save -t nat failed: \(saved.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        return Set(saved.stdout.split(whereSeparator: \.isNewline).compactMap { line in
            line.hasPrefix(":") ? String(line.dropFirst().prefix { $0 != " " }) : nil
        })
    }

    static func apply(_ transaction: IPTablesTransaction) throws {
        for rule in transaction.jumpRules {
            let target = rule.arguments.last!
            // The chain must exist before a rule can jump to it (`-N` fails harmlessly when it does).
            _ = try SystemCommand.run("iptables", ["-w", "-t", rule.table, "-N", target])
            let check = try SystemCommand.run("iptables", ["-w", "-t", rule.table, "-C", rule.chain] + rule.arguments)
            if check.status != 0 {
                let insert = try SystemCommand.run("iptables", ["-w", "-t", rule.table, "-I", rule.chain] + rule.arguments)
                guard insert.status == 0 else {
                    throw SystemCommand.Failure(description: "iptables -t \(rule.table) -I \(rule.chain) failed: \(insert.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
            }
        }
        let restore = try SystemCommand.run("iptables-restore", ["-w", "--noflush", "--counters"], input: transaction.restoreInput)
        guard restore.status == 0 else {
            throw SystemCommand.Failure(description: "iptables-restore refused the rules: \(restore.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Removes everything Ferry (or kube-proxy) installed: the jump rules, then the KUBE chains of both tables.
    static func cleanup() throws {
        for rule in IPTablesRenderer.jumpRules + PortalRenderer.jumpRules {
            while try SystemCommand.run("iptables", ["-w", "-t", rule.table, "-D", rule.chain] + rule.arguments).status == 0 {}
        }
        let nat = try existingNATChains()
        var lines = ["*nat"]
        let natOwned = nat.filter { ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"].contains($0) || PortalRenderer.chains.contains($0) || ChainNames.isServiceChain($0) }.sorted()
        lines += natOwned.map { ":\($0) - [0:0]" } + natOwned.map { "-X \($0)" } + ["COMMIT"]
        let saved = try SystemCommand.run("iptables-save", ["-t", "filter"])
        let filter = Set(saved.stdout.split(whereSeparator: \.isNewline).compactMap { $0.hasPrefix(":") ? String($0.dropFirst().prefix { $0 != " " }) : nil })
        let filterOwned = filter.intersection(["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"]).sorted()
        lines += ["*filter"] + filterOwned.map { ":\($0) - [0:0]" } + filterOwned.map { "-X \($0)" } + ["COMMIT"]
        let restore = try SystemCommand.run("iptables-restore", ["-w", "--noflush"], input: lines.joined(separator: "\n") + "\n")
        guard restore.status == 0 else {
            throw SystemCommand.Failure(description: "iptables-restore could not remove the chains: \(restore.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
}
