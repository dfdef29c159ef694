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
    public static let serviceCIDRs = WatchedResource(groupVersionPath: "/apis/networking.k8s.io/v1", resource: "servicecidrs", kind: "ServiceCIDR", apiVersion: "networking.k8s.io/v1")

    /// The collection's path, in the namespace when one is set.
    public var path: String {
        namespace.map { "\(groupVersionPath)/namespaces/\($0)/\(resource)" } ?? "\(groupVersionPath)/\(resource)"
    }

    /// For log lines: `services` or `services in demo`.
    public var described: String { namespace.map { "\(resource) in \($0)" } ?? resource }
}

/// A failed list or watch request: the status, and the server's `Retry-After` when it sent one.
struct APIRequestFailure: Error, CustomStringConvertible {
    var status: Int
    var retryAfter: Duration?
    var message: String
    var description: String { "\(status): \(message)" }
}

/// Keeps one collection's cache by list + watch, as client-go's reflector does: a list in pages, then a
/// watch from the list's resourceVersion with bookmarks and a server-side timeout; a watch that ends is
/// resumed from the last resourceVersion seen; `410 Gone` (status or ERROR event) lists again, and only
/// then the cache is replaced, reporting what changed; failures wait by `RetrySchedule` (`Retry-After`
/// honoured). One log line per change of state, not per retry.
public final class ResourceWatcher: Sendable {
    public let resource: WatchedResource
    let server: APIServer
    /// The TLS to the API server (`TLSConfiguration.client` of `server.tls`, built once by the caller).
    let tls: TLSConfiguration?
    let client: HTTPClient
    let logger: Logger
    let pageSize: Int
    let watchTimeout: Duration

    public init(resource: WatchedResource, server: APIServer, tls: TLSConfiguration?, client: HTTPClient, logger: Logger, pageSize: Int = 500, watchTimeout: Duration = .seconds(300)) {
        self.resource = resource
        self.server = server
        self.tls = tls
        self.client = client
        self.logger = logger
        self.pageSize = pageSize
        self.watchTimeout = watchTimeout
    }

    /// Runs until the task is cancelled; `update` gets the cache after every list and every event that
    /// changed something, with what changed. Cancelling the task ends it at once, an open watch included.
    /// `initial`, a cache filled by `list()`, is watched on from its resourceVersion without listing again.
    public func run(from initial: InformerCache? = nil, update: @Sendable (InformerCache, [InformerCache.Change]) async -> Void) async {
        var cache = initial ?? InformerCache()
        var schedule = RetrySchedule()
        var random = SystemRandomNumberGenerator()
        var needsList = !(initial?.synced ?? false)
        var failing = false
        let clock = ContinuousClock()
        let start = clock.now
        while !Task.isCancelled {
            do {
                if needsList {
                    let (items, version) = try await listAll()
                    let changes = cache.replace(with: items, resourceVersion: version)
                    await update(cache, changes)
                    needsList = false
                }
                if failing {
                    failing = false
                    logger.info("watching \(resource.described) again", metadata: ["resourceVersion": "\(cache.resourceVersion ?? "")"])
                }
                schedule.succeeded()
                let gone = try await watch(cache: &cache, update: update)
                if gone {
                    logger.info("\(resource.described): resourceVersion \(cache.resourceVersion ?? "") is gone (410); listing again")
                    needsList = true
                }
            } catch is CancellationError {
                return
            } catch let failure as APIRequestFailure where failure.status == 410 {
                needsList = true
            } catch {
                if Task.isCancelled { return }
                let retryAfter = (error as? APIRequestFailure)?.retryAfter
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
        let (items, version) = try await listAll()
        var cache = InformerCache()
        _ = cache.replace(with: items, resourceVersion: version)
        return cache
    }

    /// Every page of the list, then the list's resourceVersion.
    func listAll() async throws -> ([KubernetesObject], String) {
        var items: [KubernetesObject] = []
        var token: String?
        var version = ""
        repeat {
            var query = ["limit": String(pageSize)]
            if let token { query["continue"] = token }
            if let selector = resource.labelSelector { query["labelSelector"] = selector }
            let response = try await client.execute(request(query: query), timeout: .seconds(60))
            let body = try await response.body.collect(upTo: 64 << 20)
            try check(response, body: body)
            let page = try WatchEventDecoder.decodeList(String(buffer: body), kind: resource.kind, apiVersion: resource.apiVersion)
            items += page.items
            version = page.resourceVersion
            token = page.continueToken
        } while token != nil
        return (items, version)
    }

    /// One watch request, its events applied as they arrive; true when the server said the
    /// resourceVersion is gone.
    func watch(cache: inout InformerCache, update: @Sendable (InformerCache, [InformerCache.Change]) async -> Void) async throws -> Bool {
        var query = ["watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": String(watchTimeout.components.seconds)]
        if let version = cache.resourceVersion { query["resourceVersion"] = version }
        if let selector = resource.labelSelector { query["labelSelector"] = selector }
        let response = try await client.execute(request(query: query), deadline: .now() + .seconds(watchTimeout.components.seconds + 30))
        if response.status != .ok {
            let body = try await response.body.collect(upTo: 1 << 20)
            try check(response, body: body)
        }
        var splitter = WatchLineSplitter()
        for try await chunk in response.body {
            for line in try splitter.lines(in: chunk.readableBytesView) {
                let event = try WatchEventDecoder.decode(line: line)
                if event.type == .error {
                    if event.status?.isGone == true { return true }
                    throw APIRequestFailure(status: event.status?.code ?? 500, retryAfter: nil, message: event.status?.message ?? "watch error")
                }
                if let change = cache.apply(event) { await update(cache, [change]) }
            }
        }
        return false
    }

    private func request(query: [String: String]) throws -> HTTPClientRequest {
        var components = URLComponents()
        components.scheme = server.scheme
        components.host = server.host.contains(":") ? "[\(server.host)]" : server.host
        components.port = server.port
        components.path = server.path + resource.path
        components.queryItems = query.keys.sorted().map { URLQueryItem(name: $0, value: query[$0]) }
        guard let url = components.url?.absoluteString else { throw APIRequestFailure(status: 0, message: "cannot build a URL for \(resource.path)") }
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "accept", value: "application/json")
        request.headers.add(name: "user-agent", value: "ferry")
        if let authorization = server.authorization { request.headers.add(name: "authorization", value: authorization) }
        request.tlsConfiguration = tls
        return request
    }

    private func check(_ response: HTTPClientResponse, body: ByteBuffer) throws {
        guard response.status != .ok else { return }
        let retryAfter = response.headers.first(name: "retry-after").flatMap { Int64($0) }.map { Duration.seconds($0) }
        let status = try? WatchEventDecoder.decode(line: "{\"type\":\"ERROR\",\"object\":\(String(buffer: body))}").status
        throw APIRequestFailure(status: Int(response.status.code), retryAfter: retryAfter, message: status?.message ?? response.status.reasonPhrase)
    }
}

extension APIRequestFailure {
    init(status: Int, message: String) {
        self.init(status: status, retryAfter: nil, message: message)
    }
}
