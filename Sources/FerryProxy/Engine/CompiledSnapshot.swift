import FerryModel
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// A `ConfigSnapshot` with everything derived from it built once: route tables, resolved endpoint
/// addresses, load balancers and metric handles. Swapped whole, never piecemeal.
public final class CompiledSnapshot: Sendable {
    public let config: ConfigSnapshot
    let listeners: [String: CompiledListener]
    let clusters: [String: CompiledCluster]

    /// Compiles `config`; resolves endpoint host names (blocking: call off the event loops).
    public init(_ config: ConfigSnapshot, metrics: ProxyMetrics) throws {
        self.config = config
        var clusters: [String: CompiledCluster] = [:]
        for cluster in config.clusters {
            clusters[cluster.name] = try CompiledCluster(cluster, metrics: metrics)
        }
        self.clusters = clusters
        var listeners: [String: CompiledListener] = [:]
        for listener in config.listeners {
            listeners[listener.name] = try CompiledListener(listener, metrics: metrics)
        }
        self.listeners = listeners
    }
}

/// Thrown when an endpoint's host name does not resolve.
public struct EndpointResolutionError: Error, CustomStringConvertible {
    public var cluster: String
    public var endpoint: HostPort
    public var underlying: String
    public var description: String {
        "clusters \"\(cluster)\": endpoint \(endpoint) does not resolve (\(underlying)); use an IP address or a resolvable name"
    }
}

final class CompiledListener: Sendable {
    let listener: Listener
    let routes: RouteTable
    /// Each route with its metric handles, by (virtual host index, route index).
    let compiledRoutes: [[CompiledRoute]]
    let listenerStats: ListenerStats
    /// Decoder limits: the precise checks happen on the head; these are the backstop.
    let decoderLimits: DecoderLimits
    /// How often a connection checks its deadlines.
    let watchdogTick: TimeAmount
    /// Set on forward-proxy listeners.
    let forwardProxy: CompiledForwardProxy?
    /// TLS for connections accepted while this snapshot is in force.
    let tls: CompiledTLS?
    let http2: DownstreamHTTP2
    /// The listener's edge rules, read per request without copying its whole configuration.
    let pathNormalization: PathNormalization
    let forwardedTrust: ForwardedTrust
    let upgradeProtocols: UpgradeProtocols

    init(_ listener: Listener, metrics: ProxyMetrics) throws {
        self.listener = listener
        self.routes = RouteTable(virtualHosts: listener.http.virtualHosts)
        self.compiledRoutes = listener.http.virtualHosts.map { vhost in
            vhost.routes.map { route in CompiledRoute(route: route, stats: metrics.routeStats(listener: listener.name, route: route)) }
        }
        self.listenerStats = metrics.listenerStats(listener: listener.name)
        self.decoderLimits = DecoderLimits(listener.http.limits)
        self.watchdogTick = ExchangeRules.watchdogTick(listener)
        self.forwardProxy = try listener.http.forwardProxy.map { try CompiledForwardProxy($0, listener: listener.name, metrics: metrics) }
        self.tls = try listener.tls.map { try CompiledTLS($0, listener: listener.name, http2: listener.http.http2.enabled) }
        self.http2 = listener.http.http2
        self.pathNormalization = listener.http.pathNormalization
        self.forwardedTrust = listener.http.forwardedTrust
        self.upgradeProtocols = listener.http.upgradeProtocols
    }
}

/// A forward proxy's policy and the stand-ins for what a reverse proxy gets from its route and cluster:
/// one route (its timeouts and retry policy) and one cluster (its statistics), with the destination
/// chosen per request.
final class CompiledForwardProxy: Sendable {
    let settings: ForwardProxySettings
    let route: CompiledRoute
    let cluster: CompiledCluster
    /// Each parent proxy's address, resolved when the snapshot is compiled.
    let parentAddresses: [HostPort: SocketAddress]
    /// Set when the listener requires proxy authentication.
    let authenticator: ProxyAuthenticator?

    /// The Pod behind a client address, when Pods are watched.
    func identify(_ address: IPAddress?) -> SourceIdentity? {
        guard let lookup = settings.sourceIdentities, let address else { return nil }
        return lookup.identity(of: address)
    }

