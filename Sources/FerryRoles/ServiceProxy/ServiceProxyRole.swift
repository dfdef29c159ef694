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
        public var options: ServiceRuleOptions
        public var minSyncPeriod: Duration = .seconds(1)
        public var syncPeriod: Duration = .seconds(30)
        /// Set when the objects come from the API server (list + watch) instead of `manifests`.
        public var caches: KubernetesCaches?
        /// Set when the objects were read once (`ferry rules` on the live cluster).
        public var objects: ManifestSet?

        public init(manifests: [String], options: ServiceRuleOptions) {
            self.manifests = manifests
            self.options = options
        }
    }

    /// The table and notes for the manifests. Throws `ManifestError` with every problem found.
    public static func translate(_ settings: Settings) throws -> ServiceProxyTranslator.Translation {
        ServiceProxyTranslator.translate(try settings.objects ?? objects(settings).read())
    }

    /// Where the objects come from: the API's caches, or the manifest files.
    static func objects(_ settings: Settings) -> KubernetesObjectSource.Objects {
        settings.caches.map { .cluster($0, server: "the API server") } ?? .files(settings.manifests)
    }

    /// What changes when the objects do: the manifests' stamp, or the caches' generation.
    static func stamp(_ settings: Settings) -> [String] {
        objects(settings).stamp()
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
    static func options(_ settings: Settings, _ translation: ServiceProxyTranslator.Translation, ipv6: Bool) -> ServiceRuleOptions {
        var options = settings.options
        for range in translation.serviceCIDRs where !options.serviceCIDRs.contains(range) { options.serviceCIDRs.append(range) }
        return options.forFamily(ipv6: ipv6)
    }

    /// The IP families to write rules for: IPv4 always, IPv6 when a Service port has an IPv6 cluster IP
    /// (or, with `inKernel`, when IPv6 rules of an earlier sync are still there to be updated).
    static func families(_ table: ServicePortTable, backend: any RuleBackend, inKernel: Bool = false) -> [Bool] {
        if table.ports.contains(where: \.isIPv6) { return [false, true] }
        return inKernel && backend.installed(ipv6: true) ? [false, true] : [false]
    }

    /// The kernel-rule backend of an iptables or nftables `settings.mode`.
    static func backend(_ settings: Settings) throws -> any RuleBackend {
        guard let backend = settings.mode.makeBackend() else {
            throw ServiceProxyRunner.Failure(description: "the userspace mode writes no Service rules; use --mode iptables or nftables")
        }
        return backend
    }

    /// What `--dry-run` prints: the notes, then per IP family in iptables mode the jump rules as `iptables`
    /// would ensure them and the `iptables-restore` input, in nftables mode the `nft -f` transaction.
    public static func dryRun(_ settings: Settings) throws -> String {
        let translation = try translate(settings)
        let backend = try backend(settings)
        var text = translation.notes.map { "# note: \($0)\n" }.joined()
        for ipv6 in families(translation.table, backend: backend) {
            text += backend.render(translation.table, options: options(settings, translation, ipv6: ipv6))
        }
        return text
    }

    /// `ferry rules explain`: where a packet arriving at the node goes through the rendered rules of its
    /// family. The node's own addresses are `--node-ip` and `--nodeport-addresses`.
    public static func explain(_ settings: Settings, packet: RuleTrace.Packet) throws -> String {
        let translation = try translate(settings)
        let local = settings.options.nodeIPs + settings.options.nodePortAddresses
        let outcomes = try backend(settings).trace(packet, table: translation.table, options: options(settings, translation, ipv6: packet.destination.isIPv6), localAddresses: local)
        var text = RuleTrace.describe(outcomes, packet: packet)
        if local.isEmpty { text += "note: without --node-ip no address counts as the node's own, so NodePorts are not followed\n" }
        return text
    }

    /// `ferry rules diff`: what the next sync would change in the kernel (reads the rules in force; needs root).
    public static func diff(_ settings: Settings) throws -> String {
        let translation = try translate(settings)
        let backend = try backend(settings)
        let changes = try families(translation.table, backend: backend, inKernel: true).compactMap { ipv6 in
            try backend.diff(translation.table, options: options(settings, translation, ipv6: ipv6))
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
        try IPTablesBackend().cleanup()
        if (try? SystemCommand.path(of: "nft")) != nil { try NFTablesBackend().cleanup() }
    }

    /// Fails at once, naming the package, when a tool the mode writes rules with is missing (instead of
    /// failing every sync). The userspace mode's redirect rules are iptables rules.
    public static func checkTools(for mode: Mode) throws {
        try (mode.makeBackend() ?? IPTablesBackend()).checkTools()
    }

    /// Removes what the other kernel mode left behind, so that two sets of rules do not compete (kube-proxy
    /// does the same when it starts). Returns what was done, for the log; tools not installed are skipped.
    public static func cleanupOtherMode(than mode: Mode) -> String? {
        guard mode != .userspace else { return nil }
        let other: any RuleBackend = mode == .iptables ? NFTablesBackend() : IPTablesBackend()
        guard [false, true].contains(where: { other.installed(ipv6: $0) }) else { return nil }
        let what = other.mode == .iptables ? "the iptables mode's KUBE chains" : "the nftables mode's kube-proxy table"
        do {
            try other.cleanup()
            return "removed \(what)"
        } catch {
            return "could not remove \(what): \(error)"
        }
    }
}

/// Keeps the kernel's rules in step with the objects (iptables and nftables modes, through the mode's
/// `RuleBackend`), as kube-proxy's bounded-frequency runner does: a change syncs at most once per
/// `minSyncPeriod`, and everything is re-synced at least every `syncPeriod`.
public final class ServiceProxySyncer: ServiceLifecycle.Service, Sendable {
    let settings: ServiceProxyRole.Settings
    let backend: any RuleBackend
    let logger: Logger
    public let status: ServiceProxyStatus

    public init(settings: ServiceProxyRole.Settings, logger: Logger) {
        self.settings = settings
        self.backend = settings.mode.makeBackend() ?? IPTablesBackend()
        self.logger = logger
        self.status = ServiceProxyStatus(healthTimeout: settings.syncPeriod * 2)
    }

    /// One sync: translate, apply each family through the backend, then delete the UDP conntrack entries
    /// that point at endpoints no longer used (compared with `previous`, the table of the last sync). Returns
    /// the table applied and the number of rules written.
    @discardableResult
    public func syncOnce(previous: ServicePortTable? = nil) throws -> (table: ServicePortTable, rules: Int) {
        let (table, rules, _) = try sync(previous: previous, incremental: false)
        return (table, rules)
    }

    /// `syncOnce`, with the translation's notes; `incremental` lets the backend write only what changed.
    func sync(previous: ServicePortTable?, incremental: Bool) throws -> (table: ServicePortTable, rules: Int, notes: [String]) {
        let started = ContinuousClock.now
        let translation = try ServiceProxyRole.translate(settings)
        var written: ServiceProxyStatus.RuleCount = settings.mode == .nftables ? .nftables(0) : .iptables(filter: 0, nat: 0)
        for ipv6 in ServiceProxyRole.families(translation.table, backend: backend, inKernel: true) {
            written = written + (try backend.apply(translation.table, options: ServiceProxyRole.options(settings, translation, ipv6: ipv6), incremental: incremental))
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
        status.recordSuccess(took: ContinuousClock.now - started, rules: written)
        return (translation.table, written.total, translation.notes)
    }

    /// Syncs with kube-proxy's bounded-frequency runner: a change of the objects is a partial sync, at most
    /// once per `minSyncPeriod`; every `syncPeriod` a full one.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastStamp: [String]?
            var reportedNotes = Set<String>()
            var applied: ServicePortTable?
            let runner = BoundedFrequencyRunner(minInterval: self.settings.minSyncPeriod, maxInterval: self.settings.syncPeriod)
            await runner.run(changed: {
                let stamp = ServiceProxyRole.stamp(self.settings)
                defer { lastStamp = stamp }
                return stamp != lastStamp
            }, sync: { periodic in
                let started = ContinuousClock.now
                // A change is a partial sync; the periodic one rewrites everything (as kube-proxy does).
                let partial = !periodic && applied != nil
                do {
                    let (table, rules, notes) = try self.sync(previous: applied, incremental: partial)
                    for note in notes where reportedNotes.insert(note).inserted { self.logger.warning("\(note)") }
                    applied = table
                    self.logger.info("rules synced", metadata: ["rules": "\(rules)", "took": "\(ContinuousClock.now - started)", "reason": "\(periodic ? "periodic" : "changed")", "partial": "\(partial)"])
                } catch {
                    // The rules in the kernel stay as they were; the next change or period tries again, in full.
                    applied = nil
                    self.status.recordFailure()
                    self.logger.error("sync failed; the rules in force stay: \(error)")
                }
            }, between: {
                self.backend.housekeeping(logger: self.logger)
            })
        }
    }
}
