import FerryModel
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOPosix

/// The downstream end of one HTTP/1.1 connection: routes each request, forwards it to a pooled upstream
/// connection on the same event loop, and streams both bodies with backpressure. Decisions are pure
/// functions (`RouteTable`, `LoadBalancer`, `RequestHeadValidator`, `HeaderRewriter`, `ExchangeRules`);
/// this class keeps the connection's state and performs the I/O.
final class HTTPProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, TrackedConnection, HTTP1PartSink {
    typealias InboundIn = HTTP1RequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The connection's state; the exchange under way has its own (`ExchangeStateMachine.Phase`).
    enum State {
        /// Waiting for a request head.
        case idle
        /// An exchange is under way (`exchange`).
        case exchange
        /// The response is written and the connection closes once it is flushed.
        case closing
    }

    let environment: ListenerEnvironment
    let local: LoopLocal
    private let clientPort: Int?
    /// `ip:port` of the client, for the access log; built only when a line is written.
    lazy var clientAddress: String = {
        guard let clientPort else { return clientIP }
        return clientIP.utf8.contains(UInt8(ascii: ":")) ? "[\(clientIP)]:\(clientPort)" : "\(clientIP):\(clientPort)"
    }()
    let clientIP: String
    /// The client's address as a number, for allowlists and policies, taken from the socket address.
    let clientIPAddress: IPAddress?
    var context: ChannelHandlerContext?

    var state: State = .idle
    var exchange: Exchange?
    var upstream: UpstreamConnection?
    /// Parts of pipelined requests, held until the current exchange is done. (An empty array allocates
    /// nothing; pipelining is rare.)
    var pipelined: [HTTP1RequestPart] = []
    /// A decoder error that followed whole requests: answered (400 and close) once they are.
    var deferredError: HTTPResponseStatus?
    var pendingRead = false
    var requestsServed = 0
    var draining = false
    /// Whether this connection is counted in the active-connections gauge (it moves to the tunnel on upgrade).
    var countedConnection = false
    /// Set when the connection arrived over the listener's limit: it is answered 503 and closed, nothing is read.
    var overLimit = false
    var idleSince: NIODeadline = .uptimeNanoseconds(0)
    /// When the first bytes of a request head that has not fully arrived were read: the request-header
    /// deadline runs from here, while a connection without such bytes runs on the idle timeout.
    var firstByteAt: NIODeadline?
    var sawHeadThisCycle = false
    /// Flushes are batched per event-loop tick: a write marks its side dirty, and the loop flushes every
    /// dirty connection once after handling this tick's I/O (`LoopLocal.flushAtEndOfTick`). Peers are then
    /// woken once per tick instead of once per event, which halves context switches under load.
    var downstreamDirty = false
    var upstreamDirty = false
    /// The last snapshot seen and this listener in it, so an unchanged snapshot needs no lookup by name.
    var cachedSnapshot: CompiledSnapshot?
    /// Forward proxy: this connection's last allowed absolute-form destination.
    var forwardMemo: ForwardMemo?
    var cachedListener: CompiledListener?

    /// Whether the client connected over TLS (the listener's TLS when it was accepted).
    let overTLS: Bool
    /// Whether the certificate the client's TLS selected verifies client certificates against a CA, so the
    /// common name of one identifies the client.
    var clientCertificatesVerified = false
    /// Whether this handler serves one HTTP/2 stream (behind an `HTTP2StreamBridge`), for the access log.
    var overHTTP2 = false
    /// The client certificate as upstream fields describe it, read once per connection (stream) when a route asks.
    var certificateFactsRead: ClientCertificateFacts?
    /// On an intercept listener: where the kernel-redirected connection was going; every request goes there.
    var interceptedDestination: SocketAddress?
    /// On an intercept listener: this connection's last allowed Host.
    var interceptMemo: InterceptMemo?

    init(environment: ListenerEnvironment, local: LoopLocal, remoteAddress: SocketAddress?, overTLS: Bool = false) {
        self.environment = environment
        self.local = local
        self.overTLS = overTLS
        self.clientIP = remoteAddress?.ipText ?? "unknown"
        self.clientIPAddress = remoteAddress?.ipValue
        self.clientPort = remoteAddress?.port
    }

    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipText, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    var downstreamWritable: Bool { context?.channel.isWritable ?? false }

