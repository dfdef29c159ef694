import Atomics
import FerryModel
import Prometheus

/// Prometheus metrics of the data plane. Handles are looked up when a snapshot is compiled, never per request.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let activeDownstreamConnections: Gauge
    let upstreamConnectFailures: Counter
    let upstreamRetries: Counter
    let accessLogDropped: Counter
    let connectionsRejected: Counter

    static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        activeDownstreamConnections = registry.makeGauge(
            descriptor: .ferry("downstream_connections", unit: "active", help: "Downstream connections open now"))
        upstreamConnectFailures = registry.makeCounter(
            descriptor: .ferry("upstream_connect_failures", unit: "total", help: "Upstream connection attempts that failed"))
        upstreamRetries = registry.makeCounter(
            descriptor: .ferry("upstream_retries", unit: "total", help: "Requests tried again on another endpoint"))
        connectionsRejected = registry.makeCounter(
            descriptor: .ferry("downstream_connections_rejected", unit: "total", help: "Connections refused over a listener's max_connections"))
        accessLogDropped = registry.makeCounter(
            descriptor: .ferry("access_log_dropped", unit: "total", help: "Access-log lines dropped because the sink could not keep up"))
    }

    func routeStats(listener: String, route: Route) -> RouteStats {
        let clusters: [String]
        if case .forward(let targets) = route.action { clusters = targets.map(\.name) } else { clusters = [] }
        let make = { (cluster: String) in
            (0..<6).map { cls in LazyCounter { self.requestCounter(listener: listener, route: route.name, cluster: cluster, status: cls * 100) } }
        }
        return RouteStats(byTarget: clusters.map(make), local: make(""))
    }

    func listenerStats(listener: String) -> ListenerStats {
        ListenerStats(
            duration: registry.makeDurationHistogram(
                descriptor: .ferry("request_duration", unit: "seconds", help: "Time from request head to the end of the response"),
                labels: [("listener", listener)],
                buckets: ProxyMetrics.durationBuckets),
            localReplies: (0..<6).map { cls in
                registry.makeCounter(
                    descriptor: .requests,
                    labels: [("listener", listener), ("route", ""), ("cluster", ""), ("status_class", "\(cls)xx")])
            }
        )
    }

    func clusterStats(cluster: String) -> ClusterStats {
        ClusterStats(
            connectFailures: registry.makeCounter(
                descriptor: .ferry("cluster_upstream_connect_failures", unit: "total", help: "Failed upstream connection attempts by cluster"),
                labels: [("cluster", cluster)]),
            retries: registry.makeCounter(
                descriptor: .ferry("cluster_upstream_retries", unit: "total", help: "Retries by cluster"),
                labels: [("cluster", cluster)])
        )
    }

    /// The counter for one request outcome.
    func requestCounter(listener: String, route: String, cluster: String, status: Int) -> Counter {
        registry.makeCounter(
            descriptor: .requests,
            labels: [("listener", listener), ("route", route), ("cluster", cluster), ("status_class", "\(min(max(status / 100, 0), 5))xx")])
    }
}

struct ListenerStats: Sendable {
    let duration: DurationHistogram
    /// Requests answered before any route matched (by status class 0xx...5xx).
    let localReplies: [Counter]

    func countLocalReply(status: Int) {
        localReplies[min(max(status / 100, 0), 5)].increment()
    }
}

struct ClusterStats: Sendable {
    let connectFailures: Counter
    let retries: Counter
}

/// A counter registered with the registry on its first increment (one atomic load per use after that).
/// swift-prometheus copies a metric's whole table of label sets each time one is registered, so
/// registering the twelve request counters of every route up front made compiling a snapshot quadratic
/// in its routes (six seconds for 2,000 Ingresses); only the counters of routes that serve requests are
/// registered now.
final class LazyCounter: Sendable {
    private let slot = ManagedAtomicLazyReference<Counter>()
    private let make: @Sendable () -> Counter

    init(_ make: @escaping @Sendable () -> Counter) {
        self.make = make
    }

    func increment() {
        (slot.load() ?? slot.storeIfNilThenLoad(make())).increment()
    }
}

/// Request counters of one route by status class: one set per cluster the route forwards to (by the
/// cluster's position in the route's list) and one for answers Ferry gave itself. Built per snapshot.
struct RouteStats: Sendable {
    let byTarget: [[LazyCounter]]
    let local: [LazyCounter]

    func count(target: Int?, status: Int) {
        let cls = min(max(status / 100, 0), 5)
        if let target, target < byTarget.count {
            byTarget[target][cls].increment()
        } else {
            local[cls].increment()
        }
    }
}

extension MetricNameDescriptor {
    static func ferry(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "ferry", metricName: name, unitName: unit, helpText: help)
    }

    static var requests: MetricNameDescriptor { .ferry(
        "requests", unit: "total", help: "Requests by listener, route, cluster and status class") }
}
