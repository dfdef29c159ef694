import FerryTestSupport
import Foundation
import Testing

@Suite(.serialized)
struct AdminTests {
    @Test(.requires("curl")) func adminEndpointsReportReadinessMetricsAndTheConfigInForce() async throws {
        guard Prerequisites.have("curl") else { return }
        let origin = try TestOrigin(name: "a", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin)
        _ = try await Curl.request(proxy.url("/one"))
        _ = try await Curl.request(proxy.url("/two"))
        let ready = try await Curl.request(proxy.adminURL + "/ready")
        #expect(ready.status == 200 && ready.body == "ready\n")
        #expect(try await Curl.request(proxy.adminURL + "/healthz").body == "ok\n")
        let metrics = try await Curl.request(proxy.adminURL + "/metrics").body
        #expect(metrics.contains("ferry_requests_total{listener=\"web\",route=\"all/0\",cluster=\"a\",status_class=\"2xx\"} 2"), "\(metrics)")
        #expect(metrics.contains("ferry_request_duration_seconds_count{listener=\"web\"} 2"))
        #expect(metrics.contains("# TYPE ferry_downstream_connections_active gauge"))
        #expect(metrics.contains("ferry_upstream_connect_failures_total 0"))
        let dump = try await Curl.request(proxy.adminURL + "/config_dump")
        let json = try JSONSerialization.jsonObject(with: Data(dump.body.utf8)) as! [String: Any]
        let snapshot = json["snapshot"] as! [String: Any]
        let listeners = snapshot["listeners"] as! [[String: Any]]
        #expect(listeners.first?["name"] as? String == "web")
        #expect((snapshot["clusters"] as! [[String: Any]]).first?["endpoints"] as? [String] == [origin.address])
        #expect(try await Curl.request(proxy.adminURL + "/clusters").body == "a round_robin \(origin.address)\n")
        #expect(try await Curl.request(proxy.adminURL + "/nope").status == 404)
        await proxy.stop()
    }
}

/// Deadlines a downstream peer controls: the request head must arrive in time; idle connections close.
@Suite(.serialized)
struct DownstreamTimeoutTests {
    static let yaml = Fixtures.config(
        routes: "- match: {prefix: /}\n  direct_response: {status: 200, body: \"hi\\n\"}",
        clusters: "- {name: unused, endpoints: []}",
        http: "timeouts: {request_headers: 400ms, idle: 800ms}")

    @Test func aSlowRequestHeadGets408AndTheConnectionCloses() async throws {
        let proxy = try ProxyHarness(yaml: Self.yaml)
        let client = try RawClient(port: proxy.port("web"))
        let clock = ContinuousClock()
        let start = clock.now
        client.send("GET / HTTP/1.1\r\nHost: a\r\n")
        let (text, closed) = client.readUntilClose()
        let elapsed = clock.now - start
        #expect(text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), "\(text)")
        #expect(closed)
        #expect(elapsed >= .milliseconds(400) && elapsed < .seconds(3))
        #expect(await Waiting.until { proxy.accessLogLines.first?.contains("\"response_flags\":\"RHT\"") == true })
        await proxy.stop()
    }

    @Test(.requires("curl")) func aConnectionOverTheListenersLimitGets503AndTheOthersAreServed() async throws {
        guard Prerequisites.have("curl") else { return }
        let proxy = try ProxyHarness(yaml: Fixtures.config(
            routes: "- match: {prefix: /}\n  direct_response: {status: 200, body: \"hi\\n\"}",
            clusters: "- {name: unused, endpoints: []}",
            http: "limits: {max_connections: 1}"))
        let holder = try RawClient(port: proxy.port("web"))
        holder.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(holder.read(until: "hi\n").hasPrefix("HTTP/1.1 200 OK"))
        let refused = try await Curl.request(proxy.url("/"))
        #expect(refused.status == 503)
        #expect(refused.body == "503 Service Unavailable: too many connections; retry later\n")
        holder.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(holder.readUntilClose().closed)
        #expect(await Waiting.untilAsync { await proxy.server.openDownstreamConnections() == 0 })
        #expect(try await Curl.request(proxy.url("/")).status == 200, "served again once the first connection is gone")
        #expect(try await Curl.request(proxy.adminURL + "/metrics").body.contains("ferry_downstream_connections_rejected_total "))
        await proxy.stop()
    }

    @Test func anIdleKeepAliveConnectionIsClosedWithoutAReply() async throws {
        let proxy = try ProxyHarness(yaml: Self.yaml)
        let client = try RawClient(port: proxy.port("web"))
        client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        let first = client.read(until: "hi\n")
        #expect(first.hasPrefix("HTTP/1.1 200 OK"))
        let clock = ContinuousClock()
        let start = clock.now
        let (rest, closed) = client.readUntilClose()
        #expect(rest.isEmpty)
        #expect(closed)
        #expect(clock.now - start >= .milliseconds(700))
        await proxy.stop()
    }
}
