@testable import FerryProxy
import FerryModel
import NIOCore
import NIOHTTP1
import Testing

/// The exchange's transitions without a channel: each test plays one sequence of events and checks the
/// actions and the state the machine ends in.
struct ExchangeStateMachineTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func machine(
        _ method: HTTPMethod = .GET, framing: HeaderRewriter.Framing = .none, retries: RetryPolicy = RetryPolicy(attempts: 0, on: []),
        endpoints: Int = 2, timeout: TimeAmount = .seconds(15), idle: TimeAmount? = nil, maxBody: Int? = nil, upgrade: Bool = false
    ) -> ExchangeStateMachine {
        var m = ExchangeStateMachine(method: method, keepAlive: true, startedAt: start)
        m.framing = framing
        m.isUpgrade = upgrade
        m.maxRequestBodyBytes = maxBody
        m.policy = .init(retries: retries, retriesOnStatus: retries.retriesOnSomeStatus, endpointCount: endpoints, responseTimeout: timeout, idleLimit: idle)
        return m
    }

    static func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    /// A body-less request that ended with its head, sent on a connection to `endpoint` attached at the start.
    static func sendWholeRequest(_ m: inout ExchangeStateMachine, endpoint: Int, reused: Bool) {
        m.attemptStarted(endpoint: endpoint)
        _ = m.requestEnded(nil, now: start)
        _ = m.upstreamAttached(reused: reused, now: start)
    }
    static func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    @Test func aBodilessRequestHeldThenForwardedAndAnsweredKeepsBothConnections() {
        var m = Self.machine()
        m.attemptStarted(endpoint: 0)
        #expect(m.requestEnded(nil, now: Self.start) == .held)
        let held = m.upstreamAttached(reused: false, now: Self.at(1))
        #expect(held.count == 1)
        #expect(m.phase == .forwarding)
        // Counted from the request's start: it ended with its head.
        #expect(m.responseDeadline == Self.at(15))
        #expect(m.responseHeadReceived(status: .ok, upgradeAllowed: false, upstreamKeepAlive: true, declaresBody: true, now: Self.at(2)) == .forward)
        #expect(m.responseDeadline == nil)
        m.responseHeadSent(keepAlive: true)
        #expect(m.responseEnded() == .complete(reuseUpstream: true))
        #expect(m.isComplete)
        #expect(m.keepAlive)
        #expect(!m.clientLeft())
    }

    @Test func bodyPartsArriveHeldAndLeaveInOrder() {
        var m = Self.machine(.POST, framing: .chunked)
        m.attemptStarted(endpoint: 1)
        #expect(m.requestBodyReceived(Self.bytes("ab"), now: Self.start) == .held)
        #expect(m.requestBodyReceived(Self.bytes("cd"), now: Self.start) == .held)
        #expect(m.requestEnded(["x-sum": "1"], now: Self.at(3)) == .held)
        let held = m.upstreamAttached(reused: false, now: Self.at(4))
        let texts: [String] = held.map {
            switch $0 {
            case .body(let b): String(buffer: b)
            case .end(let trailers): "end \(trailers?.first(name: "x-sum") ?? "-")"
            }
        }
        #expect(texts == ["ab", "cd", "end 1"])
        // A request with a body ends when its last byte does: the deadline runs from the attach that sent it.
        #expect(m.responseDeadline == Self.at(4) + .seconds(15))
        #expect(m.requestBodyReceived(Self.bytes("late"), now: Self.at(5)) == .forward)
    }

    @Test func aBodyOverTheLimitIs413BeforeTheResponseAndACloseAfter() {
        var before = Self.machine(.POST, framing: .contentLength, maxBody: 4)
        before.attemptStarted(endpoint: 0)
        _ = before.upstreamAttached(reused: false, now: Self.start)
        #expect(before.requestBodyReceived(Self.bytes("1234"), now: Self.start) == .forward)
        #expect(before.requestBodyReceived(Self.bytes("5"), now: Self.start) == .refuseTooLarge(max: 4))
        #expect(before.requestComplete)

        var after = Self.machine(.POST, framing: .contentLength, maxBody: 4)
        after.attemptStarted(endpoint: 0)
        _ = after.upstreamAttached(reused: false, now: Self.start)
        _ = after.responseHeadReceived(status: .ok, upgradeAllowed: false, upstreamKeepAlive: true, declaresBody: true, now: Self.start)
        after.responseHeadSent(keepAlive: false)
        #expect(after.requestBodyReceived(Self.bytes("12345"), now: Self.start) == .abortTooLarge)
    }

    @Test func connectFailuresAreRetriedOnUntriedEndpointsThenGivenUp() {
        var m = Self.machine(retries: RetryPolicy(attempts: 2, on: [.connectFailure]), endpoints: 2)
        m.attemptStarted(endpoint: 0)
        #expect(m.connectFailed() == .retry)
        #expect(m.excluded == [0])
        m.attemptStarted(endpoint: 1)
        // Attempts are left, endpoints are not.
        #expect(m.connectFailed() == .giveUp(retryLimitExceeded: true))

        var plain = Self.machine(retries: RetryPolicy(attempts: 3, on: [.reset]))
        plain.attemptStarted(endpoint: 0)
        #expect(plain.connectFailed() == .giveUp(retryLimitExceeded: false))
        // A fixed destination (the forward proxy) has no endpoints to move to.
        var fixed = Self.machine(retries: RetryPolicy(attempts: 3, on: [.connectFailure]))
        fixed.attemptStarted(endpoint: nil)
        #expect(fixed.connectFailed() == .giveUp(retryLimitExceeded: false))
    }

    @Test func aPooledConnectionThatClosesIsRetriedOnTheSameEndpointOnce() {
        var m = Self.machine()
        Self.sendWholeRequest(&m, endpoint: 1, reused: true)
        #expect(m.upstreamLost(retryable: true) == .retry)
        #expect(m.excluded.isEmpty, "a stale pooled connection says nothing about the endpoint")
        #expect(m.phase == .waiting)
        m.attemptStarted(endpoint: 1)
        _ = m.upstreamAttached(reused: false, now: Self.start)
        // A fresh connection that closes, and the policy does not retry resets: 502, the connection kept.
        #expect(m.upstreamLost(retryable: true) == .reply(close: false))
    }

    @Test func requestsWithBodiesAndNonIdempotentMethodsAreNotReplayed() {
        for (method, framing) in [(HTTPMethod.POST, HeaderRewriter.Framing.none), (.PUT, .contentLength)] {
            var m = Self.machine(method, framing: framing, retries: RetryPolicy(attempts: 3, on: [.reset]))
            Self.sendWholeRequest(&m, endpoint: 0, reused: true)
            #expect(m.upstreamLost(retryable: true) == .reply(close: false), "\(method)")
        }
    }

    /// The route timeout covers the whole exchange, retries included (Envoy's route timeout): while a retry
    /// waits for its connection no response deadline runs, and once it is attached the deadline is the
    /// original one, which may already have passed.
    @Test func aTimeoutDuringARetryIsTheRoutesWholeTimeout() {
        var m = Self.machine(retries: RetryPolicy(attempts: 1, on: [.reset]), timeout: .seconds(10))
        m.attemptStarted(endpoint: 0)
        _ = m.requestEnded(nil, now: Self.start)
        _ = m.upstreamAttached(reused: false, now: Self.at(1))
        #expect(m.deadline(now: Self.at(9)) == .none)
        #expect(m.upstreamLost(retryable: true) == .retry)
        #expect(m.deadline(now: Self.at(11)) == .none, "no response deadline while the retry connects")
        m.attemptStarted(endpoint: 1)
        _ = m.upstreamAttached(reused: false, now: Self.at(11))
        #expect(m.deadline(now: Self.at(11)) == .responseTimeout(close: false))
    }

    @Test func theUpstreamClosingMidBodyLeavesOnlyAClose() {
        var m = Self.machine()
        Self.sendWholeRequest(&m, endpoint: 0, reused: false)
        _ = m.responseHeadReceived(status: .ok, upgradeAllowed: false, upstreamKeepAlive: true, declaresBody: true, now: Self.start)
        m.responseHeadSent(keepAlive: true)
        #expect(m.upstreamLost(retryable: true) == .abort)
        #expect(m.clientLeft(), "the exchange did not complete")
    }

    @Test func anEarlyResponseEndsTheRequestAndBothConnections() {
        var m = Self.machine(.POST, framing: .contentLength)
        m.attemptStarted(endpoint: 0)
        _ = m.upstreamAttached(reused: false, now: Self.start)
        _ = m.requestBodyReceived(Self.bytes("part"), now: Self.start)
        #expect(m.responseHeadReceived(status: .payloadTooLarge, upgradeAllowed: false, upstreamKeepAlive: true, declaresBody: true, now: Self.start) == .forward)
        #expect(!m.keepAlive, "the rest of the body is never read: the client connection closes")
        m.responseHeadSent(keepAlive: false)
        #expect(m.responseEnded() == .complete(reuseUpstream: false))
        #expect(m.requestComplete)
    }

    @Test func upgrades() {
        // Accepted: the end of the 101 makes a tunnel.
        var accepted = Self.machine(upgrade: true)
        Self.sendWholeRequest(&accepted, endpoint: 0, reused: false)
        #expect(accepted.responseHeadReceived(status: .switchingProtocols, upgradeAllowed: true, upstreamKeepAlive: true, declaresBody: false, now: Self.start) == .forward)
        #expect(accepted.responseEnded() == .tunnel)

        // Refused by the upstream: an ordinary response, and the client connection closes after it.
        var refused = Self.machine(upgrade: true)
        Self.sendWholeRequest(&refused, endpoint: 0, reused: false)
        #expect(refused.responseHeadReceived(status: .forbidden, upgradeAllowed: false, upstreamKeepAlive: true, declaresBody: true, now: Self.start) == .forward)
        #expect(!refused.keepAlive)
        #expect(refused.responseEnded() == .complete(reuseUpstream: true))

        // A switch nobody asked for, or to a protocol not offered: no tunnel.
        var unasked = Self.machine()
        unasked.attemptStarted(endpoint: 0)
        _ = unasked.upstreamAttached(reused: false, now: Self.start)
        #expect(unasked.responseHeadReceived(status: .switchingProtocols, upgradeAllowed: true, upstreamKeepAlive: true, declaresBody: false, now: Self.start) == .refuseSwitch)
        var otherProtocol = Self.machine(upgrade: true)
        otherProtocol.attemptStarted(endpoint: 0)
        _ = otherProtocol.upstreamAttached(reused: false, now: Self.start)
        #expect(otherProtocol.responseHeadReceived(status: .switchingProtocols, upgradeAllowed: false, upstreamKeepAlive: true, declaresBody: false, now: Self.start) == .refuseSwitch)
        // An upgrade is never retried: the upstream may have switched already.
        var reset = Self.machine(retries: RetryPolicy(attempts: 2, on: [.reset]), upgrade: true)
        Self.sendWholeRequest(&reset, endpoint: 0, reused: true)
        #expect(reset.upstreamLost(retryable: true) == .reply(close: false))
    }

    @Test func a204ThatDeclaresABodyDoesNotGoBackToThePool() {
        var m = Self.machine()
        Self.sendWholeRequest(&m, endpoint: 0, reused: false)
        _ = m.responseHeadReceived(status: .noContent, upgradeAllowed: false, upstreamKeepAlive: true, declaresBody: true, now: Self.start)
        m.responseHeadSent(keepAlive: true)
        #expect(m.responseEnded() == .complete(reuseUpstream: false))
    }

    @Test func aStatusTheRouteRetriesIsTriedAgainWhileAttemptsLast() {
        var m = Self.machine(retries: RetryPolicy(attempts: 1, on: [.status(503)]), endpoints: 2)
        Self.sendWholeRequest(&m, endpoint: 0, reused: false)
        #expect(m.responseHeadReceived(status: .serviceUnavailable, upgradeAllowed: false, upstreamKeepAlive: true, declaresBody: true, now: Self.start) == .retry)
        #expect(m.excluded == [0])
        m.attemptStarted(endpoint: 1)
        _ = m.upstreamAttached(reused: false, now: Self.start)
        #expect(m.responseHeadReceived(status: .serviceUnavailable, upgradeAllowed: false, upstreamKeepAlive: true, declaresBody: true, now: Self.start) == .forward)
        #expect(m.attempts == 2)
    }

    @Test func aLocalReplyToARequestWithABodyReadsAndDropsTheRest() {
        var m = Self.machine(.POST, framing: .contentLength)
        #expect(m.answeredLocally(close: false) == .readRestOfRequest)
        #expect(m.phase == .answered)
        #expect(m.requestBodyReceived(Self.bytes("ignored"), now: Self.start) == .drop)
        #expect(m.requestEnded(nil, now: Self.start) == .finish)
        #expect(m.keepAlive)

        var closing = Self.machine(.POST, framing: .contentLength)
        #expect(closing.answeredLocally(close: true) == .finish)
        #expect(!closing.keepAlive)
    }

    @Test func nothingMovingForTheIdleLimitTimesTheExchangeOut() {
        var m = Self.machine(.POST, framing: .contentLength, idle: .seconds(5))
        m.attemptStarted(endpoint: 0)
        _ = m.upstreamAttached(reused: false, now: Self.start)
        _ = m.requestBodyReceived(Self.bytes("x"), now: Self.at(4))
        #expect(m.deadline(now: Self.at(8)) == .none)
        #expect(m.deadline(now: Self.at(9)) == .idleTimeout(responseStarted: false))
        _ = m.responseHeadReceived(status: .ok, upgradeAllowed: false, upstreamKeepAlive: true, declaresBody: true, now: Self.at(9))
        m.responseHeadSent(keepAlive: true)
        m.responseBodyReceived(now: Self.at(12))
        #expect(m.deadline(now: Self.at(16)) == .none)
        #expect(m.deadline(now: Self.at(17)) == .idleTimeout(responseStarted: true))
    }
}
