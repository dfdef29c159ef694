@testable import FerryProxy
import FerryModel
import NIOCore
import NIOHTTP1
import Testing

/// The decision phase without a socket: a request head, a listener and a client in, one outcome out.
struct RequestDecisionTests {
    /// A listener with one route of each kind the decision tells apart.
    static func listener(forwardProxy: Bool = false) throws -> (CompiledSnapshot, CompiledListener) {
        let api = VirtualHost(name: "api", domains: [.exact("api.test")], routes: [
            Route(name: "admin", match: RouteMatch(path: .prefix("/admin")), action: .forward([WeightedCluster(name: "api")]),
                  allowedSources: [IPRange(parsing: "10.0.0.0/8")!]),
            Route(name: "upload", match: RouteMatch(path: .exact("/upload")), action: .forward([WeightedCluster(name: "api")]), maxRequestBodyBytes: 10),
            Route(name: "renamed", match: RouteMatch(path: .prefix("/v1/")),
                  action: .forward([WeightedCluster(name: "api")]), rewrite: PathRewrite(regex: try CompiledRegex("^/v1/(.*)$"), replacement: "/v2/$1")),
            Route(name: "headers", match: RouteMatch(path: .prefix("/hdr")), action: .forward([WeightedCluster(name: "api")]),
                  requestHeaders: HeaderChanges(set: [.init(name: "x-team", value: "blue")])),
            { var r = Route(name: "mtls", match: RouteMatch(path: .prefix("/mtls")), action: .forward([WeightedCluster(name: "api")])); r.clientCertificateHeaders = .certificate; return r }(),
            Route(name: "empty", match: RouteMatch(path: .prefix("/empty")), action: .forward([WeightedCluster(name: "nobody")])),
            Route(name: "files", match: RouteMatch(path: .prefix("/files")), action: .staticFiles(StaticFiles(root: "/srv", prefix: "/files"))),
            Route(name: "posts", match: RouteMatch(path: .prefix("/posts"), methods: ["POST"]), action: .forward([WeightedCluster(name: "api")])),
            Route(name: "api", match: RouteMatch(path: .prefix("/")), action: .forward([WeightedCluster(name: "api")])),
        ])
        let rest = VirtualHost(name: "rest", domains: [.any], routes: [
            Route(name: "health", match: RouteMatch(path: .exact("/healthz")), action: .directResponse(status: 200, body: "ok\n")),
            Route(name: "moved", match: RouteMatch(path: .prefix("/old")), action: .redirect(Redirect(path: "/new", status: 308))),
            Route(name: "open", match: RouteMatch(path: .prefix("/open")), action: .forward([WeightedCluster(name: "api")])),
            Route(name: "kube", match: RouteMatch(path: .prefix("/api/")), action: .forward([WeightedCluster(name: "api")]), requestFilter: try RequestFilter()),
        ])
        var http = HTTPConnectionManager(limits: HTTPLimits(), virtualHosts: [api, rest])
        if forwardProxy { http.forwardProxy = ForwardProxySettings(policy: AccessPolicy(name: "p", rules: [])) }
        let config = ConfigSnapshot(
            listeners: [Listener(name: "web", address: HostPort(host: "127.0.0.1", port: 0), http: http)],
            clusters: [
                Cluster(name: "api", endpoints: [HostPort(host: "127.0.0.1", port: 9001)]),
                Cluster(name: "nobody", endpoints: []),
            ])
        let snapshot = try CompiledSnapshot(config, metrics: ProxyMetrics())
        return (snapshot, snapshot.listeners["web"]!)
    }

