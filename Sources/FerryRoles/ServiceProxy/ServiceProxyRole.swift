import FerryDataplane
import FerryKubernetes
import FerryKubernetesClient
import FerryModel
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// `ferry service-proxy`: kube-proxy's job from Services and EndpointSlices on disk. In iptables and
/// nftables modes the rules are rendered in kube-proxy's layout and applied atomically; manifests are watched and the rules
/// re-synced when they change, at most once per `minSyncPeriod`, and at least every `syncPeriod`.
public enum ServiceProxyRole {
    public enum Mode: String, Sendable, CaseIterable {
        case iptables, nftables, userspace
    }

    public struct Settings: Sendable {
        public var manifests: [String]
        public var mode: Mode = .iptables
        public var options: IPTablesOptions
        public var minSyncPeriod: Duration = .seconds(1)
        public var syncPeriod: Duration = .seconds(30)
        /// Set when the objects come from the API server (list + watch) instead of `manifests`.
        public var caches: KubernetesCaches?
        /// Set when the objects were read once (`ferry rules` on the live cluster).
        public var objects: ManifestSet?

        public init(manifests: [String], options: IPTablesOptions) {
            self.manifests = manifests
            self.options = options
        }
    }

    /// The table and notes for the manifests. Throws `ManifestError` with every problem found.
    public static func translate(_ settings: Settings) throws -> ServiceProxyTranslator.Translation {
        ServiceProxyTranslator.translate(try settings.objects ?? settings.caches?.manifestSet ?? ManifestLoader.load(paths: settings.manifests))
    }

    /// What changes when the objects do: the manifests' stamp, or the caches' generation.
    static func stamp(_ settings: Settings) -> [String] {
        settings.caches.map { ["api", String($0.generation)] } ?? ManifestLoader.stamp(paths: settings.manifests)
    }

    /// What `ferry service-proxy` watches from the API server, narrowed as kube-proxy narrows it: Services and
    /// EndpointSlices not labelled `service.kubernetes.io/service-proxy-name` (another proxy's) or
    /// `service.kubernetes.io/headless`, and the ServiceCIDRs.
    public static let watchedResources = resources(namespaces: [])

    /// The same in the given namespaces only (none: all); ServiceCIDRs are cluster-wide.
    public static func resources(namespaces: [String]) -> [WatchedResource] {
        let selector = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
        var services = WatchedResource.services
        services.labelSelector = selector
        var slices = WatchedResource.endpointSlices
        slices.labelSelector = selector
        return WatchedResource.inNamespaces([services, slices], namespaces) + [.serviceCIDRs]
    }

    /// The rendering options of one family: the ranges of ServiceCIDR objects join `--service-cluster-ip-range`.
    static func options(_ settings: Settings, _ translation: ServiceProxyTranslator.Translation, ipv6: Bool) -> IPTablesOptions {
        var options = settings.options
        for range in translation.serviceCIDRs where !options.serviceCIDRs.contains(range) { options.serviceCIDRs.append(range) }
        return options.forFamily(ipv6: ipv6)
    }

    /// The IP families to write rules for: IPv4 always, IPv6 when a Service port has an IPv6 cluster IP
    /// (or, with `inKernel`, when IPv6 rules of an earlier sync are still there to be updated).
    static func families(_ table: ServicePortTable, mode: Mode, inKernel: Bool = false) -> [Bool] {
        if table.ports.contains(where: \.isIPv6) { return [false, true] }
        guard inKernel else { return [false] }
        switch mode {
        case .nftables:
            return (try? NFTablesApplier.listing(ipv6: true)).map { $0.isEmpty ? [false] : [false, true] } ?? [false]
        default:
            return (try? IPTablesApplier.existingNATChains(ipv6: true))?.contains("KUBE-SERVICES") == true ? [false, true] : [false]
        }
    }

