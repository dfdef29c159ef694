import FerryKubernetes
import FerryKubernetesClient
import FerryModel
import FerryProxy
import Foundation
import Logging
import ServiceLifecycle

/// How `ferry ingress` on the API writes back to the cluster (ingress-nginx's flags).
public struct IngressClusterSettings: Sendable {
    public var kubeconfig: String?
    public var context: String?
    /// Watch these namespaces only; none: all.
    public var namespaces: [String] = []
    public var publish: IngressStatusSyncer.Publish = .none
    /// `--update-status`: false writes no status and runs no election.
    public var updateStatus = true
    public var updateStatusOnShutdown = true
    public var statusInterval: Duration = .seconds(60)
    /// The Lease's name (`--election-id`) and namespace (`POD_NAMESPACE`, else the service account's).
    public var electionID = "ferry-ingress-leader"
    public var electionNamespace: String?
    public var leaseDuration: Duration = .seconds(15)
    public var renewDeadline: Duration = .seconds(10)
    public var retryPeriod: Duration = .seconds(2)

    public init() {}

    /// The namespace the Lease lives in when none is given: the Pod's (`POD_NAMESPACE` from the downward API,
    /// or the service account's namespace file), else `default`.
    public static func podNamespace(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let ns = environment["POD_NAMESPACE"], !ns.isEmpty { return ns }
        if let text = try? String(contentsOfFile: "/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding: .utf8) {
            let ns = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !ns.isEmpty { return ns }
        }
        return "default"
    }
}

/// Everything `ferry ingress` runs beside the data plane when the API server configures it: the watches,
/// the configuration source on their caches, the leader election and the status syncer (in that order, so
/// that on shutdown the status is cleared before the Lease is released and the watches stop last), the
/// metrics of the watches and the readiness rule.
public struct IngressCluster: Sendable {
    public let source: KubernetesObjectSource
    public let services: [any ServiceLifecycle.Service]
    public let metrics: ProxyMetrics
    let watch: KubernetesWatchService

    /// Lists every collection (throws what the API server said when it cannot) and prepares the services.
    public static func start(settings: IngressRole.Settings, cluster: IngressClusterSettings, logger: Logger) async throws -> IngressCluster {
        let watch = try await KubernetesWatchService.start(kubeconfig: cluster.kubeconfig, context: cluster.context,
                                                           resources: IngressAPISource.resources(namespaces: cluster.namespaces), logger: logger)
        let metrics = ProxyMetrics()
        let watchMetrics = KubernetesWatchMetrics(registry: metrics.registry)
        watch.count(in: watchMetrics)
        let translations = IngressTranslations()
        let source = IngressAPISource.source(settings: settings, caches: watch.caches, server: watch.server, translations: translations)
        let identity = LeaderElector.defaultIdentity()
        let events = EventRecorder(api: watch.api, component: "ferry-ingress", instance: identity, logger: logger)
        var services: [any ServiceLifecycle.Service] = [watch]
        var elector: LeaderElector?
        if cluster.updateStatus {
            let lock = LeaseLock(api: watch.api, namespace: cluster.electionNamespace ?? IngressClusterSettings.podNamespace(), name: cluster.electionID)
            let lease = "\(lock.namespace)/\(lock.name)"
            watchMetrics.leader(false, lease: lease)
            elector = LeaderElector(lock: lock, identity: identity, events: events, logger: logger,
                                    leaseDuration: cluster.leaseDuration, renewDeadline: cluster.renewDeadline, retryPeriod: cluster.retryPeriod,
                                    onChange: { watchMetrics.leader($0, lease: lease) })
            services.append(elector!)
        } else {
            logger.warning("--update-status=false: Ingress status is not written")
        }
        services.append(IngressStatusSyncer(api: watch.api, caches: watch.caches, translations: translations, elector: elector,
                                            publish: cluster.updateStatus ? cluster.publish : .none, updateOnShutdown: cluster.updateStatusOnShutdown,
                                            events: events, logger: logger, interval: cluster.statusInterval))
        return IngressCluster(source: source, services: services, metrics: metrics, watch: watch)
    }

    /// `/ready` answers 503 until every watched collection has been listed and applied.
    public func onStart(_ server: ProxyServer) {
        let watch = self.watch
        server.setReadinessCheck {
            watch.caches.synced(watch.resources) ? nil : "not ready: the first sync from the API server is not applied yet"
        }
    }
}