    /// Decides a request given as its first line and fields, from `client`.
    static func decide(_ requestLine: String, _ fields: [(String, String)] = [], client: String = "192.0.2.7", forwardProxy: Bool = false, facts: ClientCertificateFacts = .none, http10: Bool = false) throws -> RequestDecision {
        let (snapshot, listener) = try listener(forwardProxy: forwardProxy)
        let parts = requestLine.split(separator: " ")
        var headers = HTTPHeaders(fields)
        if !headers.contains(name: "host") && !http10 { headers.add(name: "Host", value: "api.test") }
        // Read as the proxy reads it: the request's bytes through Ferry's parser, a view of them out.
        var text = "\(parts[0]) \(parts[1]) HTTP/1.\(http10 ? 0 : 1)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        var buffer = ByteBuffer(string: text + "\r\n")
        var parser = HTTP1RequestParser(limits: HTTP1Parser.Limits(maxRequestLineBytes: 16 * 1024, maxHeadBytes: 64 * 1024, maxFieldCount: 100, maxChunkLineBytes: 4096))
        var view: HTTP1RequestHeadView?
        try parser.parse(&buffer) { if case .head(let h) = $0 { view = h } }
        let head = try #require(view)
        let summary = try RequestHeadValidator.validate(head, limits: listener.listener.http.limits, forwardProxy: forwardProxy).get()
        var random = FastRandom()
        return RequestDecision.decide(
            head, summary: summary, requestID: "rid-1", listener: listener, snapshot: snapshot,
            client: RequestDecision.Client(address: IPAddress(parsing: client), addressText: client, trustedPeer: false, overTLS: false),
            certificateName: { nil }, certificateFacts: { facts }, random: &random, allocator: ByteBufferAllocator())
    }

    /// What an outcome comes to, as one line a table can hold.
    static func summary(_ decision: RequestDecision) -> String {
        let route = decision.route?.route.name ?? "-"
        switch decision.outcome {
        case .reply(let reply):
            return "reply \(reply.status.code)\(reply.closeConnection ? " close" : "") route=\(route)"
        case .serveFiles(_, let path):
            return "files \(path) route=\(route)"
        case .forward(let plan):
            return "forward \(plan.cluster.cluster.name) route=\(route)"
        case .forwardProxy:
            return "forward-proxy"
        }
    }

    static let table: [(request: String, fields: [(String, String)], client: String, expected: String)] = [
        ("GET /", [], "192.0.2.7", "forward api route=api"),
        ("GET /admin/users", [], "192.0.2.7", "reply 403 route=admin"),
        ("GET /admin/users", [], "10.1.2.3", "forward api route=admin"),
        ("POST /upload", [("Content-Length", "11")], "192.0.2.7", "reply 413 close route=-"),
        ("POST /upload", [("Content-Length", "10")], "192.0.2.7", "forward api route=upload"),
        ("GET /empty", [], "192.0.2.7", "reply 503 route=empty"),
        ("GET /files/a.txt?x=1", [], "192.0.2.7", "files /files/a.txt route=files"),
        ("GET /posts", [], "192.0.2.7", "forward api route=api"),
        ("POST /posts", [("Content-Length", "0")], "192.0.2.7", "forward api route=posts"),
        ("GET /healthz", [("Host", "other.test")], "192.0.2.7", "reply 200 route=health"),
        ("GET /old/x", [("Host", "other.test")], "192.0.2.7", "reply 308 route=moved"),
        ("GET /missing", [("Host", "other.test")], "192.0.2.7", "reply 404 route=-"),
        ("GET /a%2Fb", [], "192.0.2.7", "reply 400 close route=-"),
        ("GET /a/./b/../c", [("Host", "other.test")], "192.0.2.7", "reply 404 route=-"),
        ("CONNECT /", [], "192.0.2.7", "reply 405 close route=-"),
        ("OPTIONS /", [("Max-Forwards", "0")], "192.0.2.7", "reply 200 route=-"),
        ("GET /api/v1/pods", [("Host", "evil.test")], "192.0.2.7", "reply 403 route=kube"),
        ("GET /api/v1/namespaces/a/pods/b/exec", [("Host", "localhost")], "192.0.2.7", "reply 403 route=kube"),
        ("GET /api/v1/pods", [("Host", "localhost")], "192.0.2.7", "forward api route=kube"),
    ]

    @Test(arguments: table.indices)
    func eachRequestGetsItsOutcome(_ index: Int) throws {
        let row = Self.table[index]
        let decision = try Self.decide(row.request, row.fields, client: row.client)
        #expect(Self.summary(decision) == row.expected, "\(row.request) \(row.fields) from \(row.client)")
    }

