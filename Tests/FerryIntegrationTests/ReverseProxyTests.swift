import FerryTestSupport
import Foundation
import Testing

/// The HTTP/1.1 proxy path end to end: curl → Ferry (in process) → real origins on loopback.
@Suite(.serialized)
struct ReverseProxyTests {
    @Test(.requires("curl")) func forwardsAndAddsForwardingHeaders() async throws {
        guard Prerequisites.have("curl") else { return }
        let origin = try TestOrigin(name: "a", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin)
        let response = try await Curl.request(proxy.url("/hello?x=1"), ["-H", "X-Forwarded-For: 203.0.113.7", "-H", "Connection: keep-alive, X-Drop", "-H", "X-Drop: secret"])
        let port = proxy.port("web")
        await proxy.stop()
        #expect(response.status == 200)
        let echo = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as! [String: Any]
        #expect(echo["uri"] as? String == "/hello?x=1")
        let headers = Dictionary((echo["headers"] as! [[String: String]]).map { ($0["name"]!.lowercased(), $0["value"]!) }, uniquingKeysWith: { a, _ in a })
        #expect(headers["x-forwarded-for"] == "127.0.0.1", "Ferry is the edge by default: the client's X-Forwarded-For is replaced")
        #expect(headers["x-forwarded-proto"] == "http")
        #expect(headers["x-forwarded-host"] == "127.0.0.1:\(port)")
        #expect(headers["via"] == "1.1 ferry")
        #expect(headers["x-request-id"]?.count == 36)
        #expect(headers["x-drop"] == nil)
        #expect(headers["connection"] == nil)
        #expect(response.header("via") == nil, "Via is added to requests only, as nginx and Envoy do by default")
    }

