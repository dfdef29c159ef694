import FerryModel
import FerryProxy
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Runs `ferry service-proxy` until SIGTERM, as kube-proxy's `ProxyServer.Run` does: checks the mode's
/// tools, removes what the other kernel mode left, sets `route_localnet` for localhost NodePorts, serves
/// the health port (10256) and the metrics port (10249), then keeps the rules in step with the objects —
/// kernel rules through the mode's `RuleBackend`, or the userspace mode's listeners and redirect rules.
/// The executable only parses arguments; the wiring is here.
public enum ServiceProxyRunner {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `watch` keeps the objects when they come from the API server (then it runs beside the syncer).
    public static func run(_ settings: ServiceProxyRole.Settings, watch: KubernetesWatchService?, healthz: HostPort, metrics: HostPort, logger: Logger) async throws {
        if settings.mode == .userspace {
            try await runUserspace(settings, watch: watch, healthz: healthz, metrics: metrics, logger: logger)
            return
        }
        do {
            try ServiceProxyRole.checkTools(for: settings.mode)
        } catch {
            throw Failure(description: "\(error)")
        }
        if let done = ServiceProxyRole.cleanupOtherMode(than: settings.mode) {
            logger.info("\(done) (a node runs one mode at a time)")
        }
        if settings.mode == .iptables && settings.options.localhostNodePorts {
            logger.info("Setting route_localnet=1 to allow node-ports on localhost; to change this set --iptables-localhost-nodeports false or --nodeport-addresses without loopback")
            do {
                try ServiceProxyRole.enableRouteLocalnet()
            } catch {
                throw Failure(description: "\(error)")
            }
        }
        let syncer = ServiceProxySyncer(settings: settings, logger: logger)
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await serveStatus(syncer.status, settings: settings, group: loops, healthz: healthz, metrics: metrics, logger: logger)
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: syncer)] + (watch.map { [.init(service: $0)] } ?? [])
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            try? await loops.shutdownGracefully()
            throw error
        }
        try? await loops.shutdownGracefully()
    }

    /// The userspace mode: Ferry's TCP and UDP proxy listeners per Service port (reloaded as the objects
    /// change), and the redirect rules to them.
    static func runUserspace(_ settings: ServiceProxyRole.Settings, watch: KubernetesWatchService?, healthz: HostPort, metrics: HostPort, logger: Logger) async throws {
        let portals = PortalSyncer(settings: settings, logger: logger)
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await serveStatus(portals.status, settings: settings, group: loops, healthz: healthz, metrics: metrics, logger: logger)
        let source = UserspaceMode.source(settings: settings)
        do {
            let snapshot = try source.load(version: 1)
            try await ProxyRunner.run(config: snapshot, options: ProxyRunner.Options(threads: System.coreCount),
                                      watch: .init(source: source, loadedStamp: source.stamp()), extraServices: [portals] + (watch.map { [$0] } ?? [])) { server in
                portals.server.withLockedValue { $0 = server }
            }
        } catch {
            try? await loops.shutdownGracefully()
            throw error
        }
        try? await loops.shutdownGracefully()
    }

    /// kube-proxy's health port (`/healthz`, `/livez`) and metrics port (`/metrics`) for `status`.
    static func serveStatus(_ status: ServiceProxyStatus, settings: ServiceProxyRole.Settings, group: EventLoopGroup, healthz: HostPort, metrics: HostPort, logger: Logger) async throws {
        if let caches = settings.caches {
            // Its own Node, when watched: a Node being deleted (or marked for removal) fails /healthz.
            let name = settings.options.nodeName
            status.nodeEligibility = { caches.manifestSet(of: .node(name)).nodes.first { $0.metadata.name == name }.map(\.eligible) }
        }
        do {
            let health = try StatusServer.bind(healthz, group: group) { status.respondHealth($0) }
            let metricsChannel = try StatusServer.bind(metrics, group: group) { status.respondMetrics($0) }
            logger.info("ferry started", metadata: [
                "mode": "\(settings.mode.rawValue)", "node": "\(settings.options.nodeName)",
                "healthz": "\(health.localAddress.map { "\($0)" } ?? "")", "metrics": "\(metricsChannel.localAddress.map { "\($0)" } ?? "")",
            ])
        } catch {
            try? await group.shutdownGracefully()
            throw Failure(description: "cannot listen for health or metrics: \(error)")
        }
    }
}