    @Test func aForwardProxyListenerHandsOverBeforeRouting() throws {
        let decision = try Self.decide("GET http://example.test/", forwardProxy: true)
        #expect(Self.summary(decision) == "forward-proxy")
        // Max-Forwards 0 is answered by the proxy itself, forward or reverse.
        #expect(Self.summary(try Self.decide("OPTIONS http://example.test/", [("Max-Forwards", "0")], forwardProxy: true)) == "reply 200 route=-")
    }

    @Test func theUpstreamHeadIsWrittenInOnePassWithForwardingFields() throws {
        let decision = try Self.decide("GET /v1/items?q=1", [("X-Forwarded-For", "203.0.113.9")])
        guard case .forward(let plan) = decision.outcome else { Issue.record("not forwarded: \(Self.summary(decision))"); return }
        #expect(plan.head == nil)
        let text = String(buffer: try #require(plan.headBytes))
        // The route's rewrite, not the received path; the peer is not trusted, so its X-Forwarded-For is replaced.
        #expect(text.hasPrefix("GET /v2/items?q=1 HTTP/1.1\r\n"))
        #expect(text.contains("\r\nx-forwarded-for: 192.0.2.7\r\n"))
        #expect(text.contains("\r\nx-request-id: rid-1\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))
    }

    @Test func aRouteThatChangesFieldsGetsAHeadToSerializeLater() throws {
        let decision = try Self.decide("GET /hdr")
        guard case .forward(let plan) = decision.outcome else { Issue.record("not forwarded: \(Self.summary(decision))"); return }
        #expect(plan.headBytes == nil)
        #expect(plan.head?.headers.first(name: "x-team") == "blue")
    }

    @Test func refusalsCarryTheirReasonsAndVerdicts() throws {
        let source = try Self.decide("GET /admin", client: "192.0.2.7")
        guard case .reply(let reply) = source.outcome else { Issue.record("not a reply"); return }
        #expect(reply.body == "403 Forbidden: client address 192.0.2.7 is not allowed by route admin\n")
        #expect(reply.flags == .sourceDenied)

        let filtered = try Self.decide("GET /api/v1/pods", [("Host", "evil.test")])
        #expect(filtered.audit?.verdict?.allowed == false)
        #expect(filtered.audit?.verdict?.text.hasPrefix("request filter:") == true)

        let empty = try Self.decide("GET /empty")
        #expect(empty.cluster?.cluster.name == "nobody")
        guard case .reply(let noEndpoints) = empty.outcome else { Issue.record("not a reply"); return }
        #expect(noEndpoints.body.contains("cluster nobody has no endpoints"))
    }

    @Test func aRouteBodyLimitReplacesTheListenersOne() throws {
        #expect(try Self.decide("POST /upload", [("Content-Length", "5")]).maxRequestBodyBytes == 10)
        #expect(try Self.decide("GET /").maxRequestBodyBytes == HTTPLimits().maxRequestBodyBytes)
    }

    /// A request Ferry changes nothing in travels upstream as its received field lines, byte for byte
    /// (optional whitespace and the client's spelling of names included), followed by Ferry's own fields.
    @Test func aRequestWithNothingToDropKeepsItsFieldLinesAsReceived() throws {
        let decision = try Self.decide("GET /items", [("Host", "api.test"), ("X-Custom", "   kept  as sent"), ("accept", "*/*")])
        guard case .forward(let plan) = decision.outcome else { Issue.record("not forwarded: \(Self.summary(decision))"); return }
        let text = String(buffer: try #require(plan.headBytes))
        #expect(text.hasPrefix("GET /items HTTP/1.1\r\nHost: api.test\r\nX-Custom:    kept  as sent\r\naccept: */*\r\nx-forwarded-for: 192.0.2.7\r\n"), "\(text)")
    }

    /// The head validator reads a head as bytes exactly as it reads the same head made of Strings.
    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nVia: 1.1 edge\r\nUser-Agent: t\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\nConnection: keep-alive, X-Secret\r\nExpect: 100-continue\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Request-Id: r\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\nMax-Forwards: 3\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
    ])
    func theValidatorReadsBytesAsItReadsStrings(_ text: String) throws {
        var parser = HTTP1RequestParser(limits: HTTP1Parser.Limits(maxRequestLineBytes: 1024, maxHeadBytes: 4096, maxFieldCount: 100, maxChunkLineBytes: 64))
        var buffer = ByteBuffer(string: text)
        var view: HTTP1RequestHeadView?
        try parser.parse(&buffer) { if case .head(let h) = $0 { view = h } }
        let head = try #require(view)
        let limits = HTTPLimits()
        let fromBytes = RequestHeadValidator.validate(head, limits: limits)
        let fromStrings = RequestHeadValidator.validate(head.head, limits: limits)
        #expect(String(describing: fromBytes) == String(describing: fromStrings), "\(text)")
        #expect(head.isKeepAlive == head.head.isKeepAlive, "\(text)")
    }

