@testable import FerryProxy
import NIOHTTP1
import Testing

struct HeaderRewriterTests {
    let info = HeaderRewriter.ForwardingInfo(clientAddress: "10.1.2.3", requestID: "rid-1", isUpgrade: false)

    @Test func hopByHopFieldsAndConnectionListedFieldsAreRemoved() {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: [
            "Host": "a.test", "Connection": "keep-alive, X-Secret", "Keep-Alive": "timeout=5", "Proxy-Connection": "keep-alive",
            "TE": "trailers", "Trailer": "X-T", "Upgrade": "h2c", "X-Secret": "s", "X-Kept": "k",
        ])
        let out = HeaderRewriter.upstreamRequest(head, framing: .none, info: info)
        for gone in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "x-secret"] {
            #expect(!out.headers.contains(name: gone), "\(gone)")
        }
        #expect(out.headers["x-kept"] == ["k"])
        #expect(out.headers["host"] == ["a.test"])
    }

    @Test func forwardingFieldsAreAddedAndAnIncomingRequestIdIsKept() {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "a.test", "X-Forwarded-For": "1.1.1.1", "X-Request-Id": "given", "Via": "1.1 edge"])
        let out = HeaderRewriter.upstreamRequest(head, framing: .none, info: info)
        #expect(out.headers["x-forwarded-for"] == ["1.1.1.1, 10.1.2.3"])
        #expect(out.headers["x-forwarded-proto"] == ["http"])
        #expect(out.headers["x-forwarded-host"] == ["a.test"])
        #expect(out.headers["via"] == ["1.1 edge, 1.1 ferry"])
        #expect(out.headers["x-request-id"] == ["given"])
    }

    @Test func aMissingRequestIdIsGenerated() {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "a.test"])
        #expect(HeaderRewriter.upstreamRequest(head, framing: .none, info: info).headers["x-request-id"] == ["rid-1"])
    }

    @Test func chunkedRequestsStayChunkedAndConnectionCannotStripContentLength() {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: ["Host": "a", "Transfer-Encoding": "chunked", "Connection": "content-length, host"])
        let out = HeaderRewriter.upstreamRequest(head, framing: .chunked, info: info)
        #expect(out.headers["transfer-encoding"] == ["chunked"])
        #expect(out.headers["host"] == ["a"])
    }

    @Test func upgradesKeepTheirUpgradeFields() {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws", headers: ["Host": "a", "Connection": "Upgrade", "Upgrade": "websocket"])
        #expect(HeaderRewriter.isUpgradeRequest(head))
        let out = HeaderRewriter.upstreamRequest(head, framing: .none, info: .init(clientAddress: "1.2.3.4", requestID: "r", isUpgrade: true))
        #expect(out.headers["upgrade"] == ["websocket"])
        #expect(out.headers["connection"] == ["upgrade"])
    }

    @Test func aResponseWithoutFramingIsChunkedForHTTP11AndClosedForHTTP10() {
        let head = HTTPResponseHead(version: .http1_0, status: .ok, headers: ["Connection": "close"])
        let framing = HeaderRewriter.responseFraming(head, requestMethod: .GET)
        #expect(framing == .untilClose)
        var keepAlive = true
        let to11 = HeaderRewriter.downstreamResponse(head, upstreamFraming: framing, requestVersion: .http1_1, keepAlive: &keepAlive, isUpgrade: false)
        #expect(to11.headers["transfer-encoding"] == ["chunked"])
        #expect(keepAlive)
        let to10 = HeaderRewriter.downstreamResponse(head, upstreamFraming: framing, requestVersion: .http1_0, keepAlive: &keepAlive, isUpgrade: false)
        #expect(!to10.headers.contains(name: "transfer-encoding"))
        #expect(!keepAlive)
        #expect(to10.headers["connection"] == ["close"])
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

import FerryModel

enum RetryPolicyFixture {
    static let policy = RetryPolicy(attempts: 2, on: [.connectFailure, .reset, .status(503)])
}
