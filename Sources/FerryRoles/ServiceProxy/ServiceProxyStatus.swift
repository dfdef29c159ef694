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
    let healthTimeout: Duration
    private let eligibility = NIOLockedValueBox<(@Sendable () -> Bool?)?>(nil)

    /// Whether this node may take traffic, from its Node object (nil: not known, taken as yes).
    var nodeEligibility: (@Sendable () -> Bool?)? {
        get { eligibility.withLockedValue { $0 } }
        set { eligibility.withLockedValue { $0 = newValue } }
    }

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
