import FerryTestSupport
import Foundation
import Testing

/// `tcp_proxy` listeners: bytes glued to an endpoint of a cluster, balanced, with connect-failure fallback,
/// half-close passed through. Real clients: curl (HTTP carried over TCP) and Python sockets.
@Suite struct TCPProxyTests {
    static func proxy(endpoints: [String], cluster extra: String = "") throws -> ProxyHarness {
        try ProxyHarness(yaml: """
        access_log: {format: json}
        listeners:
          - name: l4
            address: "127.0.0.1:0"
            tcp_proxy: {cluster: db}
        clusters:
          - name: db
            endpoints: [\(endpoints.map { "\"\($0)\"" }.joined(separator: ", "))]
            \(extra)
        """)
    }

    @Test func connectionsAreSpreadAndADeadEndpointIsSkipped() async throws {
        let a = try TestOrigin(name: "a", group: Fixtures.originGroup)
        let b = try TestOrigin(name: "b", group: Fixtures.originGroup)
        defer { a.close(); b.close() }
        // 127.0.0.1:1 refuses connections: every connection that tries it moves on to a live endpoint.
        let proxy = try Self.proxy(endpoints: [a.address, "127.0.0.1:1", b.address])
        var origins: [String] = []
        for _ in 0..<6 {
            let r = try await Curl.request("http://127.0.0.1:\(proxy.port("l4"))/x")
            #expect(r.status == 200)
            origins.append(r.header("x-origin") ?? "?")
        }
        #expect(Set(origins) == ["a", "b"], "\(origins)")
        #expect(await Waiting.until { proxy.accessLogLines.filter { $0.contains(#""method":"TCP""#) }.count == 6 })
        #expect(proxy.accessLogLines.contains { $0.contains(#""cluster":"db""#) && $0.contains("bytes_received") })
        await proxy.stop()
    }

    @Test(.requires("python3")) func aHalfCloseIsPassedThrough() async throws {
        guard Prerequisites.have("python3") else { return }
        let (origin, port) = try await Fixtures.halfCloseServer()
        defer { origin.signal(SIGKILL) }
        let proxy = try Self.proxy(endpoints: ["127.0.0.1:\(port)"])
        let clientScript = try Fixtures.writeTemp(Fixtures.halfCloseClient, name: "halfclose-client.py")
        let result = try await Subprocess.run(Prerequisites.path(of: "python3")!, [clientScript, "\(proxy.port("l4"))"], timeout: .seconds(30))
        #expect(result.stdout == "got 100000\n", "client: \(result.stdout)\(result.stderr) origin: \(origin.stdout)\(origin.stderr)")
        await proxy.stop()
    }

    @Test func clientIPAffinityKeepsAClientOnItsEndpoint() async throws {
        let a = try TestOrigin(name: "a", group: Fixtures.originGroup)
        let b = try TestOrigin(name: "b", group: Fixtures.originGroup)
        defer { a.close(); b.close() }
        let proxy = try Self.proxy(endpoints: [a.address, b.address], cluster: "session_affinity: 10s")
        var origins = Set<String>()
        for _ in 0..<6 {
            let r = try await Curl.request("http://127.0.0.1:\(proxy.port("l4"))/")
            origins.insert(r.header("x-origin") ?? "?")
        }
        #expect(origins.count == 1, "one client address, one endpoint while it comes back: \(origins)")
        await proxy.stop()
    }

    @Test func leastRequestCountsOpenConnections() async throws {
        let a = try TestOrigin(name: "a", group: Fixtures.originGroup)
        let b = try TestOrigin(name: "b", group: Fixtures.originGroup)
        defer { a.close(); b.close() }
        let proxy = try Self.proxy(endpoints: [a.address, b.address], cluster: "load_balancing: least_request")
        // One connection stays open on one endpoint; every new one goes to the other.
        let held = try RawClient(port: proxy.port("l4"))
        held.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = held.readResponse()
        let busy = a.connectionsAccepted == 1 ? a : b
        for _ in 0..<4 { _ = try await Curl.request("http://127.0.0.1:\(proxy.port("l4"))/") }
        #expect(busy.connectionsAccepted == 1, "the endpoint with an open connection got no new one")
        #expect(a.connectionsAccepted + b.connectionsAccepted == 5)
        await proxy.stop()
    }
}
