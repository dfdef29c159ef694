import FerryTestSupport
import Foundation
import Testing

/// The shared HTTP/1.1 path at its edges, with exact bytes on both wires: a client (`RawClient`) → Ferry (in
/// process) → an origin that answers with scripted bytes (`ScriptedOrigin`) and logs what it received.
@Suite(.serialized)
struct EdgeHardeningProxyTests {
    static func withProxy(http: String = "", extraRoutes: String = "", _ body: (ProxyHarness, ScriptedOrigin) async throws -> Void) async throws {
        guard Prerequisites.have("python3") else { return }
        let origin = try await ScriptedOrigin()
        defer { origin.stop() }
        let routes = """
        - match: {prefix: /admin}
          direct_response: {status: 403, body: "admin is closed\\n"}
        \(extraRoutes)
        - match: {prefix: /}
          forward: {cluster: a}
        """
        let proxy = try ProxyHarness(yaml: Fixtures.config(routes: routes, clusters: "- {name: a, endpoints: [\"{{a}}\"]}", http: http), values: ["a": origin.address])
        try await body(proxy, origin)
        await proxy.stop()
    }

    /// The first line of the last request the origin received.
    func lastRequestLine(_ origin: ScriptedOrigin) -> String {
        origin.requests.last?.components(separatedBy: "\r\n").first ?? ""
    }

