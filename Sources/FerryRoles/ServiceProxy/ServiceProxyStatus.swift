import Foundation
import NIOConcurrencyHelpers
import NIOHTTP1
import Prometheus

/// What kube-proxy reports about its syncs, kept by the syncer and served on the health port (`/healthz`,
/// `/livez`) and the metrics port (`/metrics`: kube-proxy's metric names, kept and written in the
/// Prometheus text format by swift-prometheus).
public final class ServiceProxyStatus: Sendable {
    struct State {
        var lastSuccess: Date?
        /// The rule-count gauges of the kind of rules synced (made at the first sync).
        var iptablesRules: (filter: Gauge, nat: Gauge)?
        var nftablesRules: Gauge?
    }

    /// The rules the last sync wrote, per kind of kernel rules.
    enum RuleCount {
        case iptables(filter: Int, nat: Int)
        case nftables(Int)

        /// The counts of two families' syncs together.
        static func + (a: RuleCount, b: RuleCount) -> RuleCount {
            switch (a, b) {
            case (.iptables(let f1, let n1), .iptables(let f2, let n2)): .iptables(filter: f1 + f2, nat: n1 + n2)
            case (.nftables(let x), .nftables(let y)): .nftables(x + y)
            default: b
            }
        }

        var total: Int {
            switch self {
            case .iptables(let filter, let nat): filter + nat
            case .nftables(let n): n
            }
        }
    }

    /// kube-proxy's sync-duration buckets: 1 ms doubling, 15 of them.
    static let bucketBounds: [Double] = (0..<15).map { 0.001 * pow(2, Double($0)) }

    private let state = NIOLockedValueBox(State())
    private let registry = PrometheusCollectorRegistry()
    private let syncDuration: ValueHistogram
    private let lastSyncTimestamp: Gauge
    private let successes: Counter
    private let failures: Counter
    let healthTimeout: Duration
    private let eligibility = NIOLockedValueBox<(@Sendable () -> Bool?)?>(nil)

    /// Whether this node may take traffic, from its Node object (nil: not known, taken as yes).
    var nodeEligibility: (@Sendable () -> Bool?)? {
        get { eligibility.withLockedValue { $0 } }
        set { eligibility.withLockedValue { $0 = newValue } }
    }

    public init(healthTimeout: Duration) {
        self.healthTimeout = healthTimeout
        syncDuration = registry.makeValueHistogram(
            descriptor: Self.name("kubeproxy_sync_proxy_rules_duration", "seconds", "SyncProxyRules latency in seconds"), buckets: Self.bucketBounds)
        lastSyncTimestamp = registry.makeGauge(
            descriptor: Self.name("kubeproxy_sync_proxy_rules_last_timestamp", "seconds", "The last time proxy rules were successfully synced"))
        let syncs = Self.name("ferry_service_proxy_syncs", "total", "Syncs of the rules, by result")
        successes = registry.makeCounter(descriptor: syncs, labels: [("result", "success")])
        failures = registry.makeCounter(descriptor: syncs, labels: [("result", "failure")])
    }

    func recordSuccess(took: Duration, rules: RuleCount) {
        let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
        let now = Date()
        syncDuration.record(seconds)
        successes.increment()
        lastSyncTimestamp.set(now.timeIntervalSince1970)
        state.withLockedValue { s in
            s.lastSuccess = now
            switch rules {
            case .iptables(let filter, let nat):
                if s.iptablesRules == nil {
                    let rules = Self.name("kubeproxy_sync_proxy_rules_iptables", "total", "Total number of iptables rules owned by the proxy")
                    s.iptablesRules = (registry.makeGauge(descriptor: rules, labels: [("table", "filter")]),
                                       registry.makeGauge(descriptor: rules, labels: [("table", "nat")]))
                }
                s.iptablesRules!.filter.set(Double(filter))
                s.iptablesRules!.nat.set(Double(nat))
            case .nftables(let count):
                if s.nftablesRules == nil {
                    s.nftablesRules = registry.makeGauge(
                        descriptor: Self.name("ferry_service_proxy_nftables", "rules", "Rules in the kube-proxy nftables tables (ip and ip6) written by the last sync"))
                }
                s.nftablesRules!.set(Double(count))
            }
        }
    }

    /// A metric's name as `NAME_UNIT`, with its help text.
    private static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: unit, helpText: help)
    }

    func recordFailure() {
        failures.increment()
    }

    /// `/healthz`: 200 while the last successful sync is recent and the node is eligible (its Node is not
    /// being deleted or marked for removal), 503 before the first sync, when syncs keep failing, or when the
    /// node is leaving. `/livez` (`livez: true`) leaves the node out, as kube-proxy's does.
    public func health(now: Date = Date(), livez: Bool = false) -> (HTTPResponseStatus, String, String) {
        let last = state.withLockedValue { $0.lastSuccess }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let lastText = last.map { formatter.string(from: $0) } ?? ""
        let synced = last.map { now.timeIntervalSince($0) <= Double(healthTimeout.components.seconds) } ?? false
        let eligible = livez ? nil : nodeEligibility?()
        var body = #"{"lastUpdated": "\#(lastText)","currentTime": "\#(formatter.string(from: now))""#
        if let eligible { body += #","nodeEligible": \#(eligible)"# }
        body += "}\n"
        return (synced && eligible != false ? .ok : .serviceUnavailable, "application/json", body)
    }

    /// `/metrics` in the Prometheus text format.
    public func metrics() -> String {
        registry.emitToString()
    }

    /// The health port's answers.
    public func respondHealth(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String, String) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        switch path {
        case "/healthz": return health()
        case "/livez": return health(livez: true)
        default: return (.notFound, "text/plain", "try /healthz or /livez\n")
        }
    }

    /// The metrics port's answers.
    public func respondMetrics(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String, String) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        return path == "/metrics" ? (.ok, "text/plain; version=0.0.4", metrics()) : (.notFound, "text/plain", "try /metrics\n")
    }
}
