import Foundation
import NIOConcurrencyHelpers
import NIOHTTP1

/// What kube-proxy reports about its syncs, kept by the syncer and served on the health port (`/healthz`,
/// `/livez`) and the metrics port (`/metrics`, Prometheus text with kube-proxy's metric names).
public final class ServiceProxyStatus: Sendable {
    struct State {
        var lastSuccess: Date?
        var successes = 0
        var failures = 0
        /// Counts per bucket of `bucketBounds`, plus the total and sum.
        var buckets = [Int](repeating: 0, count: ServiceProxyStatus.bucketBounds.count)
        var count = 0
        var sum = 0.0
        var rules = RuleCount.iptables(filter: 0, nat: 0)
    }

    /// The rules the last sync wrote, per kind of kernel rules.
    enum RuleCount {
        case iptables(filter: Int, nat: Int)
        case nftables(Int)
    }

    /// kube-proxy's sync-duration buckets: 1 ms doubling, 15 of them.
    static let bucketBounds: [Double] = (0..<15).map { 0.001 * pow(2, Double($0)) }

    private let state = NIOLockedValueBox(State())
    let healthTimeout: Duration

    public init(healthTimeout: Duration) {
        self.healthTimeout = healthTimeout
    }

    func recordSuccess(took: Duration, rules: RuleCount) {
        let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
        state.withLockedValue { s in
            s.lastSuccess = Date()
            s.successes += 1
            s.count += 1
            s.sum += seconds
            for (i, bound) in Self.bucketBounds.enumerated() where seconds <= bound { s.buckets[i] += 1 }
            s.rules = rules
        }
    }

    func recordFailure() {
        state.withLockedValue { $0.failures += 1 }
    }

    /// `/healthz` and `/livez`: 200 while the last successful sync is recent, 503 before the first or when
    /// syncs keep failing.
    public func health(now: Date = Date()) -> (HTTPResponseStatus, String, String) {
        let last = state.withLockedValue { $0.lastSuccess }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let lastText = last.map { formatter.string(from: $0) } ?? ""
        let body = #"{"lastUpdated": "\#(lastText)","currentTime": "\#(formatter.string(from: now))"}"# + "\n"
        let healthy = last.map { now.timeIntervalSince($0) <= Double(healthTimeout.components.seconds) } ?? false
        return (healthy ? .ok : .serviceUnavailable, "application/json", body)
    }

    /// `/metrics` in the Prometheus text format.
    public func metrics() -> String {
        let s = state.withLockedValue { $0 }
        var lines = [
            "# HELP kubeproxy_sync_proxy_rules_duration_seconds SyncProxyRules latency in seconds",
            "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram",
        ]
        for (i, bound) in Self.bucketBounds.enumerated() {
            lines.append("kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"\(bound)\"} \(s.buckets[i])")
        }
        lines.append("kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"+Inf\"} \(s.count)")
        lines.append("kubeproxy_sync_proxy_rules_duration_seconds_sum \(s.sum)")
        lines.append("kubeproxy_sync_proxy_rules_duration_seconds_count \(s.count)")
        lines += [
            "# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds The last time proxy rules were successfully synced",
            "# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge",
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds \(s.lastSuccess.map { $0.timeIntervalSince1970 } ?? 0)",
        ]
        switch s.rules {
        case .iptables(let filter, let nat):
            lines += [
                "# HELP kubeproxy_sync_proxy_rules_iptables_total Total number of iptables rules owned by the proxy",
                "# TYPE kubeproxy_sync_proxy_rules_iptables_total gauge",
                "kubeproxy_sync_proxy_rules_iptables_total{table=\"filter\"} \(filter)",
                "kubeproxy_sync_proxy_rules_iptables_total{table=\"nat\"} \(nat)",
            ]
        case .nftables(let count):
            lines += [
                "# HELP ferry_service_proxy_nftables_rules Rules in the kube-proxy nftables tables (ip and ip6) written by the last sync",
                "# TYPE ferry_service_proxy_nftables_rules gauge",
                "ferry_service_proxy_nftables_rules \(count)",
            ]
        }
        lines += [
            "# HELP ferry_service_proxy_syncs_total Syncs of the rules, by result",
            "# TYPE ferry_service_proxy_syncs_total counter",
            "ferry_service_proxy_syncs_total{result=\"success\"} \(s.successes)",
            "ferry_service_proxy_syncs_total{result=\"failure\"} \(s.failures)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The health port's answers.
    public func respondHealth(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String, String) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        switch path {
        case "/healthz", "/livez": return health()
        default: return (.notFound, "text/plain", "try /healthz or /livez\n")
        }
    }

    /// The metrics port's answers.
    public func respondMetrics(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String, String) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        return path == "/metrics" ? (.ok, "text/plain; version=0.0.4", metrics()) : (.notFound, "text/plain", "try /metrics\n")
    }
}