    func fields(_ request: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in request.components(separatedBy: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[line[..<colon].lowercased()] = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    @Test func aDeniedPathIsNotReachedThroughDotSegmentsAndTheOriginGetsTheCanonicalPath() async throws {
        try await Self.withProxy { proxy, origin in
            let client = try RawClient(port: proxy.port("web"))
            for path in ["/public/../admin", "/public/%2e%2e/admin", "/admin;x=y", "//admin"] {
                client.send("GET \(path) HTTP/1.1\r\nHost: app.example\r\n\r\n")
                #expect(client.readResponse().head.hasPrefix("HTTP/1.1 403"), "\(path)")
            }
            #expect(origin.requests.isEmpty)
            client.send("GET /a/./b/../c/%7Euser//x%3ay?q=/../%2e HTTP/1.1\r\nHost: app.example\r\n\r\n")
            #expect(client.readResponse().head.hasPrefix("HTTP/1.1 200"))
            #expect(lastRequestLine(origin) == "GET /a/c/~user/x%3Ay?q=/../%2e HTTP/1.1")
        }
    }

    @Test func aNonCanonicalContentLengthIsForwardedAsTheLengthFerryFramed() async throws {
        try await Self.withProxy { proxy, origin in
            let client = try RawClient(port: proxy.port("web"))
            client.send("POST /upload HTTP/1.1\r\nHost: app.example\r\nContent-Length: 010\r\n\r\n0123456789GET /next HTTP/1.1\r\nHost: app.example\r\n\r\n")
            #expect(client.readResponse().head.hasPrefix("HTTP/1.1 200"))
            #expect(client.readResponse().head.hasPrefix("HTTP/1.1 200"))
            let upload = origin.requests.first ?? ""
            #expect(fields(upload)["content-length"] == "10", "\(upload)")
            #expect(!upload.contains("010"))
            #expect(upload.hasSuffix("\r\n\r\n0123456789"))
            #expect(lastRequestLine(origin) == "GET /next HTTP/1.1")
        }
    }

    @Test func h2cIsStrippedAndTheRequestGoesOnAsPlainHTTP11() async throws {
        try await Self.withProxy { proxy, origin in
            let client = try RawClient(port: proxy.port("web"))
            client.send("GET /h2c HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
            let (text, closed) = client.readUntilClose()
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text)")
            let received = fields(origin.requests.last ?? "")
            #expect(received["upgrade"] == nil && received["connection"] == nil && received["http2-settings"] == nil, "\(received)")
            // A plain HTTP/1.1 answer; the connection closes after it (it asked to become something else).
            #expect(text.lowercased().contains("connection: close\r\n"))
            #expect(closed)
            #expect(origin.requests.count == 1)
        }
    }

    @Test func anUnaskedFor101Is502AndNoTunnel() async throws {
        try await Self.withProxy { proxy, _ in
            let client = try RawClient(port: proxy.port("web"))
            client.send("GET /unasked-101 HTTP/1.1\r\nHost: app.example\r\n\r\n")
            let (text, closed) = client.readUntilClose()
            #expect(text.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), "\(text)")
            #expect(!text.contains("raw bytes of another protocol"))
            #expect(closed)
        }
    }

    /// A server that speaks first after its 101 (in the same write as the 101): the client gets those bytes
    /// at once, without having to send anything.
    @Test func bytesRightBehindA101ReachTheClientAtOnce() async throws {
        try await Self.withProxy { proxy, _ in
            let client = try RawClient(port: proxy.port("web"), receiveTimeout: .seconds(3))
            client.send("GET /greeting-101 HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            let greeting = client.read(until: "server greeting")
            #expect(greeting.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), "\(greeting)")
            #expect(greeting.hasSuffix("\r\n\r\nserver greeting"), "\(greeting)")
            client.send("ping")
            #expect(client.read(until: "ping") == "ping")
        }
    }

    @Test func a204WithBodyBytesIsDeliveredWithoutThemAndItsConnectionIsNotReused() async throws {
        try await Self.withProxy { proxy, origin in
            let client = try RawClient(port: proxy.port("web"))
            client.send("GET /204-with-body HTTP/1.1\r\nHost: app.example\r\n\r\n")
            let first = client.readResponse()
            #expect(first.head.hasPrefix("HTTP/1.1 204"), "\(first.head)")
            #expect(!first.head.lowercased().contains("content-length"), "a 204 carries no Content-Length (RFC 9110 §8.6)")
            #expect(first.body.isEmpty)
            client.send("GET /after HTTP/1.1\r\nHost: app.example\r\n\r\n")
            let second = client.readResponse()
            #expect(second.head.hasPrefix("HTTP/1.1 200"))
            #expect(second.body.hasPrefix("GET /after HTTP/1.1"), "the smuggled bytes never answer the next request: \(second.body)")
            #expect(origin.requests.count == 2)
        }
    }

    @Test func fieldsAResponsesConnectionNamesAreRemoved() async throws {
        try await Self.withProxy { proxy, _ in
            let client = try RawClient(port: proxy.port("web"))
            client.send("GET /connection-listed HTTP/1.1\r\nHost: app.example\r\n\r\n")
            let response = client.readResponse()
            let head = response.head.lowercased()
            #expect(!head.contains("x-internal"), "\(response.head)")
            #expect(head.contains("x-public: yes"))
            #expect(response.body == "ok")
        }
    }

    @Test func atTheEdgeForwardingFieldsComeFromTheConnectionAndFerrysNamespaceIsRemoved() async throws {
        try await Self.withProxy { proxy, origin in
            let client = try RawClient(port: proxy.port("web"))
            client.send("GET /x HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nForwarded: for=10.9.9.9\r\nX-Ferry-Route: admin\r\n\r\n")
            _ = client.readResponse()
            let received = fields(origin.requests.last ?? "")
            #expect(received["x-forwarded-for"] == "127.0.0.1")
            #expect(received["x-forwarded-proto"] == "http")
            #expect(received["x-forwarded-host"] == "app.example")
            #expect(received["forwarded"] == nil)
            #expect(received["x-ferry-route"] == nil)
        }
    }

    @Test func behindATrustedHopItsFieldsAreKeptAndTheClientIsTakenFromThem() async throws {
        let trusted = """
        - match: {prefix: /office}
          forward: {cluster: a}
          allow_sources: [203.0.113.0/24]
        """
        try await Self.withProxy(http: "forwarded: {xff_trusted_hops: 1}", extraRoutes: trusted) { proxy, origin in
            let client = try RawClient(port: proxy.port("web"))
            client.send("GET /office HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Ferry-Route: x\r\n\r\n")
            #expect(client.readResponse().head.hasPrefix("HTTP/1.1 200"))
            let received = fields(origin.requests.last ?? "")
            #expect(received["x-forwarded-for"] == "203.0.113.7, 127.0.0.1")
            #expect(received["x-forwarded-proto"] == "https")
            #expect(received["x-ferry-route"] == nil, "Ferry's namespace is never taken from a client")
            client.send("GET /office HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n")
            #expect(client.readResponse().head.hasPrefix("HTTP/1.1 403"))
        }
    }

    @Test func aBodyCrossingTheLimitMidStreamIs413() async throws {
        let limited = """
        - match: {prefix: /limited}
          forward: {cluster: a}
          max_request_body: 10
        """
        try await Self.withProxy(extraRoutes: limited) { proxy, _ in
            let client = try RawClient(port: proxy.port("web"))
            client.send("POST /limited HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n")
            client.send("8\r\n89abcdef\r\n0\r\n\r\n")
            let (text, closed) = client.readUntilClose()
            #expect(text.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"), "\(text)")
            #expect(closed)
        }
    }

    @Test func chunkExtensionsAreDroppedAndAnOverLongChunkLineIs400() async throws {
        try await Self.withProxy { proxy, origin in
            let client = try RawClient(port: proxy.port("web"))
            client.send("POST /upload HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0\r\n\r\n")
            #expect(client.readResponse().head.hasPrefix("HTTP/1.1 200"))
            let forwarded = origin.requests.last ?? ""
            #expect(forwarded.hasSuffix("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "Ferry writes the chunk framing itself: \(forwarded)")
            client.send("POST /upload HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n5;\(String(repeating: "e", count: 5000))\r\nhello\r\n0\r\n\r\n")
            let (text, closed) = client.readUntilClose()
            #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(text)")
            #expect(text.hasSuffix("a chunk-size line (size and extensions) longer than 4096 bytes\n"))
            #expect(closed)
            #expect(origin.requests.count == 1, "the refused upload never completes at the origin")
        }
    }

    @Test func garbageAfterAForwardedRequestIsAnsweredAfterIt() async throws {
        try await Self.withProxy { proxy, _ in
            let client = try RawClient(port: proxy.port("web"))
            client.send("GET /first HTTP/1.1\r\nHost: app.example\r\n\r\n\u{1}garbage\r\n\r\n")
            let (text, closed) = client.readUntilClose()
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(text)")
            #expect(text.contains("GET /first HTTP/1.1"))
            #expect(text.hasSuffix("400 Bad Request: malformed request after the previous one\n"), "\(text)")
            #expect(closed)
        }
    }
}

/// The forward proxy's edges: hosts that have no one meaning, IPv6 spellings of IPv4 addresses,
/// Max-Forwards, OPTIONS to a server itself.
@Suite(.serialized)
struct EdgeHardeningForwardProxyTests {
    static func withForwardProxy(_ body: (ProxyHarness, ScriptedOrigin) async throws -> Void) async throws {
        guard Prerequisites.have("python3") else { return }
        let origin = try await ScriptedOrigin()
        defer { origin.stop() }
        let proxy = try ProxyHarness(yaml: """
        admin: {address: "127.0.0.1:0"}
        listeners:
          - name: egress
            address: "127.0.0.1:0"
            forward_proxy: {policy: p}
        policies:
          - name: p
            rules:
              - allow: {addresses: [127.0.0.1/32], ports: [\(origin.port)]}
              - allow: {}
        clusters: []
        """)
        try await body(proxy, origin)
        await proxy.stop()
    }

    @Test(arguments: ["http://a..example/", "http://example.com../", "http://0177.0.0.1/", "http://127.0.0.01/", "http://user@example.com/"])
    func hostsWithoutOneMeaningAre400(url: String) async throws {
        try await Self.withForwardProxy { proxy, origin in
            let client = try RawClient(port: proxy.port("egress"))
            client.send("GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.readResponse().head.hasPrefix("HTTP/1.1 400"), "\(url)")
            #expect(origin.requests.isEmpty)
        }
    }

    @Test(arguments: ["[64:ff9b::a9fe:a9fe]", "[::169.254.169.254]", "[::ffff:169.254.169.254]", "[2002:a9fe:a9fe::1]", "[64:ff9b::7f00:1]"])
    func ipv6FormsOfGuardedIPv4AddressesAreDeniedUnderABroadAllow(host: String) async throws {
        try await Self.withForwardProxy { proxy, _ in
            let client = try RawClient(port: proxy.port("egress"))
            client.send("GET http://\(host)/latest/meta-data/ HTTP/1.1\r\nHost: x\r\n\r\n")
            let response = client.readResponse()
            #expect(response.head.hasPrefix("HTTP/1.1 403"), "\(host): \(response.head)")
            #expect(response.body.contains("guard: deny to_"), "\(response.body)")
        }
    }

    @Test func maxForwardsZeroIsAnsweredByFerryAndOtherwiseDecremented() async throws {
        try await Self.withForwardProxy { proxy, origin in
            let client = try RawClient(port: proxy.port("egress"))
            let base = "http://127.0.0.1:\(origin.port)"
            client.send("TRACE \(base)/t HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nProxy-Authorization: Basic c2VjcmV0\r\nX-Probe: 1\r\n\r\n")
            let trace = client.readResponse()
            #expect(trace.head.hasPrefix("HTTP/1.1 200"))
            #expect(trace.head.lowercased().contains("content-type: message/http"))
            #expect(trace.body.hasPrefix("TRACE \(base)/t HTTP/1.1\r\n"))
            #expect(trace.body.contains("X-Probe: 1"))
            #expect(!trace.body.lowercased().contains("proxy-authorization") && !trace.body.contains("c2VjcmV0"))
            client.send("OPTIONS \(base) HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n\r\n")
            let options = client.readResponse()
            #expect(options.head.hasPrefix("HTTP/1.1 200") && options.head.lowercased().contains("allow: "))
            #expect(origin.requests.isEmpty)
            client.send("OPTIONS \(base) HTTP/1.1\r\nHost: x\r\nMax-Forwards: 3\r\n\r\n")
            #expect(client.readResponse().head.hasPrefix("HTTP/1.1 200"))
            let forwarded = origin.requests.last ?? ""
            #expect(forwarded.hasPrefix("OPTIONS * HTTP/1.1\r\n"), "an empty path asks about the server itself: \(forwarded)")
            #expect(forwarded.lowercased().contains("\r\nmax-forwards: 2\r\n"))
        }
    }
}