    @Test(.requires("curl")) func keepAliveIsReusedOnBothSides() async throws {
        guard Prerequisites.have("curl") else { return }
        let origin = try TestOrigin(name: "a", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin)
        let urls = (1...5).map { proxy.url("/r\($0)") }
        let result = try await Subprocess.run(Curl.curlPath, ["-sS", "-w", "%{http_code} %{num_connects}\\n"] + urls.flatMap { ["-o", "/dev/null", $0] })
        await proxy.stop()
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines == ["200 1", "200 0", "200 0", "200 0", "200 0"], "one downstream connection for five requests")
        #expect(origin.requestsServed == 5)
        #expect(origin.connectionsAccepted == 1, "one upstream connection for five requests")
    }

    @Test(.requires("curl")) func chunkedBodiesStreamBothWays() async throws {
        guard Prerequisites.have("curl") else { return }
        let origin = try TestOrigin(name: "a", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin)
        let payload = try Fixtures.writeTemp(String(repeating: "0123456789", count: 30_000), name: "payload")
        let upload = try await Curl.request(proxy.url("/sink"), ["-H", "Transfer-Encoding: chunked", "--data-binary", "@\(payload)"])
        #expect(upload.status == 200)
        #expect(upload.body == "received 300000 bytes\n")
        let download = try await Curl.request(proxy.url("/chunked/250000"))
        #expect(download.status == 200)
        #expect(download.header("transfer-encoding") == "chunked")
        #expect(download.body.utf8.count == 250_000)
        let untilClose = try await Curl.request(proxy.url("/until-close/70000"))
        #expect(untilClose.body.utf8.count == 70_000, "an HTTP/1.0 read-until-close body is re-framed as chunked")
        #expect(untilClose.header("transfer-encoding") == "chunked")
        await proxy.stop()
    }

    @Test(.requires("curl")) func expectContinueIsAnsweredByFerryAndNotForwarded() async throws {
        guard Prerequisites.have("curl") else { return }
        let origin = try TestOrigin(name: "a", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin)
        let payload = try Fixtures.writeTemp(String(repeating: "z", count: 200_000), name: "upload")
        let result = try await Subprocess.run(Curl.curlPath, ["-sv", "-T", payload, "-H", "Expect: 100-continue", proxy.url("/sink")])
        #expect(result.stdout == "received 200000 bytes\n")
        #expect(result.stderr.contains("< HTTP/1.1 100 Continue"), "\(result.stderr)")
        #expect(!origin.lastHeaders.contains { $0.0.lowercased() == "expect" })
        let refused = try await Curl.request(proxy.url("/sink"), ["-H", "Expect: something-else", "--data", "x"])
        #expect(refused.status == 417)
        await proxy.stop()
    }

    @Test(.requires("curl")) func headResponsesCarryNoBodyAndTheConnectionIsReused() async throws {
        guard Prerequisites.have("curl") else { return }
        let origin = try TestOrigin(name: "a", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin)
        let head = try await Curl.request(proxy.url("/bytes/100"), ["-I"], timeout: .seconds(10))
        #expect(head.status == 200)
        #expect(head.header("content-length") == "100")
        // With -I curl writes the head to the output: nothing may follow it.
        #expect(head.body.hasSuffix("\r\n\r\n") && !head.body.contains("xxxxxxxxxx"))
        let chunkedHead = try await Curl.request(proxy.url("/chunked/100"), ["-I"], timeout: .seconds(10))
        #expect(chunkedHead.status == 200)
        #expect(chunkedHead.body.hasSuffix("\r\n\r\n") && !chunkedHead.body.contains("xxxxxxxxxx"))
        let both = try await Subprocess.run(Curl.curlPath, ["-sS", "-w", "%{http_code} %{num_connects}\\n", "-I", "-o", "/dev/null", proxy.url("/chunked/10"), "-o", "/dev/null", proxy.url("/bytes/10")], timeout: .seconds(20))
        #expect(both.stdout == "200 1\n200 0\n", "a HEAD response leaves the connection usable")
        await proxy.stop()
    }

    @Test(.requires("curl")) func aDeadOriginIs502AndAnEmptyClusterIs503() async throws {
        guard Prerequisites.have("curl") else { return }
        let dead = unusedPort()
        let proxy = try ProxyHarness(yaml: Fixtures.config(
            routes: "- match: {prefix: /empty}\n  forward: {cluster: empty}\n- match: {prefix: /}\n  forward: {cluster: dead}",
            clusters: "- {name: dead, endpoints: [\"127.0.0.1:{{dead}}\"]}\n- {name: empty, endpoints: []}"), values: ["dead": "\(dead)"])
        let bad = try await Curl.request(proxy.url("/x"))
        #expect(bad.status == 502)
        #expect(bad.body.contains("could not connect to 127.0.0.1:\(dead)"))
        let empty = try await Curl.request(proxy.url("/empty"))
        #expect(empty.status == 503)
        #expect(empty.body.contains("cluster empty has no endpoints"))
        #expect(await Waiting.until { proxy.accessLogLines.count == 2 })
        let lines = proxy.accessLogLines
        #expect(lines[0].contains("\"status\":502") && lines[0].contains("\"response_flags\":\"UF\""))
        #expect(lines[1].contains("\"status\":503") && lines[1].contains("\"response_flags\":\"UH\""))
        await proxy.stop()
    }

    @Test(.requires("curl")) func anUpstreamThatClosesBeforeRespondingIs502AndMidResponseCutsTheDownstream() async throws {
        guard Prerequisites.have("curl") else { return }
        let origin = try TestOrigin(name: "a", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin)
        let early = try await Curl.request(proxy.url("/close"), ["-X", "POST", "--data", "x"])
        #expect(early.status == 502)
        #expect(early.body.contains("closed the connection before responding"))
        let cut = try await Curl.request(proxy.url("/truncate/100000"))
        #expect(cut.exitCode == 18, "curl reports a partial transfer")
        #expect(cut.body.utf8.count == 50_000)
        #expect(await Waiting.until { proxy.accessLogLines.count == 2 })
        #expect(proxy.accessLogLines[0].contains("\"response_flags\":\"UC\""))
        #expect(proxy.accessLogLines[1].contains("\"response_flags\":\"UC\"") && proxy.accessLogLines[1].contains("\"bytes_sent\":50000"), "\(proxy.accessLogLines[1])")
        let after = try await Curl.request(proxy.url("/fine"))
        #expect(after.status == 200, "other requests are unaffected")
        await proxy.stop()
    }

    @Test(.requires("curl")) func aSlowOriginIs504() async throws {
        guard Prerequisites.have("curl") else { return }
        let origin = try TestOrigin(name: "slow", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try ProxyHarness(yaml: Fixtures.config(
            routes: "- match: {prefix: /}\n  forward: {cluster: a}\n  timeout: 300ms", clusters: "- {name: a, endpoints: [\"{{a}}\"]}"), values: ["a": origin.address])
        let clock = ContinuousClock()
        let start = clock.now
        let response = try await Curl.request(proxy.url("/slow/3000"))
        let elapsed = clock.now - start
        #expect(response.status == 504)
        #expect(response.body.contains("did not respond within 300ms"))
        #expect(elapsed < .seconds(2))
        #expect(await Waiting.until { proxy.accessLogLines.first?.contains("\"response_flags\":\"UT\"") == true })
        await proxy.stop()
    }

    @Test(.requires("curl")) func aRefusedConnectionIsRetriedOnAnotherEndpoint() async throws {
        guard Prerequisites.have("curl") else { return }
        let origin = try TestOrigin(name: "live", group: Fixtures.originGroup)
        defer { origin.close() }
        let dead = unusedPort()
        let proxy = try ProxyHarness(yaml: Fixtures.config(
            routes: "- match: {prefix: /}\n  forward: {cluster: mixed}",
            clusters: "- {name: mixed, endpoints: [\"127.0.0.1:{{dead}}\", \"{{live}}\"]}"), values: ["dead": "\(dead)", "live": origin.address])
        for i in 0..<6 {
            let response = try await Curl.request(proxy.url("/post\(i)"), ["-X", "POST", "--data", "body\(i)"])
            #expect(response.status == 200, "request \(i)")
        }
        #expect(origin.requestsServed == 6)
        #expect(await Waiting.until { proxy.accessLogLines.count == 6 })
        #expect(proxy.accessLogLines.contains { $0.contains("\"attempts\":2") }, "round robin hits the dead endpoint and retries")
        let metrics = try await Curl.request(proxy.adminURL + "/metrics")
        #expect(metrics.body.contains("ferry_upstream_retries_total "))
        #expect(metrics.body.contains("ferry_upstream_connect_failures_total "))
        await proxy.stop()
    }

    @Test(.requires("curl")) func a503IsRetriedWhenTheRouteSaysSo() async throws {
        guard Prerequisites.have("curl") else { return }
        let failing = try TestOrigin(name: "failing", group: Fixtures.originGroup)
        let healthy = try TestOrigin(name: "healthy", group: Fixtures.originGroup)
        defer { failing.close(); healthy.close() }
        // /status/503 on "failing"; "healthy" answers the same path with 503 too, so both attempts are used
        // and the final answer is the upstream's 503 with the retry count in the log.
        let proxy = try ProxyHarness(yaml: Fixtures.config(
            routes: "- match: {prefix: /}\n  forward: {cluster: two}\n  retries: {attempts: 1, on: [\"503\"]}",
            clusters: "- {name: two, endpoints: [\"{{a}}\", \"{{b}}\"]}"), values: ["a": failing.address, "b": healthy.address])
        let response = try await Curl.request(proxy.url("/status/503"))
        #expect(response.status == 503)
        #expect(failing.requestsServed + healthy.requestsServed == 2)
        let post = try await Curl.request(proxy.url("/status/503"), ["-X", "POST", "--data", ""])
        #expect(post.status == 503)
        #expect(failing.requestsServed + healthy.requestsServed == 3, "POST is not idempotent: not retried")
        await proxy.stop()
    }

    @Test func anInvalidChunkAfterTheHeadIs400AndNothingIsSmuggled() async throws {
        let origin = try TestOrigin(name: "a", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin)
        let client = try RawClient(port: proxy.port("web"))
        client.send("POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        let (text, closed) = client.readUntilClose()
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request"))
        #expect(closed)
        #expect(origin.requestsServed == 0)
        #expect(!(origin.lastHeaders.isEmpty) == (origin.requestsStarted == 1), "only the first head may have reached the origin")
        #expect(origin.requestsStarted <= 1)
        await proxy.stop()
    }

    @Test(arguments: [
        "POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    ])
    func smugglingAttemptsNeverReachTheOrigin(request: String) async throws {
        let origin = try TestOrigin(name: "a", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin)
        let client = try RawClient(port: proxy.port("web"))
        client.send(request)
        let (text, closed) = client.readUntilClose()
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request"), "\(text)")
        #expect(closed)
        #expect(origin.requestsStarted == 0)
        await proxy.stop()
    }

    @Test(.requires("python3")) func aWebSocketEchoesThroughFerry() async throws {
        guard Prerequisites.have("python3") else { return }
        let origin = try TestOrigin(name: "ws", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin)
        let script = try Fixtures.writeTemp(Fixtures.webSocketClient, name: "ws.py")
        let result = try await Subprocess.run(Prerequisites.path(of: "python3")!, [script, "127.0.0.1", "\(proxy.port("web"))", "/ws"], timeout: .seconds(30))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "upgraded\necho1 hello\necho2 again\n")
        #expect(await Waiting.until { proxy.accessLogLines.first?.contains("\"status\":101") == true })
        await proxy.stop()
    }

    @Test(.requires("python3")) func closedTunnelsGiveBackTheirPlaceUnderTheConnectionLimit() async throws {
        // Regression: a connection that became a tunnel stayed counted after it closed, so a listener
        // refused everything (503) once max_connections tunnels had ever existed.
        guard Prerequisites.have("python3") else { return }
        let origin = try TestOrigin(name: "ws", group: Fixtures.originGroup)
        defer { origin.close() }
        let proxy = try Fixtures.forwardingProxy(to: origin, http: "limits: {max_connections: 1}")
        let script = try Fixtures.writeTemp(Fixtures.webSocketClient, name: "ws.py")
        for round in 1...4 {
            let result = try await Subprocess.run(Prerequisites.path(of: "python3")!, [script, "127.0.0.1", "\(proxy.port("web"))", "/ws"], timeout: .seconds(30))
            #expect(result.stdout == "upgraded\necho1 hello\necho2 again\n", "session \(round): \(result.stderr)")
            // The tunnel's close reaches the proxy a moment after the client's; then its place is free again.
            #expect(await Waiting.untilAsync { (try? await Curl.request(proxy.url("/ok")))?.status == 200 })
        }
        await proxy.stop()
    }

    @Test(.requires("curl")) func hostAndHeaderRoutesWeightsAndStickySessionsPickTheRightOrigins() async throws {
        guard Prerequisites.have("curl") else { return }
        let a = try TestOrigin(name: "a", group: Fixtures.originGroup)
        let b = try TestOrigin(name: "b", group: Fixtures.originGroup)
        let c = try TestOrigin(name: "c", group: Fixtures.originGroup)
        defer { a.close(); b.close(); c.close() }
        let yaml = """
        admin: {address: "127.0.0.1:0"}
        listeners:
          - name: web
            address: "127.0.0.1:0"
            http:
              virtual_hosts:
                - name: api
                  domains: [api.test, "*.api.test"]
                  routes:
                    - {match: {prefix: /, headers: {x-canary: "true"}}, forward: {cluster: b}}
                    - {match: {prefix: /}, forward: {cluster: a}}
                - name: rest
                  domains: ["*"]
                  routes:
                    - {match: {prefix: /sticky}, forward: {cluster: sticky}}
                    - {match: {prefix: /}, forward: {clusters: [{name: a, weight: 1}, {name: c, weight: 3}]}}
        clusters:
          - {name: a, endpoints: ["{{a}}"]}
          - {name: b, endpoints: ["{{b}}"]}
          - {name: c, endpoints: ["{{c}}"]}
          - {name: sticky, endpoints: ["{{a}}", "{{b}}", "{{c}}"], load_balancing: ring_hash, hash_on: {header: x-user}}
        """
        let proxy = try ProxyHarness(yaml: yaml, values: ["a": a.address, "b": b.address, "c": c.address])
        #expect(try await Curl.request(proxy.url("/"), ["-H", "Host: api.test"]).header("x-origin") == "a")
        #expect(try await Curl.request(proxy.url("/"), ["-H", "Host: eu.api.test", "-H", "X-Canary: true"]).header("x-origin") == "b")
        var counts: [String: Int] = [:]
        for _ in 0..<60 {
            counts[try await Curl.request(proxy.url("/split")).header("x-origin") ?? "?", default: 0] += 1
        }
        #expect((counts["a"] ?? 0) + (counts["c"] ?? 0) == 60)
        #expect((counts["c"] ?? 0) > (counts["a"] ?? 0), "weights 1:3 → \(counts)")
        for user in ["alice", "bob", "carol"] {
            let first = try await Curl.request(proxy.url("/sticky"), ["-H", "X-User: \(user)"]).header("x-origin")
            for _ in 0..<3 {
                #expect(try await Curl.request(proxy.url("/sticky"), ["-H", "X-User: \(user)"]).header("x-origin") == first)
            }
        }
        await proxy.stop()
    }
}
