import FerryModel
import NIOCore
import NIOHTTP1

/// One request/response exchange as a value: events in (a body part arrived, the upstream answered, closed,
/// a deadline passed), an action out, which the channel handler performs. It holds no channel, reads no
/// clock (times are passed in) and writes nothing, so every transition is tested without sockets
/// (`ExchangeStateMachineTests`), and an HTTP/2 stream can drive the same exchange as an HTTP/1.1
/// connection does. Modelled on SwiftNIO's `HTTPServerPipelineHandler` state and AsyncHTTPClient's
/// `HTTP1ConnectionStateMachine`: one small action enum per event.
///
/// What stays with the driver: the wire format (serializing heads, chunk framing), the connection's own
/// life (pipelining, the idle and request-head deadlines, draining), and the upstream connection itself
/// (choosing an endpoint, dialling, the pool).
struct ExchangeStateMachine {
    enum Phase: Equatable {
        /// The way to answer is being found — an upstream connection, the forward proxy's checks, a file
        /// read: request body parts are held and nothing more is read.
        case waiting
        /// Request and response flow between the client and the upstream.
        case forwarding
        /// Ferry answered itself; the rest of the request body is read and dropped.
        case answered
    }

    /// A request part held while no upstream connection is attached.
    enum HeldPart {
        case body(ByteBuffer)
        case end(HTTPHeaders?)
    }

    /// What the route allows, fixed once the request is decided.
    struct Policy {
        var retries: RetryPolicy?
        /// Whether some response status is retried (checked on every head without reading the policy).
        var retriesOnStatus = false
        /// The endpoints the cluster has (retries avoid the ones that failed while others are left).
        var endpointCount = 0
        /// The response deadline, from the end of the request.
        var responseTimeout: TimeAmount?
        /// The longest time without a byte moving either way; nil: none.
        var idleLimit: TimeAmount?
    }

    let method: HTTPMethod
    let startedAt: NIODeadline
    /// How the request body is framed.
    var framing: HeaderRewriter.Framing = .none
    /// The request asks for a protocol switch (after the listener's filter).
    var isUpgrade = false
    var maxRequestBodyBytes: Int?
    var policy = Policy()

    private(set) var phase: Phase = .waiting
    /// Whether the client's connection may carry another exchange after this one.
    private(set) var keepAlive: Bool
    private(set) var requestComplete = false
    private(set) var requestBodyBytes = 0
    private(set) var held: [HeldPart] = []
    private(set) var attempts = 0
    /// The endpoint of the attempt under way, and those that failed.
    private(set) var endpoint: Int?
    private(set) var excluded: [Int] = []
    /// The attempt under way runs on a pooled connection that served an earlier request.
    private(set) var reusedConnection = false
    private(set) var responseHeadReceived = false
    private(set) var responseHeadSent = false
    private(set) var responseComplete = false
    /// Whether the upstream connection may serve another request once this response has ended.
    private(set) var upstreamReusable = false
    /// The upstream answered 101 to an upgrade the client asked for: the exchange becomes a tunnel.
    private(set) var upgradeAccepted = false
    private(set) var responseDeadline: NIODeadline?
    /// When bytes last moved (kept only under an idle limit).
    private(set) var lastProgress: NIODeadline

    init(method: HTTPMethod, keepAlive: Bool, startedAt: NIODeadline) {
        self.method = method
        self.keepAlive = keepAlive
        self.startedAt = startedAt
        self.lastProgress = startedAt
    }

    /// The client's connection ends with this exchange (the request asked, or cannot be followed by another).
    mutating func closeAfterExchange() {
        keepAlive = false
    }

    /// The request is over as far as reading goes: refused at its head, or the connection is ending.
    mutating func requestEndsHere() {
        requestComplete = true
    }

    /// Whether the driver may read more of the request now (while waiting nothing is read; while forwarding
    /// the upstream's writability also counts, which the driver knows).
    var readsRequest: Bool { phase != .waiting }

    // MARK: the request

    enum RequestBodyAction: Equatable {
        /// Write it to the upstream connection.
        case forward
        /// Kept until an upstream connection is attached.
        case held
        /// Ferry has answered: the bytes are read and dropped.
        case drop
        /// Over the body limit before any response: 413, and the connection closes.
        case refuseTooLarge(max: Int)
        /// Over the body limit after the response started: only a close is left.
        case abortTooLarge
    }

