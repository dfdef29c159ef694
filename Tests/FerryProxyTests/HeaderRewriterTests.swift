@testable import FerryProxy
import FerryModel
import NIOCore
import NIOHTTP1
import Testing

struct HeaderRewriterTests {
    let info = HeaderRewriter.ForwardingInfo(clientAddress: "10.1.2.3", requestID: "rid-1")

    /// Validates and rewrites, as the handler does.
    func rewrite(_ head: HTTPRequestHead) throws -> HTTPRequestHead {
        let summary = try RequestHeadValidator.validate(head, limits: HTTPLimits()).get()
        return HeaderRewriter.upstreamRequest(head, summary: summary, info: info)
    }

    @Test func hopByHopFieldsAndConnectionListedFieldsAreRemoved() throws {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: [
            "Host": "a.test", "Connection": "keep-alive, X-Secret", "Keep-Alive": "timeout=5", "Proxy-Connection": "keep-alive",
            "TE": "trailers", "Trailer": "X-T", "Upgrade": "h2c", "X-Secret": "s", "X-Kept": "k",
        ])
        let out = try rewrite(head)
        for gone in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "x-secret"] {
            #expect(!out.headers.contains(name: gone), "\(gone)")
        }
        #expect(out.headers["x-kept"] == ["k"])
        #expect(out.headers["host"] == ["a.test"])
    }

    @Test func forwardingFieldsAreAddedAndAnIncomingRequestIdIsKept() throws {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "a.test", "X-Forwarded-For": "1.1.1.1", "X-Request-Id": "given", "Via": "1.1 edge", "X-Forwarded-Proto": "https"])
        let out = try rewrite(head)
        #expect(out.headers["x-forwarded-for"] == ["10.1.2.3"], "Ferry is the edge by default: the client's list is replaced")
        #expect(out.headers["x-forwarded-proto"] == ["http"])
        #expect(out.headers["x-forwarded-host"] == ["a.test"])
        #expect(out.headers["via"] == ["1.1 edge, 1.1 ferry"])
        #expect(out.headers["x-request-id"] == ["given"])
        var trusted = info
        trusted.trusted = true
        let behindProxy = HeaderRewriter.upstreamRequest(head, summary: try RequestHeadValidator.validate(head, limits: HTTPLimits()).get(), info: trusted)
        #expect(behindProxy.headers["x-forwarded-for"] == ["1.1.1.1, 10.1.2.3"])
        #expect(behindProxy.headers["x-forwarded-proto"] == ["https"])
    }

    @Test func aMissingRequestIdIsGenerated() throws {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "a.test"])
        #expect(try rewrite(head).headers["x-request-id"] == ["rid-1"])
    }

    @Test func chunkedRequestsStayChunkedAndConnectionCannotStripHostOrLength() throws {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: ["Host": "a", "Transfer-Encoding": "chunked", "Connection": "content-length, host"])
        let out = try rewrite(head)
        #expect(out.headers["transfer-encoding"] == ["chunked"])
        #expect(out.headers["host"] == ["a"])
    }

    @Test func upgradesKeepTheirUpgradeFields() throws {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws", headers: ["Host": "a", "Connection": "Upgrade", "Upgrade": "websocket"])
        let summary = try RequestHeadValidator.validate(head, limits: HTTPLimits()).get()
        #expect(summary.isUpgrade)
        let out = try rewrite(head)
        #expect(out.headers["upgrade"] == ["websocket"])
        #expect(out.headers["connection"] == ["upgrade"])
    }

    @Test func fieldNamesAreRecognisedWithoutRegardToCase() {
        #expect(FieldName("HOST") == .host)
        #expect(FieldName("Transfer-Encoding") == .transferEncoding)
        #expect(FieldName("x-forwarded-HOST") == .forwardedHost)
        #expect(FieldName("hosts") == .other)
        #expect(FieldName("TE").isHopByHop)
    }

    /// What Ferry sends downstream for a response head received as `text` (answering a GET), to a client of
    /// `version` whose connection stays open when `keepAlive`: the head's bytes and whether it stays open.
    static func downstream(_ text: String, to version: HTTPVersion = .http1_1, keepAlive: Bool = true, isUpgrade: Bool = false) throws -> (head: String, keepAlive: Bool) {
        var parser = HTTP1ResponseParser(limits: HTTP1ResponseParserTests.limits)
        parser.methods.append(.GET)
        var buffer = ByteBuffer(string: text)
        var view: HTTP1ResponseHeadView?
        try parser.parse(&buffer) { if case .head(let h) = $0 { view = h } }
        let head = try #require(view)
        var inspector = HeaderRewriter.ResponseInspector()
        head.forEachField { inspector.visit(name: $0, value: $1) }
        var alive = keepAlive
        let bytes = HeaderRewriter.downstreamHead(
            head, fields: inspector.fields(framing: head.bodyFraming), requestVersion: version, keepAlive: &alive, isUpgrade: isUpgrade,
            allocator: ByteBufferAllocator())
        return (String(buffer: bytes), alive)
    }

    @Test func aResponseThatNeedsNoChangeIsPassedOnAsItIs() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nX-A: b\r\n\r\n"
        #expect(try Self.downstream(text).head == text)
        let closing = try Self.downstream(text, keepAlive: false)
        #expect(closing.head == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\nconnection: close\r\n\r\n")
        #expect(!closing.keepAlive)
    }

    @Test func aResponseWithoutFramingIsChunkedForHTTP11AndClosedForHTTP10() throws {
        let text = "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n"
        let to11 = try Self.downstream(text)
        #expect(to11.head == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(to11.keepAlive)
        let to10 = try Self.downstream(text, to: .http1_0)
        #expect(to10.head == "HTTP/1.0 200 OK\r\nconnection: close\r\n\r\n")
        #expect(!to10.keepAlive)
    }

    @Test func anAcceptedUpgradeKeepsUpgradeAndSaysSo() throws {
        let out = try Self.downstream("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nKeep-Alive: x\r\nSec-WebSocket-Accept: k\r\n\r\n", isUpgrade: true)
        #expect(out.head == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: k\r\nconnection: upgrade\r\n\r\n")
    }

    @Test func a204NeverCarriesALength() throws {
        #expect(try Self.downstream("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-C: c\r\n\r\n").head == "HTTP/1.1 204 No Content\r\nX-C: c\r\n\r\n")
    }

    @Test func headAndNoContentResponsesHaveNoBody() {
        #expect(HeaderRewriter.responseFraming(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "10"]), requestMethod: .HEAD) == .none)
        #expect(HeaderRewriter.responseFraming(HTTPResponseHead(version: .http1_1, status: .noContent), requestMethod: .GET) == .none)
        #expect(HeaderRewriter.responseFraming(HTTPResponseHead(version: .http1_1, status: .notModified), requestMethod: .GET) == .none)
    }
}

