import FerryDataplane
import FerryKubernetes
import FerryModel
import FerryProxy
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// `ferry service-proxy --mode userspace`: every TCP Service port becomes a `tcp_proxy` listener of Ferry's
/// own data plane (a free port on all addresses; the NodePort itself for NodePort Services), balanced over
/// the Service's endpoints, and redirect rules send connections for the cluster and external IPs to it.
/// UDP Service ports get a `udp_proxy` listener the same way. Works wherever a process can listen; the rules
/// need root.
public enum UserspaceMode {
    static func listenerName(_ port: ProxiedServicePort) -> String { "svc \(port.name)/\(port.protocol.rawValue)" }
    static func nodePortListenerName(_ port: ProxiedServicePort) -> String { "nodeport \(port.name)/\(port.protocol.rawValue)" }
    static func hostListenerName(_ port: ProxiedServicePort) -> String { "host \(port.name)/\(port.protocol.rawValue)" }

    /// The configuration for a table: listeners and clusters, plus notes on what is not served.
    public static func snapshot(_ table: ServicePortTable, node: String, version: Int, source: String) -> ConfigSnapshot {
        var listeners: [Listener] = []
        var clusters: [Cluster] = []
        var notes: [String] = []
        for port in table.ports where port.clusterIP != nil {
            guard !port.isIPv6 else {
                notes.append("Service \(port.name) (IPv6): the userspace mode's redirect rules are IPv4 only; use --mode iptables or nftables for IPv6")
                continue
            }
            guard port.protocol != .sctp else {
                notes.append("Service \(port.name) (sctp): the userspace mode carries TCP and UDP; use --mode iptables")
                continue
            }
            let (cluster, local, _) = port.categorized(node: node)
            let endpoints = (port.internalTrafficLocal ? local : cluster).map { HostPort(host: $0.ip.description, port: $0.port) }
            let clusterName = "\(port.name)/\(port.protocol.rawValue)"
            var clusterConfig = Cluster(name: clusterName, endpoints: endpoints, loadBalancing: .roundRobin)
            clusterConfig.sessionAffinity = port.affinityTimeoutSeconds.map { .seconds($0) }
            clusters.append(clusterConfig)
            func listener(_ name: String, _ listenPort: Int, host: String = "0.0.0.0") -> Listener {
                var l = Listener(name: name, address: HostPort(host: host, port: listenPort), http: HTTPConnectionManager(virtualHosts: []))
                if port.protocol == .udp { l.udpProxy = UDPProxySettings(cluster: clusterName) } else { l.tcpProxy = TCPProxySettings(cluster: clusterName) }
                return l
            }
            listeners.append(listener(listenerName(port), 0))
            if port.protocol == .udp { listeners.append(listener(hostListenerName(port), 0, host: "127.0.0.1")) }
            if let nodePort = port.nodePort { listeners.append(listener(nodePortListenerName(port), nodePort)) }
        }
        var config = ConfigSnapshot(version: version, source: source, listeners: listeners, clusters: clusters)
        config.accessLog.format = .none
        config.notes = notes
        return config
    }

    /// The redirect rules for the listeners bound now.
    static func portals(_ table: ServicePortTable, bound: [String: Int]) -> [PortalRenderer.Portal] {
        table.ports.compactMap { port in
            guard port.protocol != .sctp, !port.isIPv6, let clusterIP = port.clusterIP, let listenerPort = bound[listenerName(port)] else { return nil }
            return PortalRenderer.Portal(name: port.name, addresses: [clusterIP] + port.externalIPs, port: port.port, protocol: port.protocol,
                                         listenerPort: listenerPort, hostListenerPort: bound[hostListenerName(port)])
        }
    }
}

extension UserspaceMode {
    /// The userspace mode's configuration source: the Service ports of the manifests or the cluster.
    public static func source(settings: ServiceProxyRole.Settings) -> KubernetesObjectSource {
        KubernetesObjectSource(ServiceProxyRole.objects(settings)) { set, version in
            snapshot(ServiceProxyTranslator.translate(set).table, node: settings.options.nodeName, version: version,
                     source: "service-proxy (userspace): " + (settings.caches == nil ? settings.manifests.joined(separator: " ") : "the API server"))
        }
    }
}

/// Keeps the redirect rules in step with the listeners the data plane has bound, with the same
/// bounded-frequency runner as the kernel modes (a change of the objects or of the bound listeners syncs,
/// at most once per `minSyncPeriod`; everything is re-applied every `syncPeriod`), and reports each sync on
/// the health and metrics ports.
public final class PortalSyncer: ServiceLifecycle.Service, Sendable {
    let settings: ServiceProxyRole.Settings
    let logger: Logger
    /// Set once the data plane runs.
    public let server = NIOLockedValueBox<ProxyServer?>(nil)
    public let status: ServiceProxyStatus

    public init(settings: ServiceProxyRole.Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        self.status = ServiceProxyStatus(healthTimeout: settings.syncPeriod * 2)
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var applied: [PortalRenderer.Portal]?
            var seen: (stamp: [String], bound: [String: Int])?
            let runner = BoundedFrequencyRunner(minInterval: self.settings.minSyncPeriod, maxInterval: self.settings.syncPeriod)
            await runner.run(changed: {
                guard let server = self.server.withLockedValue({ $0 }) else { return false }
                let now = (ServiceProxyRole.stamp(self.settings), server.listenerAddresses.compactMapValues { $0.port })
                defer { seen = now }
                return seen.map { $0.stamp != now.0 || $0.bound != now.1 } ?? true
            }, sync: { periodic in
                guard let server = self.server.withLockedValue({ $0 }), let table = try? ServiceProxyRole.translate(self.settings).table else { return }
                let portals = UserspaceMode.portals(table, bound: server.listenerAddresses.compactMapValues { $0.port })
                guard portals != applied || periodic else { return }
                let started = ContinuousClock.now
                do {
                    let transaction = PortalRenderer.render(portals)
                    try IPTablesApplier.apply(transaction)
                    self.status.recordSuccess(took: ContinuousClock.now - started,
                                              rules: .iptables(filter: transaction.filterRules.count, nat: transaction.natRules.count))
                    if portals != applied { self.logger.info("rules synced", metadata: ["mode": "userspace", "portals": "\(portals.count)"]) }
                    applied = portals
                } catch {
                    self.status.recordFailure()
                    self.logger.error("sync failed; the rules in force stay: \(error)")
                }
            })
        }
    }
}