    mutating func requestBodyReceived(_ buffer: ByteBuffer, now: NIODeadline) -> RequestBodyAction {
        requestBodyBytes += buffer.readableBytes
        if policy.idleLimit != nil { lastProgress = now }
        if let max = maxRequestBodyBytes, requestBodyBytes > max, phase != .answered {
            if responseHeadSent { return .abortTooLarge }
            requestComplete = true
            return .refuseTooLarge(max: max)
        }
        switch phase {
        case .waiting:
            held.append(.body(buffer))
            return .held
        case .forwarding:
            return .forward
        case .answered:
            return .drop
        }
    }

    enum RequestEndAction: Equatable {
        case held
        /// Write the end (the last chunk and trailers when `lastChunk`); `finish` when the response is done too.
        case forwardEnd(lastChunk: Bool, finish: Bool)
        /// Ferry's answer is out and now the request has ended: the exchange is over.
        case finish
    }

    mutating func requestEnded(_ trailers: HTTPHeaders?, now: NIODeadline) -> RequestEndAction {
        requestComplete = true
        switch phase {
        case .waiting:
            held.append(.end(framing == .chunked ? trailers : nil))
            return .held
        case .forwarding:
            startResponseDeadline(now: now)
            return .forwardEnd(lastChunk: framing == .chunked, finish: responseComplete)
        case .answered:
            return .finish
        }
    }

    /// The response deadline runs from the end of the request (as Envoy counts the route timeout). A request
    /// without a body ended when its head arrived: no clock read needed.
    private mutating func startResponseDeadline(now: NIODeadline) {
        guard !responseHeadReceived, let timeout = policy.responseTimeout else { return }
        responseDeadline = (framing == .none ? startedAt : now) + timeout
    }

    // MARK: the upstream connection

    /// An attempt begins on `endpoint` (nil: a fixed destination, as the forward proxy's).
    mutating func attemptStarted(endpoint: Int?) {
        attempts += 1
        self.endpoint = endpoint
        phase = .waiting
    }

    /// The upstream connection is attached: the request parts held meanwhile are to be written after the head.
    mutating func upstreamAttached(reused: Bool, now: NIODeadline) -> [HeldPart] {
        phase = .forwarding
        reusedConnection = reused
        let parts = held
        held = []
        if requestComplete { startResponseDeadline(now: now) }
        return parts
    }

    enum ConnectFailureAction: Equatable {
        /// Try another endpoint.
        case retry
        /// 502; `retryLimitExceeded` when more than one attempt was made.
        case giveUp(retryLimitExceeded: Bool)
    }

    /// The connection to the endpoint could not be made. Retried (on an endpoint not tried yet) when the
    /// route retries connect failures and attempts are left.
    mutating func connectFailed() -> ConnectFailureAction {
        guard let retries = policy.retries, let endpoint else { return .giveUp(retryLimitExceeded: attempts > 1) }
        excluded.append(endpoint)
        let untried = policy.endpointCount - excluded.count
        if retries.retries(.connectFailure), attempts <= retries.attempts, untried > 0 { return .retry }
        return .giveUp(retryLimitExceeded: attempts > 1)
    }

    /// Whether the attempt that may have reached the upstream is tried again (`ExchangeRules.mayRetry`);
    /// when it is, the exchange waits for a new connection with only its end to send again (no body is replayed).
    mutating func retry(_ reason: ExchangeRules.RetryReason) -> Bool {
        guard let retries = policy.retries, let endpoint else { return false }
        guard ExchangeRules.mayRetry(
            reason, policy: retries, attempts: attempts, method: method, framing: framing,
            requestComplete: requestComplete, reusedConnection: reusedConnection, isUpgrade: isUpgrade)
        else { return false }
        // A stale pooled connection may be retried on the same endpoint; a failing endpoint is avoided.
        if !(reason == .reset && reusedConnection) { excluded.append(endpoint) }
        if excluded.count >= policy.endpointCount { excluded.removeAll() }
        responseDeadline = nil
        held = [.end(nil)]
        phase = .waiting
        return true
    }

    // MARK: the response

    enum ResponseHeadAction: Equatable {
        /// The route retries on this status and may: the driver drops this attempt and connects again.
        case retry
        /// A 101 the client did not ask for (or to a protocol it did not offer): 502 and close; no tunnel.
        case refuseSwitch
        /// Forward the head.
        case forward
    }