    /// What `--dry-run` prints: the notes, then per IP family in iptables mode the jump rules as `iptables`
    /// would ensure them and the `iptables-restore` input, in nftables mode the `nft -f` transaction.
    public static func dryRun(_ settings: Settings) throws -> String {
        let translation = try translate(settings)
        var text = translation.notes.map { "# note: \($0)\n" }.joined()
        for ipv6 in families(translation.table, mode: settings.mode) {
            let options = ServiceProxyRole.options(settings, translation, ipv6: ipv6)
            if settings.mode == .nftables {
                text += "# nft -f - (one transaction)\(ipv6 ? ", IPv6" : ""):\n" + NFTablesRenderer.render(translation.table, options: options).script
                continue
            }
            let transaction = IPTablesRenderer.render(translation.table, options: options)
            let iptables = IPTablesApplier.tool("iptables", ipv6: ipv6)
            text += "# jump rules, each inserted when missing (\(iptables) -t TABLE -C/-I CHAIN ...):\n"
            for rule in transaction.jumpRules {
                text += "-t \(rule.table) -A \(rule.chain) " + rule.arguments.map(quoted).joined(separator: " ") + "\n"
            }
            text += "# \(iptables)-restore --noflush --counters:\n" + transaction.restoreInput
        }
        return text
    }

    /// `ferry rules explain`: where a packet arriving at the node goes through the rendered rules of its
    /// family. The node's own addresses are `--node-ip` and `--nodeport-addresses`.
    public static func explain(_ settings: Settings, packet: RuleTrace.Packet) throws -> String {
        let translation = try translate(settings)
        let options = ServiceProxyRole.options(settings, translation, ipv6: packet.destination.isIPv6)
        let local = settings.options.nodeIPs + settings.options.nodePortAddresses
        let outcomes: [RuleTrace.Outcome]
        if settings.mode == .nftables {
            outcomes = NFTablesTracer.trace(packet, through: NFTablesRenderer.render(translation.table, options: options).ruleset, localAddresses: local)
        } else {
            outcomes = IPTablesTracer.trace(packet, through: IPTablesRenderer.render(translation.table, options: options), localAddresses: local)
        }
        var text = RuleTrace.describe(outcomes, packet: packet)
        if local.isEmpty { text += "note: without --node-ip no address counts as the node's own, so NodePorts are not followed\n" }
        return text
    }

    /// `ferry rules diff`: what the next sync would change in the kernel (reads the rules in force; needs root).
    public static func diff(_ settings: Settings) throws -> String {
        let translation = try translate(settings)
        var changes: [String] = []
        for ipv6 in families(translation.table, mode: settings.mode, inKernel: true) {
            let options = ServiceProxyRole.options(settings, translation, ipv6: ipv6)
            if settings.mode == .nftables {
                let next = NFTablesRenderer.render(translation.table, options: options)
                let found = NFTablesDiff.diff(current: try NFTablesApplier.listing(ipv6: ipv6), next: try NFTablesApplier.listingAfterLoading(next.script, ipv6: ipv6))
                if !found.isEmpty { changes.append(NFTablesDiff.describe(found, family: NFTablesApplier.family(ipv6: ipv6))) }
                continue
            }
            let save = IPTablesApplier.tool("iptables-save", ipv6: ipv6)
            let saved = try SystemCommand.run(save, [])
            guard saved.status == 0 else { throw SystemCommand.Failure(description: "\(save) failed: \(saved.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) (it needs root)") }
            let transaction = IPTablesRenderer.render(translation.table, options: options, existingNATChains: try IPTablesApplier.existingNATChains(ipv6: ipv6))
            let found = IPTablesDiff.diff(saved: saved.stdout, next: transaction)
            if !found.isEmpty { changes.append((ipv6 ? "# IPv6 (ip6tables)\n" : "") + IPTablesDiff.describe(found)) }
        }
        return changes.isEmpty ? IPTablesDiff.describe([]) : changes.joined()
    }

    /// An argument as a shell or iptables-save would show it: quoted when it has spaces.
    static func quoted(_ argument: String) -> String {
        argument.contains(" ") ? "\"\(argument)\"" : argument
    }