    /// The time on this connection's event loop (a test's loop advances it by hand: `LoopLocal.now`).
    var now: NIODeadline { local.now }

    func uncountConnection() {
        if countedConnection {
            countedConnection = false
            environment.openConnections.wrappingSubtract(1, ordering: .relaxed)
            environment.metrics.activeDownstreamConnections.decrement()
            local.untrack(id: ObjectIdentifier(self), listener: ObjectIdentifier(environment))
        }
    }

    // MARK: channel lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { startTracking(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startTracking(context)
        context.fireChannelActive()
    }

    func startTracking(_ context: ChannelHandlerContext) {
        guard !countedConnection else { return }
        environment.metrics.activeDownstreamConnections.increment()
        countedConnection = true
        idleSince = now
        let (_, listener) = currentListener()
        local.track(self, id: ObjectIdentifier(self), listener: ObjectIdentifier(environment), sweepEvery: listener.watchdogTick, on: context.eventLoop)
        let open = environment.openConnections.wrappingAdd(1, ordering: .relaxed).newValue
        if open > listener.listener.http.limits.maxConnections {
            // Over the listener's connection limit: one short answer, then the connection is closed.
            // (Tracked first: the close may run before this returns, and it untracks.)
            overLimit = true
            environment.metrics.connectionsRejected.increment()
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: LocalReply.overloadedResponse))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        uncountConnection()
        heldResponseHead = nil
        if let exchange, exchange.machine.clientLeft() {
            exchange.event.flags.insert(.downstreamConnectionTermination)
            if let upstream {
                self.upstream = nil
                upstream.close()
            }
            complete()
        }
        state = .closing
        context.fireChannelInactive()
    }

    // MARK: downstream reads

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received(unwrapInboundIn(data), context: context)
    }

    /// A part from the decoder, handed over directly (`HTTP1PartSink`).
    func decoded(_ part: HTTP1RequestPart) {
        guard let context else { return }
        received(part, context: context)
    }

    func received(_ part: HTTP1RequestPart, context: ChannelHandlerContext) {
        if overLimit { return }
        if case .head = part { sawHeadThisCycle = true }
        if !pipelined.isEmpty || (state != .idle && isHead(part)) || (state == .idle && !isHead(part)) {
            pipelined.append(part)
            return
        }
        process(part, context: context)
    }

    func isHead(_ part: HTTP1RequestPart) -> Bool {
        if case .head = part { return true }
        return false
    }

    func process(_ part: HTTP1RequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            startRequest(head, context: context)
        case .body(let buffer):
            receivedBody(buffer, context: context)
        case .end(let trailers):
            receivedEnd(trailers, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Bytes were read but no head was decoded while waiting for one: a head is arriving.
        if !sawHeadThisCycle, state == .idle, exchange == nil, pipelined.isEmpty, firstByteAt == nil {
            firstByteAt = now
        }
        sawHeadThisCycle = false
        context.fireChannelReadComplete()
    }

    func markDirty(upstream up: Bool = false, downstream down: Bool = false) {
        upstreamDirty = upstreamDirty || up
        downstreamDirty = downstreamDirty || down
        guard !isFlushQueued, let context else { return }
        isFlushQueued = true
        local.flushAtEndOfTick(self, on: context.eventLoop)
    }

    var isFlushQueued = false
    /// The pool bucket this connection's last upstream went back to (see `acquirePooled`).
    var lastPoolBucket: UpstreamPool.Bucket?
    /// A response head not yet written: it goes out with the first body bytes (one write for a small
    /// response), or on its own at the end of the tick, the response's end, or before a larger body.
    var heldResponseHead: ByteBuffer?

    /// Called by the loop at the end of the tick in which this connection wrote.
    func flushQueued() {
        isFlushQueued = false
        if upstreamDirty {
            upstreamDirty = false
            upstream?.flush()
        }
        if downstreamDirty, let context {
            downstreamDirty = false
            writeHeldHead(context: context)
            context.flush()
        }
    }

    func read(context: ChannelHandlerContext) {
        let mayRead: Bool
        switch state {
        case .idle, .closing:
            mayRead = pipelined.isEmpty
        case .exchange:
            switch exchange?.machine.phase {
            case .waiting: mayRead = false
            case .forwarding: mayRead = pipelined.isEmpty && (upstream?.isWritable ?? true)
            case .answered, nil: mayRead = pipelined.isEmpty
            }
        }
        if mayRead {
            context.read()
        } else {
            pendingRead = true
        }
    }

    func resumeReadingIfHeld() {
        guard pendingRead, let context else { return }
        pendingRead = false
        read(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            upstream?.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            draining = true
            if state == .idle && pipelined.isEmpty {
                state = .closing
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Decoder errors (malformed or ambiguous framing, limits): 400 (414, 431), one connection is closed,
        // nothing else.
        guard let error = error as? HTTP1ParseError else {
            context.close(promise: nil)
            return
        }
        // Already answered and closing: what the decoder says of the bytes it still holds changes nothing.
        if state == .closing { return }
        let status: HTTPResponseStatus
        switch error.kind {
        case .headTooLarge: status = .requestHeaderFieldsTooLarge
        case .requestLineTooLong: status = .uriTooLong
        default: status = .badRequest
        }
        if let ex = exchange, ex.machine.requestComplete, !ex.machine.responseComplete {
            // The bytes after a whole request are malformed: that request (and whole ones pipelined behind it)
            // is answered first, then the 400 and the close (see `finishExchange`). The incomplete request the
            // error belongs to is dropped.
            while let last = pipelined.last, !isEnd(last) { pipelined.removeLast() }
            deferredError = status
            return
        }
        if let upstream {
            self.upstream = nil
            upstream.close()
        }
        if let ex = exchange, ex.machine.phase == .answered, ex.machine.responseComplete {
            // Ferry answered this request itself and was discarding its body: the framing error still gets
            // its 400 after that answer.
            ex.event.flags.insert(.downstreamProtocolError)
            complete()
        }
        if exchange == nil {
            exchange = makeBareExchange(startedAt: now)
        }
        if exchange!.machine.responseHeadSent {
            exchange!.event.flags.insert(.downstreamProtocolError)
            complete()
            state = .closing
            context.close(promise: nil)
            return
        }
        exchange!.machine.requestEndsHere()
        let detail = error.kind == .chunkLineTooLong ? "\(error)" : "malformed request (\(error))"
        sendLocalReply(.error(status, detail, flags: .downstreamProtocolError, close: true), context: context)
    }

    /// 400 (or 431) and close, for malformed bytes that followed requests already answered.
    func replyToDeferredError(_ status: HTTPResponseStatus, context: ChannelHandlerContext) {
        deferredError = nil
        exchange = makeBareExchange(startedAt: now)
        exchange!.machine.requestEndsHere()
        sendLocalReply(.error(status, "malformed request after the previous one", flags: .downstreamProtocolError, close: true), context: context)
    }

    func isEnd(_ part: HTTP1RequestPart) -> Bool {
        if case .end = part { return true }
        return false
    }

    /// An exchange for a reply that is not to a decoded request (a malformed or late head).
    func makeBareExchange(startedAt: NIODeadline) -> Exchange {
        let (snapshot, listener) = currentListener()
        let logged = snapshot.config.accessLog.format != .none
        let ex = Exchange(
            event: AccessLogEvent(startTime: logged ? WallClock.now() : .zero, listener: environment.listenerName, downstream: logged ? clientAddress : ""),
            machine: ExchangeStateMachine(method: .GET, keepAlive: false, startedAt: startedAt))
        ex.accessLogFormat = snapshot.config.accessLog.format
        ex.listenerStats = listener.listenerStats
        return ex
    }

    // MARK: request start

    func startRequest(_ head: HTTP1RequestHeadView, context: ChannelHandlerContext) {
        firstByteAt = nil
        requestsServed += 1
        let (snapshot, listener) = currentListener()
        let logged = snapshot.config.accessLog.format != .none
        // The event is built inside the exchange: a copy of it costs a retain per field.
        let keepAlive = head.isKeepAlive && requestsServed < listener.listener.http.limits.maxRequestsPerConnection && !draining
        let ex = Exchange(
            event: AccessLogEvent(startTime: logged ? WallClock.now() : .zero, listener: environment.listenerName, downstream: logged ? clientAddress : ""),
            machine: ExchangeStateMachine(method: head.method, keepAlive: keepAlive, startedAt: now))
        ex.event.method = head.method.rawValue
        ex.event.path = head.uri
        ex.event.httpVersion = overHTTP2 ? "HTTP/2" : head.version.minor == 0 ? "HTTP/1.0" : "HTTP/1.1"
        ex.version = head.version
        ex.listenerStats = listener.listenerStats
        ex.accessLogFormat = snapshot.config.accessLog.format
        exchange = ex
        state = .exchange
        // gRPC needs HTTP/2: an HTTP/1.1 request is never looked at for it.
        if overHTTP2, GRPC.isGRPC(contentType: head.value(of: "content-type")) {
            ex.isGRPC = true
            ex.grpcTimeout = head.value(of: "grpc-timeout").flatMap(GRPC.timeout)
        }

        var summary: RequestSummary
        switch RequestHeadValidator.validate(head, limits: listener.listener.http.limits, forwardProxy: listener.forwardProxy != nil) {
        case .success(let s):
            summary = s
        case .failure(let rejection):
            ex.machine.requestEndsHere()
            sendLocalReply(.error(rejection.status, rejection.reason, flags: .downstreamProtocolError, close: true), context: context)
            return
        }
        if summary.hasUpgrade, let offered = summary.upgrade {
            // Only the listener's protocols pass; without one left the request goes on as plain HTTP/1.1.
            summary.upgrade = listener.upgradeProtocols.filter(offered)
            if summary.upgrade == nil {
                summary.hasUpgrade = false
                // The decoder reads no further after a head asking for an upgrade: the connection ends with
                // this exchange.
                if summary.connectionUpgrade { ex.machine.closeAfterExchange() }
            }
        }
        ex.trustedPeer = listener.forwardedTrust.trusts(peer: clientIPAddress)
        // The forward proxy sends no request ID to the outside: it makes one only for its access log.
        let requestID = summary.requestID ?? (listener.forwardProxy != nil && !logged ? "" : RequestID.make(using: &local.random))
        ex.event.requestID = requestID
        ex.event.authority = summary.host ?? ""
        if ex.accessLogFormat != .none {
            ex.event.userAgent = summary.userAgent ?? ""
            ex.event.referer = summary.referer ?? ""
            ex.event.forwardedFor = summary.forwardedFor ?? ""
        }
        ex.machine.framing = HeaderRewriter.requestFraming(summary)
        ex.machine.isUpgrade = summary.isUpgrade
        let client = RequestDecision.Client(address: clientIPAddress, addressText: clientIP, trustedPeer: ex.trustedPeer, overTLS: overTLS)
        let decision = RequestDecision.decide(
            head, summary: summary, requestID: requestID, listener: listener, snapshot: snapshot, client: client,
            certificateName: { self.clientCertificateName }, certificateFacts: { self.cachedCertificateFacts }, random: &local.random, allocator: context.channel.allocator)
        perform(decision, view: head, summary: summary, snapshotVersion: snapshot.config.version, context: context)
    }

    /// Carries out what `RequestDecision` decided for the current exchange.
    @inline(__always)
    func perform(_ decision: RequestDecision, view: HTTP1RequestHeadView, summary: RequestSummary, snapshotVersion: Int, context: ChannelHandlerContext) {
        let ex = exchange!
        ex.machine.maxRequestBodyBytes = decision.maxRequestBodyBytes
        if let audit = decision.audit {
            if let verdict = audit.verdict { ex.event.verdict = verdict }
            if let user = audit.user { ex.event.user = user }
            if let kubernetes = audit.kubernetes { ex.event.kubernetes = kubernetes }
        }
        if let route = decision.route { use(route) }
        if let cluster = decision.cluster { use(cluster, snapshotVersion: snapshotVersion) }
        switch decision.outcome {
        case .reply(let reply):
            sendLocalReply(reply, context: context)
        case .serveFiles(let files, let path):
            serveStaticFile(files, path: path, context: context)
        case .forwardProxy(let forward):
            // The forward proxy reads the request as a whole (its target, Proxy-Authorization, the memo).
            startForwardRequest(view.head, summary: summary, forward: forward, snapshotVersion: snapshotVersion, context: context)
        case .forward(let plan):
            ex.targetIndex = plan.targetIndex
            ex.hashKey = plan.hashKey
            ex.upstreamHeadBytes = plan.headBytes
            ex.upstreamHead = plan.head
            if summary.expectsContinue {
                context.write(wrapOutboundOut(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
                markDirty(downstream: true)
            }
            connectUpstream(context: context)
        }
    }

    /// The exchange runs under `route`: its name for the log, its deadlines and retries for the machine.
    func use(_ route: CompiledRoute) {
        let ex = exchange!
        ex.route = route
        ex.event.route = route.name
        ex.machine.policy.responseTimeout = route.timeout
        // gRPC's deadline, when shorter than the route's (Envoy honours it the same way).
        if ex.isGRPC, let deadline = ex.grpcTimeout, deadline < route.timeout {
            ex.machine.policy.responseTimeout = deadline
            // The loop's sweep runs at a quarter of the listener's shortest timeout: a client's deadline may
            // be shorter, so it gets its own check.
            scheduleDeadlineCheck(ex, in: deadline + .milliseconds(1))
        }
        ex.machine.policy.retries = route.retries
        ex.machine.policy.retriesOnStatus = route.retriesOnStatus
        ex.machine.policy.idleLimit = route.idleLimit
    }

    /// Checks `ex`'s deadlines after `delay`, and again at its response deadline while that is still ahead
    /// (it runs from the end of the request, which may come later than the head).
    func scheduleDeadlineCheck(_ ex: Exchange, in delay: TimeAmount) {
        context?.eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            guard let self, self.exchange === ex, ex.machine.phase != .answered else { return }
            let now = self.now
            self.checkDeadlines(now: now)
            guard self.exchange === ex, ex.machine.phase != .answered, !ex.machine.responseHeadSent else { return }
            let next = ex.machine.responseDeadline.map { $0 - now } ?? ex.grpcTimeout ?? .seconds(1)
            self.scheduleDeadlineCheck(ex, in: max(next, .milliseconds(1)) + .milliseconds(1))
        }
    }

    /// The exchange goes to `cluster` (as decided in snapshot `snapshotVersion`).
    func use(_ cluster: CompiledCluster, snapshotVersion: Int) {
        let ex = exchange!
        ex.cluster = cluster
        ex.snapshotVersion = snapshotVersion
        ex.event.cluster = cluster.cluster.name
        ex.machine.policy.endpointCount = cluster.addresses.count
    }

    /// Whether the exchange under way waits for its way to an answer (an upstream, a check, a file).
    var isWaiting: Bool { state == .exchange && exchange?.machine.phase == .waiting }

    /// The snapshot in force and this listener's compiled form in it.
    func currentListener() -> (CompiledSnapshot, CompiledListener) {
        let snapshot = environment.store.current
        if snapshot === cachedSnapshot, let cachedListener { return (snapshot, cachedListener) }
        let resolved = environment.resolve(snapshot)
        cachedSnapshot = snapshot
        cachedListener = resolved.1
        return resolved
    }

    // MARK: request body

    func receivedBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard state == .exchange, let ex = exchange else { return }
        ex.event.bytesReceived += buffer.readableBytes
        switch ex.machine.requestBodyReceived(buffer, now: ex.machine.policy.idleLimit == nil ? ex.startedAt : now) {
        case .forward:
            if let upstream { writeRequestBody(buffer, to: upstream) }
            markDirty(upstream: true)
        case .held, .drop:
            break
        case .refuseTooLarge(let max):
            dropUpstream()
            sendLocalReply(.error(.payloadTooLarge, "request body larger than \(max) bytes", flags: .requestTooLarge, close: true), context: context)
        case .abortTooLarge:
            dropUpstream()
            closeAfterFailure(flags: .requestTooLarge, context: context)
        }
    }

    func receivedEnd(_ trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        guard state == .exchange, let ex = exchange else { return }
        switch ex.machine.requestEnded(trailers, now: ex.machine.framing == .none ? ex.startedAt : now) {
        case .held:
            break
        case .forwardEnd(let lastChunk, let finish):
            if lastChunk, let upstream {
                writeRequestEnd(trailers, to: upstream)
                markDirty(upstream: true)
            }
            if finish { finishExchange(context: context) }
        case .finish:
            finishExchange(context: context)
        }
    }

    /// Closes the upstream connection of the exchange, if one is attached.
    func dropUpstream() {
        if let upstream {
            self.upstream = nil
            upstream.close()
        }
    }
}

@available(*, unavailable)
extension HTTPProxyHandler: Sendable {}