    init(_ settings: ForwardProxySettings, listener: String, metrics: ProxyMetrics) throws {
        self.settings = settings
        var parents: [HostPort: SocketAddress] = [:]
        for parent in settings.upstreamProxies.compactMap(\.proxy) where parents[parent] == nil {
            do {
                parents[parent] = try SocketAddress.makeAddressResolvingHost(parent.host, port: parent.port)
            } catch {
                throw EndpointResolutionError(cluster: "\(listener) upstream proxy", endpoint: parent, underlying: "\(error)")
            }
        }
        self.parentAddresses = parents
        self.authenticator = settings.users.map(ProxyAuthenticator.init(users:))
        let route = Route(name: "\(listener)/forward", match: RouteMatch(path: .prefix("/")), action: .forward([]), timeout: .seconds(60))
        self.route = CompiledRoute(route: route, stats: metrics.routeStats(listener: listener, route: route))
        self.cluster = try CompiledCluster(Cluster(name: "\(listener)/destinations", endpoints: [], connectTimeout: settings.connectTimeout), metrics: metrics)
    }
}

/// A route and what is derived from it, shared by reference so a request holds it for one retain.
final class CompiledRoute: Sendable {
    let route: Route
    let stats: RouteStats
    /// Deadline for the upstream response, as NIO time.
    let timeout: TimeAmount
    /// Whether some response status makes the route retry: checked on every response head without
    /// copying the route.
    let retriesOnStatus: Bool
    /// What every exchange on the route reads, kept apart so reading them never copies the route.
    let name: String
    let retries: RetryPolicy
    let idleLimit: TimeAmount?
    /// Fields set on every response (empty: responses pass unchanged).
    let responseHeaders: [ResponseHeader]

    init(route: Route, stats: RouteStats) {
        self.route = route
        self.stats = stats
        self.timeout = .milliseconds(route.timeout.milliseconds)
        self.retriesOnStatus = route.retries.retriesOnSomeStatus
        self.name = route.name
        self.retries = route.retries
        self.idleLimit = route.streamIdleTimeout.map { .milliseconds($0.milliseconds) }
        self.responseHeaders = route.responseHeaders
    }
}

/// The request decoder's limits derived from `HTTPLimits`. The head may hold a request line up to
/// `max_request_line` and fields up to `max_header_bytes`; the field count is one over `max_headers`: the
/// head validator answers the precise limits (414, 431) with their own wording, the decoder is the backstop
/// that keeps nothing larger.
struct DecoderLimits: Sendable {
    let maxHeadBytes: Int
    let maxRequestLineBytes: Int
    let maxFieldCount: Int
    let maxChunkLineBytes: Int
    init(_ limits: HTTPLimits) {
        maxChunkLineBytes = limits.maxChunkLineBytes
        maxRequestLineBytes = limits.maxRequestLineBytes
        maxHeadBytes = limits.maxRequestLineBytes + limits.maxHeaderBytes
        maxFieldCount = limits.maxHeaderCount + 1
    }

    var parserLimits: HTTP1RequestParser.Limits {
        HTTP1RequestParser.Limits(maxRequestLineBytes: maxRequestLineBytes, maxHeadBytes: maxHeadBytes, maxFieldCount: maxFieldCount, maxChunkLineBytes: maxChunkLineBytes)
    }
}

final class CompiledCluster: Sendable {
    let cluster: Cluster
    /// Where to connect for each endpoint: its address, or the parent proxy's.
    let addresses: [SocketAddress]
    /// `host:port` of each endpoint, for logs.
    let endpointNames: [String]
    /// The Host for requests that arrive without one (HTTP/1.0): the TLS server name, else the first
    /// endpoint's `host:port` (nginx's `$proxy_host`).
    let authority: String
    /// Whether requests in flight per endpoint must be counted (only `least_request` uses them).
    let countsActiveRequests: Bool
    let balancer: LoadBalancer
    let stats: ClusterStats
    /// TLS to the endpoints, built once per snapshot (reads the CA and key files).
    let tls: UpstreamTLSContext?
    /// ClientIP affinity of L4 listeners: client address → (endpoint index, when it was last used), shared by
    /// the event loops (one lock per new connection or session).
    let affinity = NIOLockedValueBox<[String: (index: Int, lastUsed: NIODeadline)]>([:])

    /// The endpoint for a new L4 connection or UDP session from `client` (an IP address): the one it was last
    /// given while its affinity holds (only on a first try), else the load balancer's pick, remembered for
    /// affinity. Nil when every endpoint is excluded.
    func pickL4Endpoint(for client: String, excluding: [Int] = [], snapshotVersion: Int, local: LoopLocal) -> Int? {
        let now = NIODeadline.now()
        if excluding.isEmpty, let sticky = affinityEndpoint(for: client, now: now) { return sticky }
        let hashKey = balancer.hashKey(header: { _ in nil }, sourceAddress: client)
        guard let index = local.withBalancerState(cluster: cluster.name, snapshotVersion: snapshotVersion, endpoints: addresses.count, { state, random in
            balancer.pick(state: &state, hashKey: hashKey, excluding: excluding, using: &random)
        }) else { return nil }
        rememberAffinity(client, index: index, now: now)
        return index
    }