    /// `net.ipv4.conf.all.route_localnet=1`, which localhost NodePorts need (kube-proxy sets it too; the
    /// KUBE-FIREWALL rule keeps other hosts from using it to reach 127.0.0.0/8).
    public static func enableRouteLocalnet(path: String = "/proc/sys/net/ipv4/conf/all/route_localnet") throws {
        do {
            try "1".write(toFile: path, atomically: false, encoding: .utf8)
        } catch {
            throw SystemCommand.Failure(description: "cannot set \(path) to 1 (\(error)); run as root or pass --iptables-localhost-nodeports false")
        }
    }

    /// Removes every rule and chain the iptables and userspace modes install, and the nftables table (when
    /// nft is installed), as `kube-proxy --cleanup` does for all its modes.
    public static func cleanup() throws {
        try IPTablesApplier.cleanup()
        if (try? SystemCommand.path(of: "nft")) != nil { try NFTablesApplier.cleanup() }
    }

    /// Fails at once, naming the package, when a tool the mode writes rules with is missing (instead of
    /// failing every sync).
    public static func checkTools(for mode: Mode) throws {
        switch mode {
        case .nftables:
            _ = try SystemCommand.path(of: "nft", missing: "install the nftables package, or use --mode iptables")
        case .iptables, .userspace:
            for tool in ["iptables", "iptables-save", "iptables-restore"] {
                _ = try SystemCommand.path(of: tool, missing: "install the iptables package")
            }
        }
    }

    /// Removes what the other kernel mode left behind, so that two sets of rules do not compete (kube-proxy
    /// does the same when it starts). Returns what was done, for the log; tools not installed are skipped.
    public static func cleanupOtherMode(than mode: Mode) -> String? {
        switch mode {
        case .nftables:
            guard [false, true].contains(where: { (try? IPTablesApplier.existingNATChains(ipv6: $0))?.contains("KUBE-SERVICES") == true }) else { return nil }
            do {
                try IPTablesApplier.cleanup()
                return "removed the iptables mode's KUBE chains"
            } catch {
                return "could not remove the iptables mode's KUBE chains: \(error)"
            }
        case .iptables:
            guard (try? SystemCommand.path(of: "nft")) != nil,
                  [false, true].contains(where: { (try? NFTablesApplier.listing(ipv6: $0))?.isEmpty == false }) else { return nil }
            do {
                try NFTablesApplier.cleanup()
                return "removed the nftables mode's kube-proxy table"
            } catch {
                return "could not remove the nftables mode's kube-proxy table: \(error)"
            }
        case .userspace:
            return nil
        }
    }
}

/// Keeps the kernel's rules in step with the manifests (iptables and nftables modes).
public final class ServiceProxySyncer: ServiceLifecycle.Service, Sendable {
    let settings: ServiceProxyRole.Settings
    let logger: Logger
    public let status: ServiceProxyStatus

    public init(settings: ServiceProxyRole.Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        self.status = ServiceProxyStatus(healthTimeout: settings.syncPeriod * 2)
    }

