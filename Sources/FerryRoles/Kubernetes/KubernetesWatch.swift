import AsyncHTTPClient
import FerryKubernetes
import FerryKubernetesClient
import FerryModel
import FerryProxy
import Logging
import NIOConcurrencyHelpers
import NIOSSL
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
}

/// Lists every collection once (so the first configuration is the cluster's, never an empty table), then
/// keeps them by watching, until graceful shutdown. One `HTTPClient` for all of them.
public final class KubernetesWatchService: ServiceLifecycle.Service, Sendable {
    let watchers: [ResourceWatcher]
    /// What the watches keep; a role's configuration source reads it.
    public let caches: KubernetesCaches
    /// `host:port` of the API server, for log lines.
    public let server: String
    let client: HTTPClient

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
        let tls = try server.tls.map { try TLSConfiguration.client($0) }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let watchers = resources.map { ResourceWatcher(resource: $0, server: server, tls: tls, client: client, logger: logger) }
        let caches = KubernetesCaches()
        do {
            for watcher in watchers { caches.set(try await watcher.list(), for: watcher.resource) }
        } catch {
            try? await client.shutdown()
            throw KubernetesSourceError(description: "cannot list from the API server at \(server.authority) (\(server.describedAs)): \(error)")
        }
        return KubernetesWatchService(watchers: watchers, caches: caches, server: server.authority, client: client)
    }

    init(watchers: [ResourceWatcher], caches: KubernetesCaches, server: String, client: HTTPClient) {
        self.watchers = watchers
        self.caches = caches
        self.server = server
        self.client = client
    }

    /// For a one-shot use of the first lists (`--dry-run`): releases the HTTP client without watching.
    public func shutdownWithoutWatching() async {
        try? await client.shutdown()
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for watcher in self.watchers {
                    let caches = self.caches
                    let initial = caches.cache(for: watcher.resource)
                    group.addTask {
                        await watcher.run(from: initial) { cache, _ in caches.set(cache, for: watcher.resource) }
                    }
                }
            }
        }
        try? await client.shutdown()
    }
}

public struct KubernetesSourceError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