struct RetryRuleTests {
    @Test func onlyIdempotentBodylessCompleteRequestsAreReplayed() {
        let policy = RetryPolicyFixture.policy
        #expect(ExchangeRules.mayRetry(.status, policy: policy, attempts: 1, method: .GET, framing: .none, requestComplete: true, reusedConnection: false, isUpgrade: false))
        #expect(!ExchangeRules.mayRetry(.status, policy: policy, attempts: 1, method: .POST, framing: .none, requestComplete: true, reusedConnection: false, isUpgrade: false))
        #expect(!ExchangeRules.mayRetry(.status, policy: policy, attempts: 1, method: .PUT, framing: .contentLength, requestComplete: true, reusedConnection: false, isUpgrade: false))
        #expect(!ExchangeRules.mayRetry(.status, policy: policy, attempts: 3, method: .GET, framing: .none, requestComplete: true, reusedConnection: false, isUpgrade: false))
        #expect(ExchangeRules.mayRetry(.reset, policy: .init(attempts: 0, on: []), attempts: 1, method: .GET, framing: .none, requestComplete: true, reusedConnection: true, isUpgrade: false))
        #expect(!ExchangeRules.mayRetry(.reset, policy: .init(attempts: 0, on: []), attempts: 1, method: .GET, framing: .none, requestComplete: true, reusedConnection: false, isUpgrade: false))
    }
}

extension RetryRuleTests {
    @Test func aPolicyThatNamesNoStatusIsNotConsultedOnResponseHeads() {
        #expect(RetryPolicyFixture.policy.retriesOnSomeStatus)
        #expect(RetryPolicy(attempts: 1, on: [.anyServerError]).retriesOnSomeStatus)
        #expect(!RetryPolicy().retriesOnSomeStatus)
        #expect(!RetryPolicy(attempts: 2, on: [.connectFailure, .reset]).retriesOnSomeStatus)
    }
}

enum RetryPolicyFixture {
    static let policy = RetryPolicy(attempts: 2, on: [.connectFailure, .reset, .status(503)])
}