    /// Service chains the nftables mode found stale (`ip chain` or `ip6 chain`), and when: they are deleted a
    /// second or more later.
    let staleChains = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])

    /// One sync: translate, render against the chains present, apply, then delete the UDP conntrack entries
    /// that point at endpoints no longer used (compared with `previous`, the table of the last sync). Returns
    /// the table applied and the number of rules written.
    @discardableResult
    public func syncOnce(previous: ServicePortTable? = nil) throws -> (table: ServicePortTable, rules: Int) {
        let started = ContinuousClock.now
        let translation = try ServiceProxyRole.translate(settings)
        var written = (filter: 0, nat: 0, nftables: 0)
        if settings.mode == .nftables { try deleteStaleChains() }
        for ipv6 in ServiceProxyRole.families(translation.table, mode: settings.mode, inKernel: true) {
            let options = ServiceProxyRole.options(settings, translation, ipv6: ipv6)
            if settings.mode == .nftables {
                let family = NFTablesApplier.family(ipv6: ipv6)
                let existing = try NFTablesApplier.existing(ipv6: ipv6)
                let transaction = NFTablesRenderer.render(translation.table, options: options, existingChains: existing.chains, existingSets: existing.sets)
                try NFTablesApplier.run(transaction.script)
                let now = ContinuousClock.now
                staleChains.withLockedValue { stale in
                    // Keys are `family chain`; this sync decides the stale chains of its family afresh.
                    var kept = stale.filter { !$0.key.hasPrefix(family + " ") }
                    for chain in transaction.staleChains { kept[family + " " + chain] = stale[family + " " + chain] ?? now }
                    stale = kept
                }
                written.nftables += transaction.ruleset.ruleCount
            } else {
                let transaction = IPTablesRenderer.render(translation.table, options: options, existingNATChains: try IPTablesApplier.existingNATChains(ipv6: ipv6))
                try IPTablesApplier.apply(transaction, ipv6: ipv6)
                written.filter += transaction.filterRules.count
                written.nat += transaction.natRules.count
            }
        }
        if let previous {
            for arguments in ConntrackCleanup.commands(previous: previous, next: translation.table, node: settings.options.nodeName) {
                // Exit status 1 means no entry matched, which is fine.
                do {
                    let result = try SystemCommand.run("conntrack", arguments, missing: "install the conntrack package")
                    if result.status > 1 { logger.warning("conntrack \(arguments.joined(separator: " ")) failed: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
                } catch {
                    logger.warning("cannot clear stale UDP conntrack entries: \(error)")
                    break
                }
            }
        }
        let rules: ServiceProxyStatus.RuleCount = settings.mode == .nftables ? .nftables(written.nftables) : .iptables(filter: written.filter, nat: written.nat)
        status.recordSuccess(took: ContinuousClock.now - started, rules: rules)
        return (translation.table, written.filter + written.nat + written.nftables)
    }

    /// Deletes the stale chains found a second or more ago (kernels before 6.2 notice late that no map
    /// element points at them any more); a failure leaves them for the next try.
    func deleteStaleChains() throws {
        let due = staleChains.withLockedValue { stale in
            stale.filter { ContinuousClock.now - $0.value >= .seconds(1) }.keys.sorted()
        }
        guard !due.isEmpty else { return }
        for family in ["ip", "ip6"] {
            let chains = due.filter { $0.hasPrefix(family + " ") }.map { String($0.dropFirst(family.count + 1)) }
            if !chains.isEmpty { try NFTablesApplier.run(NFTablesTransaction.deleteChains(chains, family: family)) }
        }
        staleChains.withLockedValue { stale in
            for key in due { stale[key] = nil }
        }
        logger.info("deleted stale nftables chains", metadata: ["chains": "\(due.count)"])
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            var lastStamp: [String]?
            var lastSync = ContinuousClock.now - self.settings.syncPeriod
            var reportedNotes = Set<String>()
            var applied: ServicePortTable?
            while !Task.isCancelled {
                let stamp = ServiceProxyRole.stamp(self.settings)
                let changed = stamp != lastStamp
                if changed || ContinuousClock.now - lastSync >= self.settings.syncPeriod {
                    do {
                        let started = ContinuousClock.now
                        if let notes = try? ServiceProxyRole.translate(self.settings).notes {
                            for note in notes where reportedNotes.insert(note).inserted { self.logger.warning("\(note)") }
                        }
                        let (table, rules) = try self.syncOnce(previous: applied)
                        applied = table
                        self.logger.info("rules synced", metadata: ["rules": "\(rules)", "took": "\(ContinuousClock.now - started)", "reason": "\(changed ? "changed" : "periodic")"])
                    } catch {
                        // The rules in the kernel stay as they were; the next change or period tries again.
                        self.status.recordFailure()
                        self.logger.error("sync failed; the rules in force stay: \(error)")
                    }
                    lastStamp = stamp
                    lastSync = ContinuousClock.now
                }
                if self.settings.mode == .nftables {
                    do { try self.deleteStaleChains() } catch { self.logger.warning("stale nftables chains stay for now: \(error)") }
                }
                try? await Task.sleep(for: self.settings.minSyncPeriod)
            }
        }
    }
}