    /// The endpoint a client address was last given, while its affinity has not expired.
    func affinityEndpoint(for client: String, now: NIODeadline) -> Int? {
        guard let timeout = cluster.sessionAffinity else { return nil }
        return affinity.withLockedValue { table in
            guard let entry = table[client], now - entry.lastUsed < .milliseconds(timeout.milliseconds), entry.index < addresses.count else { return nil }
            table[client] = (entry.index, now)
            return entry.index
        }
    }

    func rememberAffinity(_ client: String, index: Int, now: NIODeadline) {
        guard let timeout = cluster.sessionAffinity else { return }
        affinity.withLockedValue { table in
            table[client] = (index, now)
            // Keep the table bounded: expired entries go when it grows.
            if table.count > 65_536 {
                let limit = TimeAmount.milliseconds(timeout.milliseconds)
                table = table.filter { now - $0.value.lastUsed < limit }
            }
        }
    }

    init(_ cluster: Cluster, metrics: ProxyMetrics) throws {
        self.cluster = cluster
        self.tls = try cluster.tls.map { try UpstreamTLSContext($0, cluster: cluster.name, alpn: cluster.httpProtocol == .h2 ? ["h2"] : []) }
        if let parent = cluster.parentProxy {
            // Every endpoint is reached through the parent, which resolves the endpoints' names itself.
            let address: SocketAddress
            do {
                address = try SocketAddress.makeAddressResolvingHost(parent.host, port: parent.port)
            } catch {
                throw EndpointResolutionError(cluster: cluster.name, endpoint: parent, underlying: "\(error) (the parent proxy)")
            }
            self.addresses = cluster.endpoints.map { _ in address }
        } else {
            self.addresses = try cluster.endpoints.map { endpoint in
                do {
                    return try SocketAddress.makeAddressResolvingHost(endpoint.host, port: endpoint.port)
                } catch {
                    throw EndpointResolutionError(cluster: cluster.name, endpoint: endpoint, underlying: "\(error)")
                }
            }
        }
        self.balancer = LoadBalancer(policy: cluster.loadBalancing, endpoints: cluster.endpoints)
        self.endpointNames = cluster.endpoints.map(\.description)
        self.authority = cluster.tls?.serverName ?? endpointNames.first ?? cluster.name
        self.countsActiveRequests = cluster.loadBalancing == .leastRequest
        self.stats = metrics.clusterStats(cluster: cluster.name)
    }
}

/// A cluster's TLS settings compiled into an `NIOSSLContext`.
final class UpstreamTLSContext: Sendable {
    let context: NIOSSLContext
    let serverName: String?

    init(_ tls: UpstreamTLS, cluster: String, alpn: [String] = []) throws {
        do {
            var configuration = try TLSConfiguration.client(tls)
            if !alpn.isEmpty { configuration.applicationProtocols = alpn }
            self.context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSettingsError(description: "clusters \"\(cluster)\": tls: \(error)")
        }
        self.serverName = tls.serverName
    }

    /// The SNI name for an endpoint: the configured name, else the host when it is not an IP address.
    func serverName(for endpoint: HostPort) -> String? {
        if let serverName { return serverName }
        return IPAddress(parsing: endpoint.host) == nil ? endpoint.host : nil
    }
}

extension TLSConfiguration {
    /// The client side of TLS to an upstream (a cluster's `tls:`, a kubeconfig's cluster and user): trusted
    /// CAs, verification, client certificate and key. Used by the data plane and by the Kubernetes API client.
    public static func client(_ tls: UpstreamTLS) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let file = tls.caFile {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
        } else if let pem = tls.caPEM {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(pem))
        }
        if tls.insecureSkipVerify { configuration.certificateVerification = .none }
        if let file = tls.clientCertificateFile {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(file).map { .certificate($0) }
        } else if let pem = tls.clientCertificatePEM {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(pem).map { .certificate($0) }
        }
        if let file = tls.clientKeyFile {
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: file, format: .pem))
        } else if let pem = tls.clientKeyPEM {
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: pem, format: .pem))
        }
        return configuration
    }
}

/// A listener's or cluster's TLS files cannot be used (unreadable, not PEM, a key that does not match).
public struct TLSSettingsError: Error, CustomStringConvertible {
    public var description: String
}
