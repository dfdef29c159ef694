import FerryDataplane
import FerryModel
import Logging
import NIOConcurrencyHelpers

/// One kind of kernel rules the service proxy writes (kube-proxy's proxiers: iptables, nftables), with all
/// it does with them: render (what `--dry-run` prints), apply (one sync of one IP family), trace (`ferry
/// rules explain`), diff against the kernel (`ferry rules diff`), and clean up. Callers hold a backend per
/// mode instead of branching on the mode.
protocol RuleBackend: Sendable {
    var mode: ServiceProxyRole.Mode { get }
    /// Fails at once, naming the package, when a tool the mode writes rules with is missing.
    func checkTools() throws
    /// Whether this backend's rules of one family are in the kernel now (false when they cannot be read).
    func installed(ipv6: Bool) -> Bool
    /// The text `--dry-run` prints for one family.
    func render(_ table: ServicePortTable, options: ServiceRuleOptions) -> String
    /// Writes one family's rules; returns what was written. `incremental`: only what changed since the last
    /// sync this backend applied may be written (a backend without partial syncs writes everything).
    func apply(_ table: ServicePortTable, options: ServiceRuleOptions, incremental: Bool) throws -> ServiceProxyStatus.RuleCount
    /// Where a packet goes through one family's rules.
    func trace(_ packet: RuleTrace.Packet, table: ServicePortTable, options: ServiceRuleOptions, localAddresses: [IPAddress]) -> [RuleTrace.Outcome]
    /// What the next sync would change in one family's rules in the kernel; nil when nothing.
    func diff(_ table: ServicePortTable, options: ServiceRuleOptions) throws -> String?
    /// Removes everything this mode installed, both families.
    func cleanup() throws
    /// Work between syncs (nftables: deleting chains found stale a second ago).
    func housekeeping(logger: Logger)
}

extension ServiceProxyRole.Mode {
    /// A new backend for this mode's kernel rules; nil for the userspace mode (it writes redirect rules to
    /// its own listeners, not Service rules).
    func makeBackend() -> (any RuleBackend)? {
        switch self {
        case .iptables: IPTablesBackend()
        case .nftables: NFTablesBackend()
        case .userspace: nil
        }
    }
}

/// kube-proxy's iptables proxier: jump rules ensured one by one, then one `iptables-restore --noflush` —
/// of everything, or (a partial sync, after a change) of the top-level chains and only the service and
/// endpoint chains that changed since the last one applied.
final class IPTablesBackend: RuleBackend {
    var mode: ServiceProxyRole.Mode { .iptables }
    /// The transaction the last successful sync of each family (false: IPv4, true: IPv6) applied.
    let applied = NIOLockedValueBox<[Bool: IPTablesTransaction]>([:])

    func checkTools() throws {
        for tool in ["iptables", "iptables-save", "iptables-restore"] {
            _ = try SystemCommand.path(of: tool, missing: "install the iptables package")
        }
    }

    func installed(ipv6: Bool) -> Bool {
        (try? IPTablesApplier.existingNATChains(ipv6: ipv6))?.contains("KUBE-SERVICES") == true
    }

    func render(_ table: ServicePortTable, options: ServiceRuleOptions) -> String {
        let transaction = IPTablesRenderer.render(table, options: options)
        let iptables = IPTablesApplier.tool("iptables", ipv6: options.isIPv6)
        var text = "# jump rules, each inserted when missing (\(iptables) -t TABLE -C/-I CHAIN ...):\n"
        for rule in transaction.jumpRules {
            text += "-t \(rule.table) -A \(rule.chain) " + rule.arguments.map(ServiceProxyRole.quoted).joined(separator: " ") + "\n"
        }
        return text + "# \(iptables)-restore --noflush --counters:\n" + transaction.restoreInput
    }

    func apply(_ table: ServicePortTable, options: ServiceRuleOptions, incremental: Bool) throws -> ServiceProxyStatus.RuleCount {
        let family = options.isIPv6
        let previous = incremental ? applied.withLockedValue { $0[family] } : nil
        // What the last sync left is known: no need to read the kernel's chains.
        let existing = try previous.map(\.activeNATChains) ?? IPTablesApplier.existingNATChains(ipv6: family)
        let transaction = IPTablesRenderer.render(table, options: options, existingNATChains: existing)
        do {
            try IPTablesApplier.apply(transaction, input: transaction.restoreInput(after: previous), ipv6: family)
        } catch {
            // The kernel's rules are unknown now: the next sync writes them whole.
            applied.withLockedValue { $0[family] = nil }
            throw error
        }
        applied.withLockedValue { $0[family] = transaction }
        return .iptables(filter: transaction.filterRules.count, nat: transaction.natRules.count)
    }

    func trace(_ packet: RuleTrace.Packet, table: ServicePortTable, options: ServiceRuleOptions, localAddresses: [IPAddress]) -> [RuleTrace.Outcome] {
        IPTablesTracer.trace(packet, through: IPTablesRenderer.render(table, options: options), localAddresses: localAddresses)
    }

    func diff(_ table: ServicePortTable, options: ServiceRuleOptions) throws -> String? {
        let save = IPTablesApplier.tool("iptables-save", ipv6: options.isIPv6)
        let saved = try SystemCommand.run(save, [])
        guard saved.status == 0 else { throw SystemCommand.Failure(description: "\(save) failed: \(saved.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) (it needs root)") }
        let transaction = IPTablesRenderer.render(table, options: options, existingNATChains: try IPTablesApplier.existingNATChains(ipv6: options.isIPv6))
        let found = IPTablesDiff.diff(saved: saved.stdout, next: transaction)
        return found.isEmpty ? nil : (options.isIPv6 ? "# IPv6 (ip6tables)\n" : "") + IPTablesDiff.describe(found)
    }

