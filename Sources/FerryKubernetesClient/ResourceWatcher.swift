import AsyncHTTPClient
import FerryKubernetes
import FerryModel
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// A collection of the API to keep in a cache: its path, its kind, and how a role narrows it.
public struct WatchedResource: Sendable, Hashable {
    /// `/api/v1` or `/apis/GROUP/VERSION`.
    public var groupVersionPath: String
    /// The plural resource name (`services`, `endpointslices`).
    public var resource: String
    public var kind: String
    public var apiVersion: String
    /// Watch one namespace only; nil: all.
    public var namespace: String?
    public var labelSelector: String?
    /// `metadata.name=NAME`: one object (a service proxy's own Node).
    public var fieldSelector: String?

    public init(groupVersionPath: String, resource: String, kind: String, apiVersion: String, namespace: String? = nil, labelSelector: String? = nil) {
        self.groupVersionPath = groupVersionPath
        self.resource = resource
        self.kind = kind
        self.apiVersion = apiVersion
        self.namespace = namespace
        self.labelSelector = labelSelector
    }

    public static let services = WatchedResource(groupVersionPath: "/api/v1", resource: "services", kind: "Service", apiVersion: "v1")
    public static let endpointSlices = WatchedResource(groupVersionPath: "/apis/discovery.k8s.io/v1", resource: "endpointslices", kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1")
    public static let ingresses = WatchedResource(groupVersionPath: "/apis/networking.k8s.io/v1", resource: "ingresses", kind: "Ingress", apiVersion: "networking.k8s.io/v1")
    public static let ingressClasses = WatchedResource(groupVersionPath: "/apis/networking.k8s.io/v1", resource: "ingressclasses", kind: "IngressClass", apiVersion: "networking.k8s.io/v1")
    public static let secrets = WatchedResource(groupVersionPath: "/api/v1", resource: "secrets", kind: "Secret", apiVersion: "v1")
    /// Pods in every namespace (the egress proxy's client addresses).
    public static let pods = WatchedResource(groupVersionPath: "/api/v1", resource: "pods", kind: "Pod", apiVersion: "v1")
    public static let serviceCIDRs = WatchedResource(groupVersionPath: "/apis/networking.k8s.io/v1", resource: "servicecidrs", kind: "ServiceCIDR", apiVersion: "networking.k8s.io/v1")

    /// One Node, by name (kube-proxy watches only its own).
    public static func node(_ name: String) -> WatchedResource {
        var node = WatchedResource(groupVersionPath: "/api/v1", resource: "nodes", kind: "Node", apiVersion: "v1")
        node.fieldSelector = "metadata.name=\(name)"
        return node
    }

    /// The collection's path, in the namespace when one is set.
    public var path: String {
        namespace.map { "\(groupVersionPath)/namespaces/\($0)/\(resource)" } ?? "\(groupVersionPath)/\(resource)"
    }

    /// Each resource once per namespace (`--namespace`, repeatable); no namespace: all of them.
    public static func inNamespaces(_ resources: [WatchedResource], _ namespaces: [String]) -> [WatchedResource] {
        guard !namespaces.isEmpty else { return resources }
        return namespaces.flatMap { namespace in
            resources.map { resource in
                var scoped = resource
                scoped.namespace = namespace
                return scoped
            }
        }
    }

    /// The role's label and field selectors, as list and watch query items.
    func addSelectors(to query: inout [String: String]) {
        if let labelSelector { query["labelSelector"] = labelSelector }
        if let fieldSelector { query["fieldSelector"] = fieldSelector }
    }

    /// For log lines: `services` or `services in demo`.
    public var described: String { namespace.map { "\(resource) in \($0)" } ?? resource }
}

extension ResourceWatcher {
    /// What a watcher did, for metrics.
    public enum Activity: Sendable {
        /// A full list was applied (at start, or again after `410 Gone`).
        case listed
        /// A watch was opened again after one ended (timeout, drop, error).
        case watchRestarted
        /// A watch event changed the cache.
        case eventApplied
    }
}

/// Keeps one collection's cache by list + watch, as client-go's reflector does: a list in pages, then a
/// watch from the list's resourceVersion with bookmarks and a server-side timeout; a watch that ends is
/// resumed from the last resourceVersion seen; `410 Gone` (status or ERROR event) lists again, and only
/// then the cache is replaced, reporting what changed; failures wait by `RetrySchedule` (`Retry-After`
/// honoured). One log line per change of state, not per retry.
public final class ResourceWatcher: Sendable {
    public let resource: WatchedResource
    let api: APIClient
    let logger: Logger
    let pageSize: Int
    let watchTimeout: Duration

