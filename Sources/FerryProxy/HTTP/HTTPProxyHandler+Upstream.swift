import FerryModel
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOPosix

/// The upstream side of `HTTPProxyHandler`: choosing an endpoint and getting a connection to it (pooled, or
/// dialled on the same event loop through the listener's connector, through a parent proxy when the
/// cluster has one), writing the request, the upstream's events (response parts, close, failure), and
/// the tunnel a `101` opens. What each event means for the exchange is `ExchangeStateMachine`'s to decide.
extension HTTPProxyHandler {
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
        if cluster.cluster.httpProtocol == .h2 {
            dialHTTP2(cluster.addresses[index], cluster: cluster, tls: tls, context: context)
            return
        }
        dial(cluster.addresses[index], connectTimeout: cluster.cluster.connectTimeout, pooled: !exchange!.machine.isUpgrade, tunnelTo: viaParent, tls: tls, context: context)
    }

    /// A new stream on this loop's HTTP/2 connection to `address`: the exchange writes and reads HTTP/1.1 on
    /// it through an `HTTP2UpstreamBridge`; it carries this one request and is never pooled.
    func dialHTTP2(_ address: SocketAddress, cluster: CompiledCluster, tls: (UpstreamTLSContext, String?)?, context: ChannelHandlerContext) {
        let pool = NIOLoopBound(local.pool, eventLoop: context.eventLoop)
        let attempt = exchange!.machine.attempts
        let options = UpstreamDialOptions(connectTimeout: cluster.cluster.connectTimeout, tcpKeepalive: cluster.cluster.tcpKeepalive)
        let overTLS = tls != nil
        local.http2Upstreams.stream(to: address, tls: tls, connector: environment.connector, options: options, on: context.eventLoop) { stream in
            stream.eventLoop.makeCompletedFuture {
                let sync = stream.pipeline.syncOperations
                try sync.addHandler(HTTP2UpstreamBridge(tls: overTLS))
                try Self.addExchangeHandlers(sync, address: address, tls: nil, via: nil, pool: pool.value)
            }
        }
        .assumeIsolated()
        .whenComplete { result in
            // A stream carries one request: never pooled, even when its exchange went away.
            self.connected(result, attempt: attempt) { $0.close() }
        }
    }

    /// Attaches a pooled connection to `address` (when `pooled`) or makes a new one on this event loop;
    /// with `tunnelTo`, `address` is a parent proxy and the connection is usable once it has answered CONNECT.
    func dial(_ address: SocketAddress, connectTimeout: Duration, pooled: Bool, tunnelTo: String? = nil, tls: (UpstreamTLSContext, String?)? = nil, context: ChannelHandlerContext) {
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
            try Self.addExchangeHandlers(sync, address: address, tls: tlsIdentity, via: tunnelTo, pool: pool.value)
        }
        .assumeIsolated()
        .whenComplete { result in
            self.connected(result, attempt: attempt) { connection in
                if pooled || tunnelTo == nil {
                    // The downstream went away meanwhile: keep the connection for the next request.
                    self.local.pool.release(connection, now: self.now)
                } else {
                    // A forward-proxy tunnel through a parent leads to one client's destination: never pooled.
                    connection.close()
                }
            }
        }
    }

    /// The handlers an exchange talks to an upstream through (over a socket, TLS, or an HTTP/2 stream's
    /// bridge): the request writer, the response decoder, and the connection that pools them.
    static func addExchangeHandlers(_ sync: ChannelPipeline.SynchronousOperations, address: SocketAddress, tls: ObjectIdentifier?, via: String?, pool: UpstreamPool) throws {
        let writer = UpstreamRequestWriter()
        let decoder = HTTP1ResponseDecoder()
        let connection = UpstreamConnection(address: address, tls: tls, via: via, writer: writer, decoder: decoder, pool: pool)
        try sync.addHandler(writer)
        try sync.addHandler(decoder)
        try sync.addHandler(connection)
        decoder.sink = connection
    }

    /// A connection made for `attempt`: attached to the exchange if that still waits for it, else handed to
    /// `orphaned`; a failure moves the exchange on (another endpoint, or the error reply).
    func connected(_ result: Result<Channel, any Error>, attempt: Int, orphaned: (UpstreamConnection) -> Void) {
        switch result {
        case .success(let channel):
            guard let connection = try? channel.pipeline.syncOperations.handler(type: UpstreamConnection.self) else {
                channel.close(promise: nil)
                return
            }
            if let context = contextIfStill(attempt: attempt) {
                attach(connection, reused: false, context: context)
            } else {
                orphaned(connection)
            }
        case .failure:
            upstreamConnectFailed(attempt: attempt)
        }
    }

    /// An idle pooled connection; the bucket of this connection's last upstream is tried without a lookup
    /// when the destination is the same (the keep-alive path).
    func acquirePooled(_ address: SocketAddress, tls: ObjectIdentifier?, via: String?) -> UpstreamConnection? {
        let at = firstAttemptStart ?? now
        let key = UpstreamPool.Key(address: address, tls: tls, via: via)
        if let bucket = lastPoolBucket, bucket.key == key { return local.pool.acquire(from: bucket, now: at) }
        return local.pool.acquire(key, now: at)
    }

    /// A connection for a CONNECT tunnel: no HTTP handlers, only (through a parent) its CONNECT handshake;
    /// once up, the tunnel is answered and glued.
    func dialTunnel(_ address: SocketAddress, connectTimeout: Duration, via parentAuthority: String?, context: ChannelHandlerContext) {
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
    func connectChannel(
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
    func contextIfStill(attempt: Int) -> ChannelHandlerContext? {
        guard isWaiting, exchange?.machine.attempts == attempt else { return nil }
        return context
    }

    func upstreamConnectFailed(attempt: Int) {
        environment.metrics.upstreamConnectFailures.increment()
        exchange?.cluster?.stats.connectFailures.increment()
        if let context = contextIfStill(attempt: attempt) { connectFailed(context: context) }
    }

    func connectFailed(context: ChannelHandlerContext) {
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

    func attach(_ connection: UpstreamConnection, reused: Bool, context: ChannelHandlerContext) {
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
    func writeRequestBody(_ buffer: ByteBuffer, to connection: UpstreamConnection) {
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
    func writeRequestEnd(_ trailers: HTTPHeaders?, to connection: UpstreamConnection) {
        connection.writeBytes(WireFormat.lastChunk(trailers: trailers, allocator: connection.allocator))
    }

    func startedOnEndpoint() {
        guard let cluster = exchange!.cluster, cluster.countsActiveRequests, let index = exchange!.machine.endpoint, !exchange!.countedActive else { return }
        exchange!.countedActive = true
        local.withBalancerState(cluster: cluster.cluster.name, snapshotVersion: exchange!.snapshotVersion, endpoints: cluster.addresses.count) { state, _ in
            state.requestStarted(index)
        }
    }

    func finishedOnEndpoint() {
        guard let ex = exchange, ex.countedActive, let cluster = ex.cluster, let index = ex.machine.endpoint else { return }
        exchange!.countedActive = false
        local.withBalancerState(cluster: cluster.cluster.name, snapshotVersion: ex.snapshotVersion, endpoints: cluster.addresses.count) { state, _ in
            state.requestFinished(index)
        }
    }

    /// The machine decided to try again: the attempt's connection is dropped and a new one made.
    func retryAttempt(context: ChannelHandlerContext) {
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
            let bytes = HeaderRewriter.downstreamHead(
                head, fields: fields, requestVersion: ex.version, keepAlive: &keepAlive, isUpgrade: ex.machine.upgradeAccepted,
                setting: ex.route?.responseHeaders ?? [], allocator: context.channel.allocator)
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
    func upgradeAllowed(_ upgrade: String?) -> Bool {
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
}