    func cleanup() throws {
        try IPTablesApplier.cleanup()
    }

    func housekeeping(logger: Logger) {}
}

/// kube-proxy's nftables proxier: one `nft -f` transaction per family and sync — the whole table, or (a
/// partial sync, after a change) only the chains and elements that changed since the last one applied;
/// service chains that a sync leaves unused are deleted a second or more later (kernels before 6.2 notice
/// late that no map element points at them any more).
final class NFTablesBackend: RuleBackend {
    var mode: ServiceProxyRole.Mode { .nftables }
    /// Stale chains (`ip chain` or `ip6 chain`) and when they were found.
    let staleChains = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])
    /// The ruleset the last successful sync of each family (`ip`, `ip6`) left in the kernel.
    let applied = NIOLockedValueBox<[String: NFTablesRuleset]>([:])

    func checkTools() throws {
        _ = try SystemCommand.path(of: "nft", missing: "install the nftables package, or use --mode iptables")
    }

    func installed(ipv6: Bool) -> Bool {
        guard (try? SystemCommand.path(of: "nft")) != nil else { return false }
        return (try? NFTablesApplier.listing(ipv6: ipv6))?.isEmpty == false
    }

    func render(_ table: ServicePortTable, options: ServiceRuleOptions) -> String {
        "# nft -f - (one transaction)\(options.isIPv6 ? ", IPv6" : ""):\n" + NFTablesRenderer.render(table, options: options).script
    }

    func apply(_ table: ServicePortTable, options: ServiceRuleOptions, incremental: Bool) throws -> ServiceProxyStatus.RuleCount {
        try deleteStaleChains()
        let family = NFTablesApplier.family(ipv6: options.isIPv6)
        let previous = incremental ? applied.withLockedValue { $0[family] } : nil
        let transaction: NFTablesTransaction
        if let previous {
            // What the last sync left is known: no need to list the kernel's table.
            transaction = NFTablesRenderer.render(table, options: options, existingChains: Set(previous.chains.map(\.name)), existingSets: Set(previous.collections.map(\.name)))
        } else {
            let existing = try NFTablesApplier.existing(ipv6: options.isIPv6)
            transaction = NFTablesRenderer.render(table, options: options, existingChains: existing.chains, existingSets: existing.sets)
        }
        do {
            try NFTablesApplier.run(transaction.script(after: previous))
        } catch {
            // The kernel's table is unknown now: the next sync writes it whole.
            applied.withLockedValue { $0[family] = nil }
            throw error
        }
        applied.withLockedValue { $0[family] = transaction.ruleset }
        let now = ContinuousClock.now
        let active = Set(transaction.ruleset.chains.map(\.name))
        staleChains.withLockedValue { stale in
            // Keys are `family chain`: chains found stale earlier stay due unless this sync uses them again.
            var kept = stale.filter { !$0.key.hasPrefix(family + " ") || !active.contains(String($0.key.dropFirst(family.count + 1))) }
            for chain in transaction.staleChains { kept[family + " " + chain] = stale[family + " " + chain] ?? now }
            stale = kept
        }
        return .nftables(transaction.ruleset.ruleCount)
    }

    func trace(_ packet: RuleTrace.Packet, table: ServicePortTable, options: ServiceRuleOptions, localAddresses: [IPAddress]) -> [RuleTrace.Outcome] {
        NFTablesTracer.trace(packet, through: NFTablesRenderer.render(table, options: options).ruleset, localAddresses: localAddresses)
    }

    func diff(_ table: ServicePortTable, options: ServiceRuleOptions) throws -> String? {
        let next = NFTablesRenderer.render(table, options: options)
        let found = NFTablesDiff.diff(current: try NFTablesApplier.listing(ipv6: options.isIPv6), next: try NFTablesApplier.listingAfterLoading(next.script, ipv6: options.isIPv6))
        return found.isEmpty ? nil : NFTablesDiff.describe(found, family: NFTablesApplier.family(ipv6: options.isIPv6))
    }

    func cleanup() throws {
        try NFTablesApplier.cleanup()
    }

    func housekeeping(logger: Logger) {
        do {
            let deleted = try deleteStaleChains()
            if deleted > 0 { logger.info("deleted stale nftables chains", metadata: ["chains": "\(deleted)"]) }
        } catch {
            logger.warning("stale nftables chains stay for now: \(error)")
        }
    }

    /// Deletes the stale chains found a second or more ago (returns how many); a failure leaves them for
    /// the next try.
    @discardableResult
    func deleteStaleChains() throws -> Int {
        let due = staleChains.withLockedValue { stale in
            stale.filter { ContinuousClock.now - $0.value >= .seconds(1) }.keys.sorted()
        }
        guard !due.isEmpty else { return 0 }
        for family in ["ip", "ip6"] {
            let chains = due.filter { $0.hasPrefix(family + " ") }.map { String($0.dropFirst(family.count + 1)) }
            if !chains.isEmpty { try NFTablesApplier.run(NFTablesTransaction.deleteChains(chains, family: family)) }
        }
        staleChains.withLockedValue { stale in
            for key in due { stale[key] = nil }
        }
        return due.count
    }
}
