import FerryTestSupport
import Foundation
import Testing

/// Several requests on one keep-alive connection to a forward proxy: each one is decided on its own
/// (the per-connection memo of the last destination must never carry a decision to a different request).
@Suite struct ForwardProxyKeepAliveTests {
    /// An in-process forward proxy (listener "egress") whose policy allows what `allow` (one rule) names.
    static func forwardProxy(allow rule: String) throws -> ProxyHarness {
        try ProxyHarness(yaml: """
        admin: {address: "127.0.0.1:0"}
        listeners:
          - name: egress
            address: "127.0.0.1:0"
            forward_proxy: {policy: p}
        policies:
          - name: p
            guards: none
            rules:
              - allow: \(rule)
        clusters: []
        """)
    }

    @Test func eachRequestOnAConnectionIsDecidedOnItsOwn() async throws {
        let origin = try TestOrigin(name: "o", group: Fixtures.originGroup, host: "127.0.0.2")
        defer { origin.close() }
        let proxy = try Self.forwardProxy(allow: "{addresses: [127.0.0.2/32], methods: [GET]}")
        defer { Task { await proxy.stop() } }
        let client = try RawClient(port: proxy.port("egress"))
        func exchange(_ request: String) -> String {
            client.send(request)
            return String(client.readResponse().head.prefix(12))
        }
        let base = "http://127.0.0.2:\(origin.port)"
        #expect(exchange("GET \(base)/a HTTP/1.1\r\nHost: x\r\n\r\n") == "HTTP/1.1 200")
        #expect(exchange("GET \(base)/b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n") == "HTTP/1.1 200")
        #expect(exchange("POST \(base)/c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") == "HTTP/1.1 403")
        #expect(exchange("GET http://127.0.0.9:\(origin.port)/ HTTP/1.1\r\nHost: x\r\n\r\n") == "HTTP/1.1 403")
        #expect(exchange("GET \(base)1/ HTTP/1.1\r\nHost: x\r\n\r\n") != "HTTP/1.1 200", "a longer port is another destination")
        #expect(exchange("GET \(base) HTTP/1.1\r\nHost: x\r\n\r\n") == "HTTP/1.1 200")
        #expect(origin.requestsServed == 3)
        #expect(origin.lastHeaders.contains { $0.0 == "host" && $0.1 == "127.0.0.2:\(origin.port)" })
    }

    /// Responses of every framing and a chunked upload, one after another on one connection, arrive
    /// byte-exact (the head of a small response goes out in one write with its body; a large body is not
    /// copied; Ferry writes request heads and chunk framing itself), and the request reaching the
    /// destination carries Squid's forwarding fields only.
    @Test func responsesOfEveryFramingArriveIntactOnOneConnection() async throws {
        let origin = try TestOrigin(name: "o", group: Fixtures.originGroup, host: "127.0.0.2")
        defer { origin.close() }
        let proxy = try Self.forwardProxy(allow: "{addresses: [127.0.0.2/32]}")
        defer { Task { await proxy.stop() } }
        let client = try RawClient(port: proxy.port("egress"))
        let base = "http://127.0.0.2:\(origin.port)"

        client.send("GET \(base)/bytes/10 HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nProxy-Connection: keep-alive\r\n\r\n")
        let small = client.readResponse()
        #expect(small.head.hasPrefix("HTTP/1.1 200"))
        #expect(small.body == String(repeating: "x", count: 10))
        let fields = Dictionary(origin.lastHeaders.map { ($0.0.lowercased(), $0.1) }, uniquingKeysWith: { a, _ in a })
        #expect(origin.lastHeaders.first?.0 == "host" && fields["host"] == "127.0.0.2:\(origin.port)")
        #expect(fields["via"] == "1.1 ferry")
        #expect(fields["x-forwarded-for"] == "127.0.0.1")
        for absent in ["x-request-id", "x-forwarded-host", "proxy-connection", "x-forwarded-proto"] {
            #expect(fields[absent] == nil, "\(absent)")
        }

        client.send("GET \(base)/chunked/100 HTTP/1.1\r\nHost: x\r\n\r\n")
        let chunked = client.read(until: "\r\n0\r\n\r\n")
        #expect(chunked.hasPrefix("HTTP/1.1 200"))
        #expect(chunked.lowercased().contains("transfer-encoding: chunked"))
        #expect(chunked.hasSuffix("\r\n\r\n64\r\n" + String(repeating: "x", count: 100) + "\r\n0\r\n\r\n"))

        client.send("GET \(base)/bytes/70000 HTTP/1.1\r\nHost: x\r\n\r\n")
        let large = client.readResponse()
        #expect(large.head.lowercased().contains("content-length: 70000"))
        #expect(large.body.utf8.count == 70000 && large.body.utf8.allSatisfy { $0 == UInt8(ascii: "x") })

        // A chunked upload with a trailer: Ferry frames the body it sends on, and the origin reads it whole.
        client.send("POST \(base)/sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n")
        let upload = client.readResponse()
        #expect(upload.head.hasPrefix("HTTP/1.1 200") && upload.body == "received 11 bytes\n")

        client.send("GET \(base)/bytes/5 HTTP/1.1\r\nHost: x\r\n\r\n")
        let after = client.readResponse()
        #expect(after.head.hasPrefix("HTTP/1.1 200") && after.body == "xxxxx")
        #expect(origin.requestsServed == 5)
    }

    /// A CONNECT tunnel passes a half-close on: the client shuts down its sending side, the destination
    /// sees the end, answers, and the answer still reaches the client.
    @Test(.requires("python3")) func aTunnelPassesAHalfCloseOn() async throws {
        guard Prerequisites.have("python3") else { return }
        let (origin, port) = try await Fixtures.halfCloseServer()
        defer { origin.signal(SIGKILL) }
        let proxy = try Self.forwardProxy(allow: "{addresses: [127.0.0.1/32]}")
        defer { Task { await proxy.stop() } }
        let clientScript = try Fixtures.writeTemp(Fixtures.halfCloseClient, name: "halfclose-tunnel-client.py")
        let result = try await Subprocess.run(Prerequisites.path(of: "python3")!, [clientScript, "\(proxy.port("egress"))", "\(port)"], timeout: .seconds(30))
        #expect(result.stdout == "got 100000\n", "client: \(result.stdout)\(result.stderr) origin: \(origin.stdout)\(origin.stderr)")
    }
}