extension HeaderRewriterTests {
    @Test func aForwardProxyRequestCarriesHostFromTheURLAndSquidsForwardingFieldsOnly() throws {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "http://dest.test:8080/p?q=1", headers: [
            "Host": "ignored.test", "User-Agent": "ua", "X-Forwarded-For": "1.1.1.1", "Via": "1.1 edge",
            "Proxy-Connection": "keep-alive", "Proxy-Authorization": "Basic eDp5", "Connection": "X-Secret", "X-Secret": "s",
            "X-Forwarded-Proto": "https", "Expect": "100-continue", "Content-Length": "3",
        ])
        let summary = try RequestHeadValidator.validate(head, limits: HTTPLimits(), forwardProxy: true).get()
        func fields(trusted: Bool) -> HTTPHeaders {
            var fields: [(String, String)] = []
            HeaderRewriter.forwardProxyFields(head, summary: summary, clientAddress: "10.1.2.3", host: "dest.test:8080", trusted: trusted) { fields.append(($0, $1)) }
            return HTTPHeaders(fields)
        }
        let out = fields(trusted: false)
        #expect(out.first?.name == "host" && out["host"] == ["dest.test:8080"])
        #expect(out["user-agent"] == ["ua"])
        #expect(out["content-length"] == ["3"])
        #expect(out["via"] == ["1.1 edge, 1.1 ferry"])
        #expect(out["x-forwarded-for"] == ["10.1.2.3"], "Ferry is the edge: the client's X-Forwarded-For is replaced")
        for gone in ["proxy-connection", "proxy-authorization", "connection", "x-secret", "expect", "x-request-id", "x-forwarded-host", "x-forwarded-proto"] {
            #expect(!out.contains(name: gone), "\(gone)")
        }
        // Behind a trusted proxy its fields are kept and appended to.
        let trusted = fields(trusted: true)
        #expect(trusted["x-forwarded-for"] == ["1.1.1.1, 10.1.2.3"])
        #expect(trusted["x-forwarded-proto"] == ["https"])
    }

    @Test func framingAndInternalFieldsAreNeverForwardedAsReceived() throws {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/p", headers: [
            "Host": "a.test", "Content-Length": "010", "X-Ferry-Route": "admin", "Forwarded": "for=1.2.3.4", "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.test", "Upgrade": "h2c", "Connection": "Upgrade, HTTP2-Settings", "HTTP2-Settings": "AAMAAABkAAQAoAAAAAIAAAAA",
        ])
        var summary = try RequestHeadValidator.validate(head, limits: HTTPLimits()).get()
        summary.upgrade = UpgradeProtocols().filter(summary.upgrade!)
        if summary.upgrade == nil { summary.hasUpgrade = false }
        let out = HeaderRewriter.upstreamRequest(head, summary: summary, info: .init(clientAddress: "10.1.2.3", requestID: "id"))
        #expect(out.headers["content-length"] == ["10"])
        #expect(out.headers["x-forwarded-proto"] == ["http"])
        #expect(out.headers["x-forwarded-host"] == ["a.test"])
        #expect(out.headers["x-forwarded-for"] == ["10.1.2.3"])
        for gone in ["x-ferry-route", "forwarded", "upgrade", "connection", "http2-settings"] {
            #expect(!out.headers.contains(name: gone), "\(gone)")
        }
        let twice = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/p", headers: ["Host": "a.test", "Content-Length": "5, 5"])
        let twiceOut = HeaderRewriter.upstreamRequest(twice, summary: try RequestHeadValidator.validate(twice, limits: HTTPLimits()).get(), info: .init(clientAddress: "10.1.2.3", requestID: "id"))
        #expect(twiceOut.headers["content-length"] == ["5"])
    }

    @Test func fieldsTheResponsesConnectionNamesAreRemoved() throws {
        let out = try Self.downstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Internal, Content-Length\r\nX-Internal: secret\r\nx-internal: again\r\nX-Public: ok\r\n\r\n")
        // Framing fields stay whatever Connection says.
        #expect(out.head == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Public: ok\r\n\r\n")
    }

    @Test func aResponseIsInspectedInOnePass() {
        let keepAlive = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "6", "Connection": "keep-alive"])
        #expect(HeaderRewriter.inspectResponse(keepAlive, requestMethod: .GET) == .init(framing: .contentLength, hasHopByHop: false, hasConnectionKeepAlive: true, declaresBody: true))
        let chunked = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Transfer-Encoding": "gzip, Chunked", "Keep-Alive": "timeout=5"])
        #expect(HeaderRewriter.inspectResponse(chunked, requestMethod: .GET) == .init(framing: .chunked, hasHopByHop: true, hasConnectionKeepAlive: false, declaresBody: true))
        let closing = HTTPResponseHead(version: .http1_0, status: .ok, headers: ["Connection": "close"])
        #expect(HeaderRewriter.inspectResponse(closing, requestMethod: .GET) == .init(framing: .untilClose, hasHopByHop: true, hasConnectionKeepAlive: false))
        #expect(HeaderRewriter.inspectResponse(keepAlive, requestMethod: .HEAD).framing == .none)
    }
}