    /// A route that tells its upstream about the client certificate replaces whatever the client sent in
    /// those fields, and sends the PEM URL-encoded.
    @Test func clientCertificateFieldsReplaceWhatTheClientSent() throws {
        let facts = ClientCertificateFacts(verify: "SUCCESS", subjectDN: "CN=alice,O=Example", issuerDN: "CN=CA", pem: "-----BEGIN CERTIFICATE-----\nAB+/=\n-----END CERTIFICATE-----\n")
        let spoofed = [("ssl-client-verify", "SUCCESS"), ("SSL-Client-Subject-DN", "CN=admin"), ("ssl-client-cert", "forged")]
        let decision = try Self.decide("GET /mtls/x", spoofed, facts: facts)
        guard case .forward(let plan) = decision.outcome, let head = plan.head else { Issue.record("expected a forward with a changed head"); return }
        #expect(head.headers["ssl-client-verify"] == ["SUCCESS"])
        #expect(head.headers["ssl-client-subject-dn"] == ["CN=alice,O=Example"])
        #expect(head.headers["ssl-client-issuer-dn"] == ["CN=CA"])
        #expect(head.headers["ssl-client-cert"] == ["-----BEGIN%20CERTIFICATE-----%0AAB%2B%2F%3D%0A-----END%20CERTIFICATE-----%0A"])
        // No certificate: NONE and nothing else, the client's claims gone.
        let none = try Self.decide("GET /mtls/x", spoofed, facts: .none)
        guard case .forward(let plain) = none.outcome, let plainHead = plain.head else { Issue.record("expected a forward with a changed head"); return }
        #expect(plainHead.headers["ssl-client-verify"] == ["NONE"])
        #expect(plainHead.headers["ssl-client-subject-dn"].isEmpty && plainHead.headers["ssl-client-cert"].isEmpty)
        // Other routes pass the fields as they came (the route did not ask for them).
        let other = try Self.decide("GET /other", spoofed, facts: facts)
        guard case .forward(let otherPlan) = other.outcome, let bytes = otherPlan.headBytes else { Issue.record("expected the plain forward"); return }
        #expect(String(buffer: bytes).contains("ssl-client-cert: forged"))
    }

    /// An HTTP/1.0 request may come without Host; the HTTP/1.1 request sent upstream must have one
    /// (RFC 9112 §3.2): the cluster's authority, as nginx sends `$proxy_host`.
    @Test func anHTTP10RequestWithoutHostGetsTheClustersAuthority() throws {
        let decision = try Self.decide("GET /open", http10: true)
        guard case .forward(let plan) = decision.outcome, let bytes = plan.headBytes else { Issue.record("expected a forward: \(Self.summary(decision))"); return }
        let text = String(buffer: bytes)
        #expect(text.hasPrefix("GET /open HTTP/1.1\r\n"))
        #expect(text.lowercased().components(separatedBy: "\r\nhost: ").count == 2, "\(text)")
        #expect(text.contains("host: 127.0.0.1:9001\r\n"), "\(text)")
        // A request with its own Host keeps it, and gets no second one.
        let withHost = try Self.decide("GET /open", [("Host", "elsewhere.test")], http10: true)
        guard case .forward(let kept) = withHost.outcome, let keptBytes = kept.headBytes else { Issue.record("expected a forward"); return }
        #expect(String(buffer: keptBytes).lowercased().components(separatedBy: "\r\nhost: ").count == 2)
    }
}
