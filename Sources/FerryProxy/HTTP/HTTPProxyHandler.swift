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
    typealias InboundIn = HTTPServerRequestPart
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
    private lazy var clientAddress: String = {
        guard let clientPort else { return clientIP }
        return clientIP.utf8.contains(UInt8(ascii: ":")) ? "[\(clientIP)]:\(clientPort)" : "\(clientIP):\(clientPort)"
    }()
    let clientIP: String
    /// The client's address as a number, for allowlists and policies; parsed once per connection.
    lazy var clientIPAddress: IPAddress? = IPAddress(parsing: clientIP)
    var context: ChannelHandlerContext?

    var state: State = .idle
    var exchange: Exchange?
    var upstream: UpstreamConnection?
    /// Parts of pipelined requests, held until the current exchange is done. (An empty array allocates
    /// nothing; pipelining is rare.)
    private var pipelined: [HTTPServerRequestPart] = []
    /// A decoder error that followed whole requests: answered (400 and close) once they are.
    private var deferredError: HTTPResponseStatus?
    private var pendingRead = false
    private var requestsServed = 0
    private var draining = false
    /// Whether this connection is counted in the active-connections gauge (it moves to the tunnel on upgrade).
    private var countedConnection = false
    /// Set when the connection arrived over the listener's limit: it is answered 503 and closed, nothing is read.
    private var overLimit = false
    private var idleSince: NIODeadline = .uptimeNanoseconds(0)
    /// When the first bytes of a request head that has not fully arrived were read: the request-header
    /// deadline runs from here, while a connection without such bytes runs on the idle timeout.
    private var firstByteAt: NIODeadline?
    private var sawHeadThisCycle = false
    /// Flushes are batched per event-loop tick: a write marks its side dirty, and the loop flushes every
    /// dirty connection once after handling this tick's I/O (`LoopLocal.flushAtEndOfTick`). Peers are then
    /// woken once per tick instead of once per event, which halves context switches under load.
    private var downstreamDirty = false
    private var upstreamDirty = false
    /// The last snapshot seen and this listener in it, so an unchanged snapshot needs no lookup by name.
    private var cachedSnapshot: CompiledSnapshot?
    /// Forward proxy: this connection's last allowed absolute-form destination.
    var forwardMemo: ForwardMemo?
    private var cachedListener: CompiledListener?

    /// Whether the client connected over TLS (the listener's TLS when it was accepted).
    let overTLS: Bool

    init(environment: ListenerEnvironment, local: LoopLocal, remoteAddress: SocketAddress?, overTLS: Bool = false) {
        self.environment = environment
        self.local = local
        self.overTLS = overTLS
        self.clientIP = remoteAddress?.ipText ?? "unknown"
        self.clientPort = remoteAddress?.port
    }

    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipText, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    var downstreamWritable: Bool { context?.channel.isWritable ?? false }

    /// The time on this connection's event loop (a test's loop advances it by hand: `LoopLocal.now`).
    var now: NIODeadline { local.now }

    private func uncountConnection() {
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

    private func startTracking(_ context: ChannelHandlerContext) {
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
    func decoded(_ part: HTTPServerRequestPart) {
        guard let context else { return }
        received(part, context: context)
    }

    private func received(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        if overLimit { return }
        if case .head = part { sawHeadThisCycle = true }
        if !pipelined.isEmpty || (state != .idle && isHead(part)) || (state == .idle && !isHead(part)) {
            pipelined.append(part)
            return
        }
        process(part, context: context)
    }

    private func isHead(_ part: HTTPServerRequestPart) -> Bool {
        if case .head = part { return true }
        return false
    }

    private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
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

    private var isFlushQueued = false
    /// The pool bucket this connection's last upstream went back to (see `acquirePooled`).
    private var lastPoolBucket: UpstreamPool.Bucket?
    /// A response head not yet written: it goes out with the first body bytes (one write for a small
    /// response), or on its own at the end of the tick, the response's end, or before a larger body.
    private var heldResponseHead: ByteBuffer?

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

    private func resumeReadingIfHeld() {
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
    private func replyToDeferredError(_ status: HTTPResponseStatus, context: ChannelHandlerContext) {
        deferredError = nil
        exchange = makeBareExchange(startedAt: now)
        exchange!.machine.requestEndsHere()
        sendLocalReply(.error(status, "malformed request after the previous one", flags: .downstreamProtocolError, close: true), context: context)
    }

    private func isEnd(_ part: HTTPServerRequestPart) -> Bool {
        if case .end = part { return true }
        return false
    }

    /// An exchange for a reply that is not to a decoded request (a malformed or late head).
    private func makeBareExchange(startedAt: NIODeadline) -> Exchange {
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

    private func startRequest(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
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
        ex.event.httpVersion = head.version.minor == 0 ? "HTTP/1.0" : "HTTP/1.1"
        ex.version = head.version
        ex.listenerStats = listener.listenerStats
        ex.accessLogFormat = snapshot.config.accessLog.format
        ex.machine.maxRequestBodyBytes = listener.listener.http.limits.maxRequestBodyBytes
        exchange = ex
        state = .exchange

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
            certificateName: { self.clientCertificateName }, random: &local.random, allocator: context.channel.allocator)
        perform(decision, head: head, summary: summary, snapshotVersion: snapshot.config.version, context: context)
    }

    /// Carries out what `RequestDecision` decided for the current exchange.
    @inline(__always)
    private func perform(_ decision: RequestDecision, head: HTTPRequestHead, summary: RequestSummary, snapshotVersion: Int, context: ChannelHandlerContext) {
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
            startForwardRequest(head, summary: summary, forward: forward, snapshotVersion: snapshotVersion, context: context)
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
        ex.machine.policy.retries = route.retries
        ex.machine.policy.retriesOnStatus = route.retriesOnStatus
        ex.machine.policy.idleLimit = route.idleLimit
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
    private func currentListener() -> (CompiledSnapshot, CompiledListener) {
        let snapshot = environment.store.current
        if snapshot === cachedSnapshot, let cachedListener { return (snapshot, cachedListener) }
        let resolved = environment.resolve(snapshot)
        cachedSnapshot = snapshot
        cachedListener = resolved.1
        return resolved
    }

    // MARK: request body

    private func receivedBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
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

    private func receivedEnd(_ trailers: HTTPHeaders?, context: ChannelHandlerContext) {
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
    private func dropUpstream() {
        if let upstream {
            self.upstream = nil
            upstream.close()
        }
    }

    // MARK: upstream connection

    func connectUpstream(context: ChannelHandlerContext) {
        guard let cluster = exchange!.cluster else { return }
        if let destination = exchange!.destination {
            exchange!.machine.attemptStarted(endpoint: nil)
            exchange!.event.attempts = exchange!.machine.attempts
            if exchange!.isConnect {
                dialTunnel(exchange!.parentProxy?.address ?? destination, connectTimeout: cluster.cluster.connectTimeout, via: exchange!.parentProxy?.authority, context: context)
            } else if let parent = exchange!.parentProxy {
                dial(parent.address, connectTimeout: cluster.cluster.connectTimeout, pooled: false, tunnelTo: parent.authority, context: context)
            } else {
                dial(destination, connectTimeout: cluster.cluster.connectTimeout, pooled: !exchange!.isConnect, context: context)
            }
            return
        }
        let hashKey = exchange!.hashKey
        let excluded = exchange!.machine.excluded
        let picked = local.withBalancerState(cluster: cluster.cluster.name, snapshotVersion: exchange!.snapshotVersion, endpoints: cluster.addresses.count) { state, random in
            cluster.balancer.pick(state: &state, hashKey: hashKey, excluding: excluded, using: &random)
        }
        guard let index = picked else {
            var flags: ResponseFlags = [.upstreamConnectionFailure]
            if exchange!.machine.attempts > 1 { flags.insert(.upstreamRetryLimitExceeded) }
            sendLocalReply(.error(.badGateway, "no endpoint of cluster \(cluster.cluster.name) could be reached", flags: flags), context: context)
            return
        }
        exchange!.machine.attemptStarted(endpoint: index)
        exchange!.event.attempts = exchange!.machine.attempts
        exchange!.event.upstream = cluster.endpointNames[index]
        // An upgrade takes its connection over for good, and servers accept an upgrade only as a
        // connection's first request (SwiftNIO's upgrader among them): it gets a fresh connection.
        let tls = cluster.tls.map { ($0, $0.serverName(for: cluster.cluster.endpoints[index])) }
        let viaParent = cluster.cluster.parentProxy != nil ? cluster.endpointNames[index] : nil
        dial(cluster.addresses[index], connectTimeout: cluster.cluster.connectTimeout, pooled: !exchange!.machine.isUpgrade, tunnelTo: viaParent, tls: tls, context: context)
    }

    /// Attaches a pooled connection to `address` (when `pooled`) or makes a new one on this event loop;
    /// with `tunnelTo`, `address` is a parent proxy and the connection is usable once it has answered CONNECT.
    private func dial(_ address: SocketAddress, connectTimeout: Duration, pooled: Bool, tunnelTo: String? = nil, tls: (UpstreamTLSContext, String?)? = nil, context: ChannelHandlerContext) {
        let tlsIdentity = tls.map { ObjectIdentifier($0.0) }
        if pooled, let connection = acquirePooled(address, tls: tlsIdentity, via: tunnelTo) {
            attach(connection, reused: true, context: context)
            return
        }
        let pool = NIOLoopBound(local.pool, eventLoop: context.eventLoop)
        let attempt = exchange!.machine.attempts
        connectChannel(address, timeout: connectTimeout, parent: tunnelTo, context: context) { sync in
            if let (tlsContext, serverName) = tls {
                try sync.addHandler(try NIOSSLClientHandler(context: tlsContext.context, serverHostname: serverName))
            }
            let writer = UpstreamRequestWriter()
            let decoder = HTTP1ResponseDecoder()
            let connection = UpstreamConnection(address: address, tls: tlsIdentity, via: tunnelTo, writer: writer, decoder: decoder, pool: pool.value)
            try sync.addHandler(writer)
            try sync.addHandler(decoder)
            try sync.addHandler(connection)
            decoder.sink = connection
        }
        .assumeIsolated()
        .whenComplete { result in
            switch result {
            case .success(let channel):
                guard let connection = try? channel.pipeline.syncOperations.handler(type: UpstreamConnection.self) else {
                    channel.close(promise: nil)
                    return
                }
                if let context = self.contextIfStill(attempt: attempt) {
                    self.attach(connection, reused: false, context: context)
                } else if pooled || tunnelTo == nil {
                    // The downstream went away meanwhile: keep the connection for the next request.
                    self.local.pool.release(connection, now: self.now)
                } else {
                    // A forward-proxy tunnel through a parent leads to one client's destination: never pooled.
                    connection.close()
                }
            case .failure:
                self.upstreamConnectFailed(attempt: attempt)
            }
        }
    }

    /// An idle pooled connection; the bucket of this connection's last upstream is tried without a lookup
    /// when the destination is the same (the keep-alive path).
    private func acquirePooled(_ address: SocketAddress, tls: ObjectIdentifier?, via: String?) -> UpstreamConnection? {
        let at = firstAttemptStart ?? now
        let key = UpstreamPool.Key(address: address, tls: tls, via: via)
        if let bucket = lastPoolBucket, bucket.key == key { return local.pool.acquire(from: bucket, now: at) }
        return local.pool.acquire(key, now: at)
    }

    /// A connection for a CONNECT tunnel: no HTTP handlers, only (through a parent) its CONNECT handshake;
    /// once up, the tunnel is answered and glued.
    private func dialTunnel(_ address: SocketAddress, connectTimeout: Duration, via parentAuthority: String?, context: ChannelHandlerContext) {
        let attempt = exchange!.machine.attempts
        connectChannel(address, timeout: connectTimeout, parent: parentAuthority, context: context) { _ in }
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    if let context = self.contextIfStill(attempt: attempt) {
                        self.establishTunnel(to: channel, context: context)
                    } else {
                        channel.close(promise: nil)
                    }
                case .failure:
                    self.upstreamConnectFailed(attempt: attempt)
                }
            }
    }

    /// A new upstream channel on this event loop. Through a parent proxy (`parent`: the `host:port` to ask it
    /// for) it counts as connected once the parent has answered CONNECT; `handlers` go after that handshake.
    private func connectChannel(
        _ address: SocketAddress, timeout: Duration, parent: String?, context: ChannelHandlerContext,
        handlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) -> EventLoopFuture<Channel> {
        let options = UpstreamDialOptions(connectTimeout: timeout, tcpKeepalive: exchange?.cluster?.cluster.tcpKeepalive)
        return environment.connector.connect(to: address, options: options, on: context.eventLoop) { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                if let parent {
                    try sync.addHandler(ParentProxyHandshake(authority: parent, done: channel.eventLoop.makePromise()))
                } else {
                    try handlers(sync)
                }
            }
        }
        .flatMap { channel in
            guard parent != nil, let handshake = try? channel.pipeline.syncOperations.handler(type: ParentProxyHandshake.self) else {
                return channel.eventLoop.makeSucceededFuture(channel)
            }
            // Through a parent, the handlers (TLS first) start only once the tunnel is open.
            return handshake.done.futureResult.flatMapThrowing {
                try handlers(channel.pipeline.syncOperations)
                return channel
            }.flatMapError { error in
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
    }

    /// This connection's context while connection attempt `attempt` is still the one the exchange waits for.
    private func contextIfStill(attempt: Int) -> ChannelHandlerContext? {
        guard isWaiting, exchange?.machine.attempts == attempt else { return nil }
        return context
    }

    private func upstreamConnectFailed(attempt: Int) {
        environment.metrics.upstreamConnectFailures.increment()
        exchange?.cluster?.stats.connectFailures.increment()
        if let context = contextIfStill(attempt: attempt) { connectFailed(context: context) }
    }

    private func connectFailed(context: ChannelHandlerContext) {
        let ex = exchange!
        if ex.destination != nil {
            sendLocalReply(.error(.badGateway, "could not connect to \(ex.event.upstream)", flags: .upstreamConnectionFailure, close: ex.isConnect), context: context)
            return
        }
        switch ex.machine.connectFailed() {
        case .retry:
            environment.metrics.upstreamRetries.increment()
            ex.cluster?.stats.retries.increment()
            connectUpstream(context: context)
        case .giveUp(let retryLimitExceeded):
            var flags: ResponseFlags = [.upstreamConnectionFailure]
            if retryLimitExceeded { flags.insert(.upstreamRetryLimitExceeded) }
            sendLocalReply(.error(.badGateway, "could not connect to \(ex.event.upstream) (cluster \(ex.event.cluster))", flags: flags), context: context)
        }
    }

    private func attach(_ connection: UpstreamConnection, reused: Bool, context: ChannelHandlerContext) {
        let ex = exchange!
        connection.owner = self
        upstream = connection
        let now = reused ? firstAttemptStart ?? self.now : self.now
        let held = ex.machine.upstreamAttached(reused: reused, now: ex.machine.framing == .none ? now : self.now)
        // Attached from the pool on the first attempt: that is the moment the request started.
        ex.sentUpstreamAt = now
        startedOnEndpoint()
        if ex.upstreamHeadBytes == nil {
            // Kept serialized: a retry on another endpoint sends the same bytes.
            ex.upstreamHeadBytes = RequestSerializer.head(ex.upstreamHead!, allocator: context.channel.allocator)
        }
        connection.writeHead(ex.upstreamHeadBytes!, method: ex.method)
        for part in held {
            switch part {
            case .body(let buffer): writeRequestBody(buffer, to: connection)
            case .end(let trailers): if ex.machine.framing == .chunked { writeRequestEnd(trailers, to: connection) }
            }
        }
        markDirty(upstream: true)
        resumeReadingIfHeld()
    }

    /// A request body part to the upstream, chunk-framed when the request is chunked.
    private func writeRequestBody(_ buffer: ByteBuffer, to connection: UpstreamConnection) {
        guard buffer.readableBytes > 0 else { return }
        if exchange!.machine.framing == .chunked {
            connection.writeBytes(WireFormat.chunkHeader(length: buffer.readableBytes, allocator: connection.allocator))
            connection.writeBytes(buffer)
            connection.writeBytes(WireFormat.crlf)
        } else {
            connection.writeBytes(buffer)
        }
    }

    /// The last chunk of a chunked request, with its trailers.
    private func writeRequestEnd(_ trailers: HTTPHeaders?, to connection: UpstreamConnection) {
        connection.writeBytes(WireFormat.lastChunk(trailers: trailers, allocator: connection.allocator))
    }

    private func startedOnEndpoint() {
        guard let cluster = exchange!.cluster, cluster.countsActiveRequests, let index = exchange!.machine.endpoint, !exchange!.countedActive else { return }
        exchange!.countedActive = true
        local.withBalancerState(cluster: cluster.cluster.name, snapshotVersion: exchange!.snapshotVersion, endpoints: cluster.addresses.count) { state, _ in
            state.requestStarted(index)
        }
    }

    private func finishedOnEndpoint() {
        guard let ex = exchange, ex.countedActive, let cluster = ex.cluster, let index = ex.machine.endpoint else { return }
        exchange!.countedActive = false
        local.withBalancerState(cluster: cluster.cluster.name, snapshotVersion: ex.snapshotVersion, endpoints: cluster.addresses.count) { state, _ in
            state.requestFinished(index)
        }
    }

    /// The machine decided to try again: the attempt's connection is dropped and a new one made.
    private func retryAttempt(context: ChannelHandlerContext) {
        dropUpstream()
        finishedOnEndpoint()
        environment.metrics.upstreamRetries.increment()
        exchange!.cluster?.stats.retries.increment()
        connectUpstream(context: context)
    }

    // MARK: upstream events (called by UpstreamConnection)

    func upstreamReceived(_ part: HTTP1ResponsePart, from connection: UpstreamConnection) {
        guard let context, connection === upstream, let ex = exchange else { return }
        switch part {
        case .head(let head):
            // Inspected as bytes; written from the received field lines unless the head must change (below).
            var inspector = HeaderRewriter.ResponseInspector()
            head.forEachField { inspector.visit(name: $0, value: $1) }
            // Framed as the decoder reads the body: one decision, not a second guess from the fields.
            let fields = inspector.fields(framing: head.bodyFraming)
            let framing = fields.framing
            let now = self.now
            switch ex.machine.responseHeadReceived(
                status: head.status, upgradeAllowed: head.status == .switchingProtocols && upgradeAllowed(head.value(of: "upgrade")),
                upstreamKeepAlive: head.isKeepAlive && framing != .untilClose, declaresBody: fields.declaresBody, now: now) {
            case .retry:
                retryAttempt(context: context)
                return
            case .refuseSwitch:
                // A protocol switch the client did not ask for (or to a protocol it did not offer) opens no tunnel.
                dropUpstream()
                sendLocalReply(.error(.badGateway, "upstream \(ex.event.upstream) switched protocols without being asked to", flags: .upstreamProtocolError, close: true), context: context)
                return
            case .forward:
                break
            }
            if let sent = ex.sentUpstreamAt { ex.event.upstreamNanos = (now - sent).nanoseconds }
            var keepAlive = ex.machine.keepAlive && !draining
            let bytes: ByteBuffer
            switch HeaderRewriter.responseChange(
                status: head.status, version: head.version, fields: fields, requestVersion: ex.version, keepAlive: &keepAlive,
                isUpgrade: ex.machine.upgradeAccepted) {
            case .none:
                bytes = ResponseSerializer.head(statusLineOf: head, allocator: context.channel.allocator)
            case .rewrite(let chunked, let dropsLength, let connection):
                bytes = HeaderRewriter.rewrittenResponseBytes(
                    head, requestVersion: ex.version, chunked: chunked, dropsLength: dropsLength, connection: connection, fields: fields,
                    allocator: context.channel.allocator)
            case .upgrade:
                var unchanged = keepAlive
                let rewritten = HeaderRewriter.rewrittenResponse(
                    status: head.status, version: head.version, head.head, fields: fields, requestVersion: ex.version, keepAlive: &unchanged, isUpgrade: true)!
                bytes = ResponseSerializer.head(rewritten, allocator: context.channel.allocator)
            }
            ex.machine.responseHeadSent(keepAlive: keepAlive)
            ex.downstreamChunked = !ex.machine.upgradeAccepted
                && HeaderRewriter.chunksDownstream(upstreamFraming: framing, requestVersion: ex.version)
            ex.event.status = Int(head.status.code)
            // Held until the body's first bytes (usually in the same read) so both go out in one write.
            heldResponseHead = bytes
            markDirty(downstream: true)
        case .body(let buffer):
            ex.event.bytesSent += buffer.readableBytes
            if ex.machine.policy.idleLimit != nil { ex.machine.responseBodyReceived(now: now) }
            writeBody(buffer, context: context)
            markDirty(downstream: true)
        case .end(let trailers):
            switch ex.machine.responseEnded() {
            case .tunnel:
                switchToTunnel(connection, context: context)
            case .complete(let reuseUpstream):
                writeResponseEnd(ex.downstreamChunked ? trailers : nil, context: context)
                upstream = nil
                connection.owner = nil
                let now = self.now
                // A connection tunnelled through a parent proxy leads to one destination only: never pooled.
                if reuseUpstream && ex.parentProxy == nil {
                    local.pool.release(connection, now: now)
                    lastPoolBucket = connection.poolBucket
                } else {
                    connection.close()
                }
                finishExchange(context: context, now: now)
            }
        }
    }

    /// A 101 names, in `Upgrade`, one of the protocols the request offered (after the listener's filter).
    private func upgradeAllowed(_ upgrade: String?) -> Bool {
        guard let chosen = upgrade else { return false }
        let (_, listener) = currentListener()
        return listener.upgradeProtocols.allows(chosen.trimmingSpaces)
    }

    func upstreamBecameWritable() {
        resumeReadingIfHeld()
    }

    func upstreamClosed(_ connection: UpstreamConnection) {
        guard let context, connection === upstream, let ex = exchange else { return }
        upstream = nil
        switch ex.machine.upstreamLost(retryable: true) {
        case .none:
            break
        case .retry:
            retryAttempt(context: context)
        case .reply(let close):
            sendLocalReply(.error(.badGateway, "upstream \(ex.event.upstream) closed the connection before responding", flags: .upstreamConnectionTermination, close: close), context: context)
        case .abort:
            closeAfterFailure(flags: .upstreamConnectionTermination, context: context)
        }
    }

    func upstreamFailed(_ connection: UpstreamConnection, error: Error) {
        guard let context, connection === upstream, let ex = exchange else { return }
        upstream = nil
        // The decoder reports a connection that ended inside a message as an EOF error: that is a termination.
        let cutShort = (error as? HTTP1ParseError)?.kind == .endedEarly
        let flags: ResponseFlags = cutShort ? .upstreamConnectionTermination : .upstreamProtocolError
        switch ex.machine.upstreamLost(retryable: false) {
        case .none, .retry:
            break
        case .reply(let close):
            let reason = cutShort ? "closed the connection before responding" : "sent an invalid response"
            sendLocalReply(.error(.badGateway, "upstream \(ex.event.upstream) \(reason)", flags: flags, close: close), context: context)
        case .abort:
            closeAfterFailure(flags: flags, context: context)
        }
    }

    // MARK: tunnel after 101

    func switchToTunnel(_ connection: UpstreamConnection, context: ChannelHandlerContext) {
        guard let upstreamChannel = connection.channel else { return }
        upstream = nil
        connection.owner = nil
        glue(to: upstreamChannel, upstreamHTTP: connection, context: context)
    }

    /// Turns this connection and `upstreamChannel` into a byte tunnel; `upstreamHTTP` is the HTTP client side
    /// to take off the upstream pipeline (nil when the upstream channel was made for a tunnel and has none).
    func glue(to upstreamChannel: Channel, upstreamHTTP connection: UpstreamConnection?, context: ChannelHandlerContext) {
        guard let ex = exchange else { return }
        // The exchange is counted now; its access-log line waits for the tunnel to close, so it carries the
        // bytes each way and the whole duration.
        complete(logging: false)
        writeHeldHead(context: context)
        context.flush()
        var session = TunnelSession(downstream: context.channel, upstream: upstreamChannel)
        session.owesRead = pendingRead
        pendingRead = false
        if ex.accessLogFormat != .none {
            session.log = .init(event: ex.event, format: ex.accessLogFormat, writer: environment.accessLog, startedAt: ex.startedAt)
        }
        if countedConnection {
            // The tunnel stays counted and tracked (it holds a drain open) until it closes.
            countedConnection = false
            let gauge = environment.metrics.activeDownstreamConnections
            let local = self.local
            let environment = self.environment
            let listener = ObjectIdentifier(environment)
            let tunnel = TunnelConnection(channel: context.channel)
            local.untrack(id: ObjectIdentifier(self), listener: listener)
            local.track(tunnel, id: ObjectIdentifier(tunnel), listener: listener, sweepEvery: .seconds(5), on: context.eventLoop)
            session.onClose.append {
                // The tunnel still counts against the listener's connection limit until it closes.
                environment.openConnections.wrappingSubtract(1, ordering: .relaxed)
                gauge.decrement()
                local.untrack(id: ObjectIdentifier(tunnel), listener: listener)
            }
        }
        session.start { down, up in
            // Decoders go last so the bytes they still hold flow on into the glue.
            if let connection {
                up.removeHandler(context: try up.context(handler: connection), promise: nil)
                up.removeHandler(context: try up.context(handlerType: UpstreamRequestWriter.self), promise: nil)
                up.removeHandler(context: try up.context(handlerType: HTTP1ResponseDecoder.self), promise: nil)
            }
            down.removeHandler(context: context, promise: nil)
            down.removeHandler(context: try down.context(handlerType: HTTP1RequestDecoder.self), promise: nil)
        }
    }

    // MARK: replies and completion

    func sendLocalReply(_ reply: LocalReply, context: ChannelHandlerContext) {
        let ex = exchange!
        dropUpstream()
        if state == .idle { state = .exchange }
        ex.event.flags.formUnion(reply.flags)
        ex.event.status = Int(reply.status.code)
        ex.event.bytesSent = reply.bodyLength
        let next = ex.machine.answeredLocally(close: reply.closeConnection)
        let keepAlive = ex.machine.keepAlive && !draining
        if !keepAlive { ex.machine.closeAfterExchange() }
        let head = reply.head(version: ex.version, keepAlive: keepAlive, requestID: ex.event.requestID.isEmpty ? nil : ex.event.requestID)
        var bytes = ResponseSerializer.head(head, allocator: context.channel.allocator)
        if ex.method != .HEAD {
            if var buffer = reply.bodyBuffer { bytes.writeBuffer(&buffer) } else { bytes.writeString(reply.body) }
        }
        context.write(wrapOutboundOut(bytes), promise: nil)
        ex.downstreamChunked = false
        writeResponseEnd(nil, context: context)
        switch next {
        case .finish:
            finishExchange(context: context)
        case .readRestOfRequest:
            markDirty(downstream: true)
            resumeReadingIfHeld()
        }
    }

    /// The response cannot be completed: log and close the connection.
    private func closeAfterFailure(flags: ResponseFlags, context: ChannelHandlerContext) {
        exchange?.event.flags.formUnion(flags)
        complete()
        state = .closing
        writeHeldHead(context: context)
        context.flush()
        context.close(promise: nil)
    }

    /// Both directions of the exchange are done: log it, then wait for the next request or close.
    private func finishExchange(context: ChannelHandlerContext, now: NIODeadline? = nil) {
        guard let ex = exchange, ex.machine.isComplete else { return }
        let keepAlive = ex.machine.keepAlive && !draining
        let now = now ?? self.now
        complete(now: now)
        if keepAlive {
            state = .idle
            idleSince = now
            firstByteAt = nil
            markDirty(downstream: true)
            processPipelined(context: context)
            if state == .idle, pipelined.isEmpty, let status = deferredError {
                replyToDeferredError(status, context: context)
                return
            }
            resumeReadingIfHeld()
        } else {
            // The close was chained to the write of the response end (see `writeResponseEnd`).
            state = .closing
        }
    }

    /// Starts the requests that arrived pipelined behind the one just finished, in order.
    private func processPipelined(context: ChannelHandlerContext) {
        while state == .idle, !pipelined.isEmpty {
            let part = pipelined.removeFirst()
            guard case .head = part else { continue }
            process(part, context: context)
            while state != .idle, state != .closing, let next = pipelined.first, !isHead(next) {
                pipelined.removeFirst()
                process(next, context: context)
            }
        }
    }

    /// Writes the end of the response; when the connection is not kept alive, closes it once that write is done.
    private func writeResponseEnd(_ trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        writeHeldHead(context: context)
        let last = exchange!.downstreamChunked ? WireFormat.lastChunk(trailers: trailers, allocator: context.channel.allocator) : nil
        if exchange!.machine.keepAlive && !draining {
            if let last { context.write(wrapOutboundOut(last), promise: nil) }
            markDirty(downstream: true)
        } else {
            exchange!.machine.closeAfterExchange()
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(last ?? context.channel.allocator.buffer(capacity: 0)), promise: promise)
            // Closed on a later tick, so the caller's bookkeeping of this exchange finishes first.
            promise.futureResult.assumeIsolated().whenComplete { _ in
                context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
            }
        }
    }

    /// A response body part, chunk-framed when the response to the client is chunked.
    private func writeBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard buffer.readableBytes > 0 else { return }
        if heldResponseHead != nil {
            guard buffer.readableBytes <= Self.coalescedBodyLimit else {
                writeHeldHead(context: context)
                return writeBody(buffer, context: context)
            }
            // Small first body bytes are copied behind the head: one write for both. (The held copy is
            // dropped first, so the buffer is not shared and grows in place.)
            var head = heldResponseHead!
            heldResponseHead = nil
            if exchange!.downstreamChunked { WireFormat.writeChunkHeader(length: buffer.readableBytes, into: &head) }
            head.writeImmutableBuffer(buffer)
            if exchange!.downstreamChunked { head.writeStaticString("\r\n") }
            context.write(wrapOutboundOut(head), promise: nil)
            return
        }
        if exchange!.downstreamChunked {
            context.write(wrapOutboundOut(WireFormat.chunkHeader(length: buffer.readableBytes, allocator: context.channel.allocator)), promise: nil)
            context.write(wrapOutboundOut(buffer), promise: nil)
            context.write(wrapOutboundOut(WireFormat.crlf), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }

    /// Body bytes up to this size are copied behind a held response head rather than written on their own.
    private static let coalescedBodyLimit = 4096

    /// Writes the response head held for coalescing, if any, ahead of whatever is written next.
    private func writeHeldHead(context: ChannelHandlerContext) {
        guard let head = heldResponseHead else { return }
        heldResponseHead = nil
        context.write(wrapOutboundOut(head), promise: nil)
    }

    /// When the current request started, while its first upstream attempt is under way: a clock read
    /// saved on the keep-alive path (a later attempt reads the clock).
    private var firstAttemptStart: NIODeadline? {
        guard let ex = exchange, ex.machine.attempts <= 1 else { return nil }
        return ex.startedAt
    }

    /// The exchange is over: count it and (unless a tunnel logs it when it closes) write its access-log line.
    private func complete(logging: Bool = true, now: NIODeadline? = nil) {
        guard let ex = exchange else { return }
        let now = now ?? self.now
        finishedOnEndpoint()
        ex.event.durationNanos = (now - ex.startedAt).nanoseconds
        if logging && ex.accessLogFormat != .none { environment.accessLog.record(ex.event, format: ex.accessLogFormat) }
        if let stats = ex.route?.stats {
            stats.count(target: ex.event.cluster.isEmpty ? nil : ex.targetIndex, status: ex.event.status)
        } else {
            ex.listenerStats?.countLocalReply(status: ex.event.status)
        }
        ex.listenerStats?.duration.record(Duration.nanoseconds(ex.event.durationNanos))
        exchange = nil
    }

    // MARK: deadlines

    func quiesce() {
        guard let context else { return }
        userInboundEventTriggered(context: context, event: ChannelShouldQuiesceEvent())
    }

    func closeNow() {
        context?.close(promise: nil)
    }

    /// Enforces the idle, request-header and upstream-response deadlines (called by the loop's sweep).
    func checkDeadlines(now: NIODeadline) {
        guard let context, countedConnection else { return }
        let (_, listener) = currentListener()
        let timeouts = listener.listener.http.timeouts
        switch state {
        case .idle where pipelined.isEmpty:
            if let first = firstByteAt {
                if now - first >= TimeAmount.nanoseconds(Int64(timeouts.requestHeaders.milliseconds) * 1_000_000) {
                    exchange = makeBareExchange(startedAt: first)
                    exchange!.machine.requestEndsHere()
                    sendLocalReply(.error(.requestTimeout, "the request head did not arrive within \(DurationText(timeouts.requestHeaders))", flags: .requestHeadersTimeout, close: true), context: context)
                    return
                }
            } else if now - idleSince >= TimeAmount.nanoseconds(Int64(timeouts.idle.milliseconds) * 1_000_000) {
                state = .closing
                context.close(promise: nil)
                return
            }
        case .exchange:
            guard let ex = exchange, ex.machine.phase != .answered else { return }
            switch ex.machine.deadline(now: now) {
            case .none:
                break
            case .responseTimeout(let close):
                let seconds = ex.route.map { DurationText($0.route.timeout).description } ?? ""
                sendLocalReply(.error(.gatewayTimeout, "upstream \(ex.event.upstream) did not respond within \(seconds)", flags: .upstreamRequestTimeout, close: close), context: context)
            case .idleTimeout(let responseStarted):
                // Nothing moved either way for the route's stream idle timeout.
                dropUpstream()
                if responseStarted {
                    closeAfterFailure(flags: .upstreamRequestTimeout, context: context)
                } else {
                    let seconds = ex.route.flatMap { $0.route.streamIdleTimeout.map { DurationText($0).description } } ?? ""
                    sendLocalReply(.error(.gatewayTimeout, "nothing moved between client and upstream \(ex.event.upstream) for \(seconds)", flags: .upstreamRequestTimeout, close: true), context: context)
                }
            }
        default:
            break
        }
    }
}

/// A downstream connection that became a tunnel: drained by closing it once the drain timeout ends.
final class TunnelConnection: TrackedConnection {
    let channel: Channel
    init(channel: Channel) { self.channel = channel }
    func quiesce() {}
    func closeNow() { channel.close(promise: nil) }
    func checkDeadlines(now: NIODeadline) {}
}

@available(*, unavailable)
extension HTTPProxyHandler: Sendable {}

/// Per-request state of `HTTPProxyHandler`: what the exchange is about (route, cluster, the upstream head, the
/// log event) around its state machine. A class, so the handler updates it in place.
final class Exchange {
    var event: AccessLogEvent
    var machine: ExchangeStateMachine
    var startedAt: NIODeadline { machine.startedAt }
    var method: HTTPMethod { machine.method }
    var version: HTTPVersion = .http1_1
    var listenerStats: ListenerStats?
    var route: CompiledRoute?
    var targetIndex: Int?
    var accessLogFormat: AccessLogSettings.Format = .json
    /// Forward proxy: the address this request goes to (instead of a cluster's endpoints), and whether it is a CONNECT.
    var destination: SocketAddress?
    var isConnect = false
    /// Forward proxy behind a parent proxy: its address and the `host:port` to ask it for.
    var parentProxy: (address: SocketAddress, authority: String)?
    var cluster: CompiledCluster?
    var snapshotVersion = 0
    var hashKey: UInt64?
    /// The head for the upstream as built by the reverse-proxy path, then its bytes (the forward proxy
    /// writes the bytes directly).
    var upstreamHead: HTTPRequestHead?
    var upstreamHeadBytes: ByteBuffer?
    /// The peer is a trusted proxy: its forwarding fields are kept (`ForwardedTrust`).
    var trustedPeer = false
    var countedActive = false
    /// The response to the client is chunk-framed by Ferry (HTTP/1.1 wire format).
    var downstreamChunked = false
    var sentUpstreamAt: NIODeadline?

    init(event: AccessLogEvent, machine: ExchangeStateMachine) {
        self.event = event
        self.machine = machine
    }
}

@available(*, unavailable)
extension Exchange: Sendable {}
