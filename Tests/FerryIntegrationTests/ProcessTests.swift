import FerryTestSupport
import Foundation
import Testing

/// The `ferry` binary as users run it: reloads, drain on SIGTERM, exit codes, memory under large bodies.
@Suite(.serialized)
struct ProcessTests {
    static func forwardAll(_ origin: TestOrigin, extraRoutes: String = "") -> String {
        """
        admin: {address: "127.0.0.1:0"}
        drain_timeout: 10s
        listeners:
          - name: web
            address: "127.0.0.1:0"
            http:
              virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes:
        \(extraRoutes)
                    - match: {prefix: /}
                      forward: {cluster: origin}
        clusters:
          - {name: origin, endpoints: ["\(origin.address)"]}
        """
    }

    /// Runs `body` with an origin and `ferry run` forwarding everything to it; stops both afterwards.
    /// `arguments` are added to `ferry run -c FILE --threads 1`.
    static func withForwardingFerry(binary: String, arguments: [String] = [], _ body: (TestOrigin, FerryProcess) async throws -> Void) async throws {
        let origin = try TestOrigin(name: "o", group: Fixtures.originGroup)
        defer { origin.close() }
        let path = try Fixtures.writeTemp(forwardAll(origin), name: "ferry.yaml")
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", path, "--threads", "1"] + arguments, configPath: path)
        do {
            try await body(origin, ferry)
        } catch {
            await ferry.stop()
            throw error
        }
        await ferry.stop()
    }

    @Test(.requires("curl")) func largeBodiesStreamThroughWithFlatMemory() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        let origin = try TestOrigin(name: "big", group: Fixtures.originGroup)
        defer { origin.close() }
        let ferry = try await FerryProcess.run(binary: binary, yaml: Self.forwardAll(origin))
        defer { Task { await ferry.stop() } }
        let size = 256 * 1024 * 1024
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-big-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: file, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try handle.truncate(atOffset: UInt64(size))
        try handle.close()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let baseline = ferry.peakMemoryKiB ?? 0

        let upload = try await Curl.request(ferry.url("/sink"), ["-T", file], timeout: .seconds(240))
        #expect(upload.status == 200)
        #expect(upload.body == "received \(size) bytes\n")
        let download = try await Subprocess.run(Curl.curlPath, ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", ferry.url("/bytes/\(size)")], timeout: .seconds(240))
        #expect(download.stdout == "200 \(size)")

        let peak = ferry.peakMemoryKiB ?? Int.max
        // Each body passes through Ferry (256 MiB each way); Ferry's peak resident memory must not grow with it.
        #expect(peak - baseline < 48 * 1024, "peak \(peak) KiB, baseline \(baseline) KiB")
        ferry.signal(SIGTERM)
        #expect(await ferry.waitForExit() == 0)
    }

    @Test(.requires("curl", "python3")) func aReloadLeavesALongResponseAndAWebSocketUntouched() async throws {
        guard Prerequisites.have("curl", "python3"), let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withForwardingFerry(binary: binary) { origin, ferry in
            let port = ferry.port("web")!

            // A response that drips for 4 s, and a WebSocket that waits for a go-file before its second echo.
            let hold = try Subprocess(Curl.curlPath, ["-sS", "-w", "\n%{http_code}", ferry.url("/hold/40")])
            let goFile = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-go-\(UUID().uuidString)").path
            #expect(mkfifo(goFile, 0o600) == 0)
            let script = try Fixtures.writeTemp(Fixtures.webSocketClient, name: "ws.py")
            let ws = try Subprocess(Prerequisites.path(of: "python3")!, [script, "127.0.0.1", "\(port)", "/ws", goFile])
            #expect(await Waiting.until { ws.stdout.contains("echo1 hello") })
            #expect(await Waiting.until { origin.requestsStarted >= 1 }, "the long response has started")

            try ferry.rewriteConfig(Self.forwardAll(origin, extraRoutes: """
                        - match: {exact: /new}
                          direct_response: {status: 200, body: "new config\\n"}
            """))
            ferry.signal(SIGHUP)
            #expect(await Waiting.until { ferry.stderr.contains("configuration applied") })
            let fresh = try await Curl.request(ferry.url("/new"))
            #expect(fresh.body == "new config\n")

            // Opening the FIFO for writing releases the client, which is blocked opening it for reading.
            close(open(goFile, O_WRONLY))
            #expect(await ws.waitForExit(timeout: .seconds(30)) == 0, "\(ws.stderr)")
            #expect(ws.stdout == "upgraded\necho1 hello\necho2 again\n")
            #expect(await hold.waitForExit(timeout: .seconds(30)) == 0)
            #expect(hold.stdout == String(repeating: ".", count: 40) + "\n200")
            ferry.signal(SIGTERM)
            #expect(await ferry.waitForExit() == 0)
        }
    }