    public init(resource: WatchedResource, api: APIClient, logger: Logger, pageSize: Int = 500, watchTimeout: Duration = .seconds(300)) {
        self.resource = resource
        self.api = api
        self.logger = logger
        self.pageSize = pageSize
        self.watchTimeout = watchTimeout
    }

    /// Runs until the task is cancelled; `update` gets the cache after every list and every event that
    /// changed something, with what changed. Cancelling the task ends it at once, an open watch included.
    /// `initial`, a cache filled by `list()`, is watched on from its resourceVersion without listing again.
    public func run(from initial: InformerCache? = nil, observe: @Sendable (Activity) -> Void = { _ in }, update: @Sendable (InformerCache, [InformerCache.Change]) async -> Void) async {
        var cache = initial ?? InformerCache()
        var schedule = RetrySchedule()
        var random = SystemRandomNumberGenerator()
        var needsList = !(initial?.synced ?? false)
        var failing = false
        var watched = false
        let clock = ContinuousClock()
        let start = clock.now
        while !Task.isCancelled {
            do {
                if needsList {
                    let (items, version, refused) = try await listAll()
                    let changes = cache.replace(with: items, resourceVersion: version, refused: refused)
                    observe(.listed)
                    await update(cache, changes)
                    needsList = false
                }
                if watched { observe(.watchRestarted) }
                watched = true
                if failing {
                    failing = false
                    logger.info("watching \(resource.described) again", metadata: ["resourceVersion": "\(cache.resourceVersion ?? "")"])
                }
                schedule.succeeded()
                let gone = try await watch(cache: &cache, observe: observe, update: update)
                if gone {
                    logger.info("\(resource.described): resourceVersion \(cache.resourceVersion ?? "") is gone (410); listing again")
                    needsList = true
                }
            } catch is CancellationError {
                return
            } catch let failure as APIRequestError where failure.status == 410 {
                needsList = true
            } catch {
                if Task.isCancelled { return }
                let retryAfter = (error as? APIRequestError)?.retryAfter
                let delay = schedule.delay(now: clock.now - start, retryAfter: retryAfter, using: &random)
                if !failing {
                    failing = true
                    logger.warning("\(resource.described): \(error); retrying (serving the last state meanwhile)")
                }
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// The collection listed once (every page): a synced cache to serve from and to watch on from.
    public func list() async throws -> InformerCache {
        let (items, version, refused) = try await listAll()
        var cache = InformerCache()
        _ = cache.replace(with: items, resourceVersion: version, refused: refused)
        return cache
    }

    /// Every page of the list, then the list's resourceVersion.
    func listAll() async throws -> ([KubernetesObject], String, [RefusedObject]) {
        var items: [KubernetesObject] = []
        var refused: [RefusedObject] = []
        var token: String?
        var version = ""
        repeat {
            var query = ["limit": String(pageSize)]
            if let token { query["continue"] = token }
            resource.addSelectors(to: &query)
            let response = try await api.http.execute(api.request(path: resource.path, query: query), timeout: .seconds(60))
            let body = try await response.body.collect(upTo: 64 << 20)
            try APIClient.check(response, body: body)
            let page = try WatchEventDecoder.decodeList(String(buffer: body), kind: resource.kind, apiVersion: resource.apiVersion)
            items += page.items
            refused += page.refused
            version = page.resourceVersion
            token = page.continueToken
        } while token != nil
        return (items, version, refused)
    }

    /// One watch request, its events applied as they arrive; true when the server said the
    /// resourceVersion is gone.
    func watch(cache: inout InformerCache, observe: @Sendable (Activity) -> Void, update: @Sendable (InformerCache, [InformerCache.Change]) async -> Void) async throws -> Bool {
        var query = ["watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": String(watchTimeout.components.seconds)]
        if let version = cache.resourceVersion { query["resourceVersion"] = version }
        resource.addSelectors(to: &query)
        let response = try await api.http.execute(api.request(path: resource.path, query: query), deadline: .now() + .seconds(watchTimeout.components.seconds + 30))
        if response.status != .ok {
            let body = try await response.body.collect(upTo: 1 << 20)
            try APIClient.check(response, body: body)
        }
        var splitter = WatchLineSplitter()
        for try await chunk in response.body {
            for line in try splitter.lines(in: chunk.readableBytesView) {
                let event = try WatchEventDecoder.decode(line: line)
                if event.type == .error {
                    if event.status?.isGone == true { return true }
                    throw APIRequestError(status: event.status?.code ?? 500, retryAfter: nil, message: event.status?.message ?? "watch error")
                }
                if let change = cache.apply(event) {
                    observe(.eventApplied)
                    await update(cache, [change])
                }
            }
        }
        return false
    }
}
