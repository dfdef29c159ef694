import FerryTestSupport
import Foundation
import Testing

/// Several requests on one keep-alive connection to a forward proxy: each one is decided on its own
/// (the per-connection memo of the last destination must never carry a decision to a different request).
@Suite struct ForwardProxyKeepAliveTests {
    @Test func eachRequestOnAConnectionIsDecidedOnItsOwn() async throws {
        let origin = try TestOrigin(name: "o", group: Fixtures.originGroup, host: "127.0.0.2")
        defer { origin.close() }
        let proxy = try ProxyHarness(yaml: """
        admin: {address: "127.0.0.1:0"}
        listeners:
          - name: egress
            address: "127.0.0.1:0"
            forward_proxy: {policy: p}
        policies:
          - name: p
            guards: none
            rules:
              - allow: {addresses: [127.0.0.2/32], methods: [GET]}
        clusters: []
        """)
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
}
