import AsyncHTTPClient
import FerryKubernetes
import FerryKubernetesClient
import FerryModel
import FerryProxy
import Logging
import NIOConcurrencyHelpers
import NIOSSL
import Prometheus
import ServiceLifecycle

/// The caches of the collections a role watches, shared by the watch service (which writes them) and the
/// role's configuration source (which translates them). Every update moves `generation`, the source's stamp.
public final class KubernetesCaches: Sendable {
    private let state = NIOLockedValueBox<(caches: [String: InformerCache], generation: Int)>(([:], 0))

    public init() {}

    func set(_ cache: InformerCache, for resource: WatchedResource) {
        state.withLockedValue {
            $0.caches[resource.path] = cache
            $0.generation += 1
        }
    }

    public var generation: Int { state.withLockedValue { $0.generation } }

    /// Every cached object, as the translators read manifests.
    public var manifestSet: ManifestSet {
        let caches = state.withLockedValue { $0.caches }
        var set = ManifestSet()
        for path in caches.keys.sorted() { set.merge(caches[path]!.manifestSet) }
        return set
    }

    func cache(for resource: WatchedResource) -> InformerCache? {
        state.withLockedValue { $0.caches[resource.path] }
    }

    /// The objects of one watched collection only (a probe reading one Node need not copy the cluster).
    public func manifestSet(of resource: WatchedResource) -> ManifestSet {
        cache(for: resource)?.manifestSet ?? ManifestSet()
    }

    /// The objects the API server holds that Ferry cannot read, in every cache.
    public var refused: [RefusedObject] {
        let caches = state.withLockedValue { $0.caches }
        return caches.keys.sorted().flatMap { caches[$0]!.refused.values.sorted { $0.key < $1.key } }
    }

    /// Whether every watched collection has been listed in full (the readiness rule).
    public func synced(_ resources: [WatchedResource]) -> Bool {
        let caches = state.withLockedValue { $0.caches }
        return resources.allSatisfy { caches[$0.path]?.synced == true }
    }
}

/// The watches' metrics: restarts, relists and events by collection, the time of the last change applied.
public final class KubernetesWatchMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// The handles of one collection, made on its first activity (not looked up again per event).
    struct Handles: Sendable {
        let lists: Counter
        let watchRestarts: Counter
        let events: Counter
        let lastSync: Gauge
    }
    private let handles = NIOLockedValueBox<[String: Handles]>([:])

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func handles(for resource: WatchedResource) -> Handles {
        handles.withLockedValue { all in
            if let made = all[resource.described] { return made }
            let labels = [("resource", resource.described)]
            let made = Handles(
                lists: registry.makeCounter(descriptor: Self.descriptor("kubernetes_lists", unit: "total", help: "Full lists of a watched collection (at start, and again after 410 Gone)"), labels: labels),
                watchRestarts: registry.makeCounter(descriptor: Self.descriptor("kubernetes_watch_restarts", unit: "total", help: "Watches opened again after one ended"), labels: labels),
                events: registry.makeCounter(descriptor: Self.descriptor("kubernetes_watch_events", unit: "total", help: "Watch events that changed a cache"), labels: labels),
                lastSync: registry.makeGauge(descriptor: Self.descriptor("kubernetes_last_sync", unit: "timestamp_seconds", help: "When a cache last changed (list or event), Unix seconds"), labels: labels))
            all[resource.described] = made
            return made
        }
    }

    func record(_ activity: ResourceWatcher.Activity, resource: WatchedResource) {
        let h = handles(for: resource)
        switch activity {
        case .listed: h.lists.increment()
        case .watchRestarted: h.watchRestarts.increment()
        case .eventApplied: h.events.increment()
        }
        if activity != .watchRestarted { h.lastSync.set(Double(MicroTime.now.components.seconds)) }
    }

    /// 1 while this replica holds the Lease, else 0.
    public func leader(_ leads: Bool, lease: String) {
        registry.makeGauge(descriptor: Self.descriptor("leader", unit: "", help: "1 while this replica is the leader of the Lease"), labels: [("lease", lease)]).set(Int64(leads ? 1 : 0))
    }

    static func descriptor(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "ferry", metricName: name, unitName: unit.isEmpty ? nil : unit, helpText: help)
    }
}

/// Lists every collection once (so the first configuration is the cluster's, never an empty table), then
/// keeps them by watching, until graceful shutdown. One `HTTPClient` for all of them.
public final class KubernetesWatchService: ServiceLifecycle.Service, Sendable {
    let watchers: [ResourceWatcher]
    /// Set before `run()` to count the watches' activity.
    let metrics = NIOLockedValueBox<KubernetesWatchMetrics?>(nil)
    /// What the watches keep; a role's configuration source reads it.
    public let caches: KubernetesCaches
    /// The API server's client (for writes: status, Leases, Events).
    public let api: APIClient
    /// `host:port` of the API server, for log lines.
    public var server: String { api.server.authority }

    /// Resolves the credentials as `ferry api-proxy` does (`kubeconfig` and `context`, or the Pod's service
    /// account), then lists each collection of `resources`. Throws what to fix when it cannot.
    public static func start(kubeconfig: String?, context: String?, resources: [WatchedResource], logger: Logger) async throws -> KubernetesWatchService {
        var credentials = APIProxyRole.Settings()
        credentials.kubeconfig = kubeconfig
        credentials.context = context
        return try await start(server: try APIProxyRole.resolveServer(credentials, exec: APIProxyRole.ExecCache()), resources: resources, logger: logger)
    }

    /// Lists each collection of `resources` from `server`; throws what the API server said when it cannot.
    public static func start(server: APIServer, resources: [WatchedResource], logger: Logger) async throws -> KubernetesWatchService {
        let api = APIClient(server: server, tls: try server.tls.map { try TLSConfiguration.client($0) })
        let watchers = resources.map { ResourceWatcher(resource: $0, api: api, logger: logger) }
        let caches = KubernetesCaches()
        do {
            for watcher in watchers { caches.set(try await watcher.list(), for: watcher.resource) }
        } catch {
            await api.shutdown()
            throw KubernetesSourceError(description: "cannot list from the API server at \(server.authority) (\(server.describedAs)): \(error)")
        }
        return KubernetesWatchService(watchers: watchers, caches: caches, api: api)
    }

    init(watchers: [ResourceWatcher], caches: KubernetesCaches, api: APIClient) {
        self.watchers = watchers
        self.caches = caches
        self.api = api
    }

    /// The collections watched.
    public var resources: [WatchedResource] { watchers.map(\.resource) }

    /// Counts the watches' activity in `metrics` (call before the service runs).
    public func count(in metrics: KubernetesWatchMetrics) {
        self.metrics.withLockedValue { $0 = metrics }
        for resource in resources { metrics.record(.listed, resource: resource) }
    }

    /// For a one-shot use of the first lists (`--dry-run`): releases the HTTP client without watching.
    public func shutdownWithoutWatching() async {
        await api.shutdown()
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for watcher in self.watchers {
                    let caches = self.caches
                    let initial = caches.cache(for: watcher.resource)
                    group.addTask {
                        await watcher.run(from: initial, observe: { self.metrics.withLockedValue { $0 }?.record($0, resource: watcher.resource) }) { cache, _ in
                            caches.set(cache, for: watcher.resource)
                        }
                    }
                }
            }
        }
        await api.shutdown()
    }
}

public struct KubernetesSourceError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