    /// A response head arrived. `upgradeAllowed`: a 101 names a protocol the request offered;
    /// `upstreamKeepAlive`: the upstream connection can carry another request after this response;
    /// `declaresBody`: the head frames a body (a 204 or 304 that does is delivered without it, and its
    /// connection is not reused).
    mutating func responseHeadReceived(status: HTTPResponseStatus, upgradeAllowed: Bool, upstreamKeepAlive: Bool, declaresBody: Bool, now: NIODeadline) -> ResponseHeadAction {
        if policy.retriesOnStatus, !isUpgrade, policy.retries?.retries(status: Int(status.code)) == true, retry(.status) {
            return .retry
        }
        responseHeadReceived = true
        responseDeadline = nil
        if policy.idleLimit != nil { lastProgress = now }
        if status == .switchingProtocols, !isUpgrade || !upgradeAllowed {
            return .refuseSwitch
        }
        upstreamReusable = upstreamKeepAlive
        if declaresBody, status == .noContent || status == .notModified { upstreamReusable = false }
        if isUpgrade {
            if status == .switchingProtocols {
                upgradeAccepted = true
            } else {
                // The request reader stops after an upgrade request: this connection cannot carry another.
                keepAlive = false
            }
        }
        if !requestComplete {
            // An early response (a 413 before the whole body): the rest of the body is not read.
            keepAlive = false
            upstreamReusable = false
        }
        return .forward
    }

    /// The driver wrote the head; `keepAlive` is what it told the client (a response may ask to close).
    mutating func responseHeadSent(keepAlive: Bool) {
        self.keepAlive = keepAlive
        responseHeadSent = true
    }

    mutating func responseBodyReceived(now: NIODeadline) {
        if policy.idleLimit != nil { lastProgress = now }
    }

    enum ResponseEndAction: Equatable {
        /// A 101 ended: glue the two connections.
        case tunnel
        /// The response is done; the upstream connection goes back to the pool when `reuseUpstream`.
        case complete(reuseUpstream: Bool)
    }

    mutating func responseEnded() -> ResponseEndAction {
        if upgradeAccepted { return .tunnel }
        responseComplete = true
        let reuse = upstreamReusable && requestComplete
        // Answered before the request body ended: nothing more is read (keepAlive was cleared at the head).
        requestComplete = true
        return .complete(reuseUpstream: reuse)
    }

    enum UpstreamLossAction: Equatable {
        /// Nothing left to do (the response had ended).
        case none
        /// The attempt is tried again on a new connection.
        case retry
        /// 502; `close` when the request had not ended (its rest is not read).
        case reply(close: Bool)
        /// The response had started: only a close is left.
        case abort
    }

    /// The upstream closed (`reset`) or sent something that is not a response: before a response head the
    /// request is retried when it may be, else answered 502; after it, the client's connection closes.
    mutating func upstreamLost(retryable: Bool) -> UpstreamLossAction {
        if responseComplete { return .none }
        if responseHeadSent { return .abort }
        if retryable, retry(.reset) { return .retry }
        return .reply(close: !requestComplete)
    }

    // MARK: Ferry's own answers and the end

    enum LocalReplyAction: Equatable {
        /// The exchange is over.
        case finish
        /// The rest of the request body is still to be read (and dropped).
        case readRestOfRequest
    }

    /// Ferry answered the request itself; `close`: the connection closes after the answer.
    mutating func answeredLocally(close: Bool) -> LocalReplyAction {
        if close || isUpgrade { keepAlive = false }
        responseHeadSent = true
        responseComplete = true
        phase = .answered
        if close { requestComplete = true }
        return requestComplete ? .finish : .readRestOfRequest
    }

    var isComplete: Bool { requestComplete && responseComplete }

    /// The client's connection closed. True when that cut the exchange short (the log says so; any upstream
    /// connection of it is closed).
    func clientLeft() -> Bool {
        !isComplete
    }

    // MARK: deadlines

    enum DeadlineAction: Equatable {
        case none
        /// The upstream did not answer in time: 504 (`close` when the request had not ended).
        case responseTimeout(close: Bool)
        /// Nothing moved for the idle limit: 504 and close, or only a close once the response started.
        case idleTimeout(responseStarted: Bool)
    }

    func deadline(now: NIODeadline) -> DeadlineAction {
        if let deadline = responseDeadline, now >= deadline, !responseHeadSent {
            return .responseTimeout(close: !requestComplete)
        }
        if let limit = policy.idleLimit, now - lastProgress >= limit {
            return .idleTimeout(responseStarted: responseHeadSent)
        }
        return .none
    }
}