    @Test(.requires("curl")) func aReloadBindsNewListenersFirstAndStopsRemovedOnes() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withForwardingFerry(binary: binary) { origin, ferry in
            let one = Self.forwardAll(origin)
            let webPort = ferry.port("web")!
            let second = """
              - name: extra
                address: "127.0.0.1:0"
                http:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                        - match: {prefix: /}
                          direct_response: {status: 200, body: "extra\\n"}
            clusters:
            """
            try ferry.rewriteConfig(one.replacingOccurrences(of: "clusters:\n", with: second + "\n"))
            ferry.signal(SIGHUP)
            #expect(await Waiting.until { ferry.appliedReloads == 1 })
            let extraPort = try #require(ferry.port("extra"))
            #expect(try await Curl.request("http://127.0.0.1:\(extraPort)/").body == "extra\n")
            #expect(try await Curl.request("http://127.0.0.1:\(webPort)/still").status == 200, "an unchanged listener keeps its socket")

            try ferry.rewriteConfig(one)
            ferry.signal(SIGHUP)
            #expect(await Waiting.until { ferry.appliedReloads == 2 })
            let gone = try await Curl.request("http://127.0.0.1:\(extraPort)/", ["--max-time", "3"])
            #expect(gone.status == 0, "a removed listener stops accepting")
            #expect(try await Curl.request("http://127.0.0.1:\(webPort)/still").status == 200)
            ferry.signal(SIGTERM)
            #expect(await ferry.waitForExit() == 0)
    
        }
    }

    @Test(.requires("curl")) func anInvalidReloadIsRefusedAndTheOldConfigurationStays() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withForwardingFerry(binary: binary) { origin, ferry in
            try ferry.rewriteConfig(Self.forwardAll(origin).replacingOccurrences(of: "prefix: /", with: "prefix: nope"))
            // No signal: the edit itself is noticed.
            #expect(await Waiting.until { ferry.stderr.contains("configuration refused") })
            #expect(ferry.stderr.contains("routes[0].match.prefix: must start with \"/\""))
            let stillServing = try await Curl.request(ferry.url("/kept"))
            #expect(stillServing.status == 200)
            let dump = try await Curl.request("http://127.0.0.1:\(ferry.adminPort!)/config_dump")
            #expect(dump.body.contains("\"last_reload_error\""))
            #expect(dump.body.contains("\"version\" : 1"))
            ferry.signal(SIGTERM)
            #expect(await ferry.waitForExit() == 0)
        }
    }

    @Test(.requires("curl")) func sigtermFailsReadinessStopsAcceptingAndDrainsInFlightRequests() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withForwardingFerry(binary: binary) { origin, ferry in
            let admin = "http://127.0.0.1:\(ferry.adminPort!)"
            #expect(try await Curl.request(admin + "/ready").status == 200)
            let inFlight = try Subprocess(Curl.curlPath, ["-sS", "-w", "\n%{http_code}", ferry.url("/slow/1500")])
            #expect(await Waiting.until { origin.requestsStarted == 1 })
            ferry.signal(SIGTERM)
            #expect(await Waiting.until { ferry.stderr.contains("draining") })
            let ready = try await Curl.request(admin + "/ready")
            #expect(ready.status == 503 && ready.body == "draining\n", "readiness fails at once")
            let refused = try await Curl.request(ferry.url("/after"), ["--max-time", "3"])
            #expect(refused.status == 0, "new connections are refused while draining")
            #expect(await inFlight.waitForExit(timeout: .seconds(20)) == 0)
            #expect(inFlight.stdout == "slow 1500ms from o\n\n200")
            #expect(await ferry.waitForExit(timeout: .seconds(20)) == 0)
        }
    }

    @Test func validateReportsProblemsWithFileLineAndFieldAndExitsOne() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("examples/reverse-proxy.yaml").path
        let good = try await Subprocess.run(binary, ["validate", "-c", examples])
        #expect(good.status == 0)
        #expect(good.stdout.contains("valid (1 listener(s), 5 route(s), 2 cluster(s))"))
        let bad = try Fixtures.writeTemp("""
        listeners:
          - name: web
            adress: 127.0.0.1:8080
            http: {virtual_hosts: []}
        clusters: []
        """, name: "bad.yaml")
        let result = try await Subprocess.run(binary, ["validate", "-c", bad])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(bad):3:5: listeners[0].adress: unknown field \"adress\"; did you mean \"address\"?"))
        #expect(result.stderr.contains("\(bad):2:5: listeners[0]: missing field \"address\""))
    }

    @Test(.requires("curl")) func theDemoServesItsRoutesAndStopsCleanly() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        let port = unusedPort()
        let adminPort = unusedPort()
        let demo = try await FerryProcess(binary: binary, arguments: ["demo", "--listen", "127.0.0.1:\(port)", "--admin", "127.0.0.1:\(adminPort)", "--threads", "1"])
        defer { Task { await demo.stop() } }
        // The hints follow the start line: wait for them rather than read the log at once.
        #expect(await Waiting.until { demo.stderr.contains("curl -s http://127.0.0.1:\(port)/blue/anything") })
        let root = try await Curl.request("http://127.0.0.1:\(port)/")
        #expect(root.body.hasPrefix("origin: blue") || root.body.hasPrefix("origin: green"))
        #expect(try await Curl.request("http://127.0.0.1:\(port)/green").body.hasPrefix("origin: green"))
        #expect(try await Curl.request("http://127.0.0.1:\(port)/", ["-H", "Host: api.demo.local"]).body.hasPrefix("origin: green"))
        #expect(try await Curl.request("http://127.0.0.1:\(port)/healthz").body == "ok\n")
        #expect(try await Curl.request("http://127.0.0.1:\(port)/old").status == 301)
        #expect(try await Curl.request("http://127.0.0.1:\(adminPort)/metrics").body.contains("ferry_requests_total{"))
        #expect(await Waiting.until { demo.accessLog.count == 5 })
        demo.signal(SIGINT)
        #expect(await demo.waitForExit() == 0)
    }

    @Test(.requires("curl")) func theAccessLogFormatFlagRendersEnvoyLines() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        try await Self.withForwardingFerry(binary: binary, arguments: ["--access-log-format", "envoy"]) { origin, ferry in
            _ = try await Curl.request(ferry.url("/x?y=1"), ["-A", "ferry-test", "-H", "X-Request-Id: rid-7"])
            #expect(await Waiting.until { ferry.accessLog.count == 1 })
            let line = ferry.accessLog.first ?? ""
            #expect(line.hasPrefix("["))
            #expect(line.contains("] \"GET /x?y=1 HTTP/1.1\" 200 - 0 "))
            #expect(line.hasSuffix("\"-\" \"ferry-test\" \"rid-7\" \"127.0.0.1:\(ferry.port("web")!)\" \"\(origin.address)\""))
            ferry.signal(SIGTERM)
            #expect(await ferry.waitForExit() == 0)
    
        }
    }

    @Test func aBusyAddressIsReportedWithTheListenerName() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let holder = try TestOrigin(name: "holder", group: Fixtures.originGroup)
        defer { holder.close() }
        let yaml = Self.forwardAll(holder).replacingOccurrences(of: "address: \"127.0.0.1:0\"\n    http", with: "address: \"\(holder.address)\"\n    http")
        let path = try Fixtures.writeTemp(yaml, name: "busy.yaml")
        let result = try await Subprocess.run(binary, ["run", "-c", path, "--threads", "1"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("listener \"web\" cannot listen on \(holder.address): the address is in use"), "\(result.stderr)")
    }

    @Test func aConfigurationThatCannotStartExitsOneWithTheReason() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let bad = try Fixtures.writeTemp("listeners: []\nclusters: [{name: a, endpoints: [\"127.0.0.1:1\"], load_balancing: fastest}]\n", name: "bad.yaml")
        let result = try await Subprocess.run(binary, ["run", "-c", bad])
        #expect(result.status == 1)
        #expect(result.stderr.contains("clusters[0].load_balancing: unknown load-balancing policy \"fastest\""))
    }
}
