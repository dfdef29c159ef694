@testable import FerryRoles
import Testing

/// The service proxy's `/metrics`: kube-proxy's names, written by swift-prometheus.
struct ServiceProxyStatusTests {
    @Test func syncsAreCountedTimedAndTheirRulesReported() {
        let status = ServiceProxyStatus(healthTimeout: .seconds(60))
        status.recordSuccess(took: .milliseconds(3), rules: .iptables(filter: 5, nat: 40))
        status.recordFailure()
        let text = status.metrics()
        let lines = Set(text.split(separator: "\n").map(String.init))
        for expected in [
            "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram",
            #"kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.002"} 0"#,
            #"kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004"} 1"#,
            #"kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="+Inf"} 1"#,
            "kubeproxy_sync_proxy_rules_duration_seconds_count 1",
            #"kubeproxy_sync_proxy_rules_iptables_total{table="filter"} 5.0"#,
            #"kubeproxy_sync_proxy_rules_iptables_total{table="nat"} 40.0"#,
            #"ferry_service_proxy_syncs_total{result="success"} 1"#,
            #"ferry_service_proxy_syncs_total{result="failure"} 1"#,
        ] {
            #expect(lines.contains(expected), "\(expected) in\n\(text)")
        }
        #expect(!text.contains("nftables"), "only the kind of rules synced is reported")
        #expect(lines.contains { $0.hasPrefix("kubeproxy_sync_proxy_rules_last_timestamp_seconds 1") })
    }

    @Test func nftablesSyncsReportTheirRuleCount() {
        let status = ServiceProxyStatus(healthTimeout: .seconds(60))
        status.recordSuccess(took: .milliseconds(1), rules: .nftables(12))
        status.recordSuccess(took: .milliseconds(1), rules: .nftables(14))
        let text = status.metrics()
        #expect(text.contains("\nferry_service_proxy_nftables_rules 14.0\n"), "\(text)")
        #expect(text.contains(#"ferry_service_proxy_syncs_total{result="success"} 2"#))
        #expect(!text.contains("iptables_total"))
    }
}
