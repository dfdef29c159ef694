import FerryModel
import NIOCore
import NIOPosix

/// A UDP proxy listener: each client address gets a session, an upstream socket of its own on the same
/// event loop, bound to one endpoint picked by the cluster's load balancer; the endpoint's answers go back
/// to that client from the listener's address. Sessions idle for the listener's `idle_timeout` are
/// forgotten; beyond `max_sessions`, datagrams of new clients are dropped.
final class UDPProxyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    final class Session {
        let client: SocketAddress
        let endpoint: SocketAddress
        var channel: Channel?
        /// Datagrams that arrived while the upstream socket was being opened (a few at most).
        var pending: [ByteBuffer] = []
        var lastActivity: NIODeadline

        init(client: SocketAddress, endpoint: SocketAddress, now: NIODeadline) {
            self.client = client
            self.endpoint = endpoint
            self.lastActivity = now
        }
    }

    static let maxPendingPerSession = 16

    let environment: ListenerEnvironment
    let local: LoopLocal
    private var sessions: [SocketAddress: Session] = [:]
    private var context: ChannelHandlerContext?
    private var sweep: RepeatedTask?

    init(environment: ListenerEnvironment, local: LoopLocal) {
        self.environment = environment
        self.local = local
    }

    private var settings: (UDPProxySettings, CompiledCluster, Int)? {
        let (snapshot, listener) = environment.resolve(environment.store.current)
        guard let udp = listener.listener.udpProxy, let cluster = snapshot.clusters[udp.cluster] else { return nil }
        return (udp, cluster, snapshot.config.version)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let interval = TimeAmount.milliseconds(max(100, (settings?.0.idleTimeout.milliseconds ?? 30_000) / 4))
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        sweep = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.expireIdleSessions(now: .now())
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweep?.cancel()
        for session in sessions.values { session.channel?.close(promise: nil) }
        sessions.removeAll()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let now = NIODeadline.now()
        if let session = sessions[envelope.remoteAddress] {
            session.lastActivity = now
            send(envelope.data, in: session)
            return
        }
        guard let (udp, cluster, version) = settings, !cluster.addresses.isEmpty, sessions.count < udp.maxSessions else { return }
        guard let index = cluster.pickL4Endpoint(for: envelope.remoteAddress.ipText ?? "", snapshotVersion: version, local: local) else { return }
        let session = Session(client: envelope.remoteAddress, endpoint: cluster.addresses[index], now: now)
        session.pending.append(envelope.data)
        sessions[envelope.remoteAddress] = session
        open(session, context: context)
    }

    /// The session's own socket: bound to an ephemeral port, it takes the endpoint's answers for the client.
    private func open(_ session: Session, context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let listener = NIOLoopBound(self, eventLoop: loop)
        let boundSession = NIOLoopBound(session, eventLoop: loop)
        let any = session.endpoint.protocol == .inet6 ? "::" : "0.0.0.0"
        DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPSessionHandler { data in
                        listener.value.answer(data, for: boundSession.value)
                    })
                }
            }
            .bind(host: any, port: 0)
            .assumeIsolated()
            .whenComplete { result in
                guard self.sessions[session.client] === session else {
                    if case .success(let channel) = result { channel.close(promise: nil) }
                    return
                }
                switch result {
                case .success(let channel):
                    session.channel = channel
                    let pending = session.pending
                    session.pending = []
                    for datagram in pending { self.send(datagram, in: session) }
                case .failure:
                    self.sessions[session.client] = nil
                    self.environment.metrics.upstreamConnectFailures.increment()
                }
            }
    }

    private func send(_ datagram: ByteBuffer, in session: Session) {
        guard let channel = session.channel else {
            if session.pending.count < UDPProxyHandler.maxPendingPerSession { session.pending.append(datagram) }
            return
        }
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: session.endpoint, data: datagram), promise: nil)
    }

    /// An answer from the session's endpoint goes back to its client, from the listener's address.
    func answer(_ envelope: AddressedEnvelope<ByteBuffer>, for session: Session) {
        guard envelope.remoteAddress == session.endpoint, let context, sessions[session.client] === session else { return }
        session.lastActivity = .now()
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: session.client, data: envelope.data)), promise: nil)
    }

    func expireIdleSessions(now: NIODeadline) {
        guard let (udp, _, _) = settings else { return }
        let limit = TimeAmount.milliseconds(udp.idleTimeout.milliseconds)
        for (client, session) in sessions where now - session.lastActivity >= limit {
            session.channel?.close(promise: nil)
            sessions[client] = nil
        }
    }

    var sessionCount: Int { sessions.count }
}

/// The upstream side of one UDP session: passes each datagram it receives to the listener.
final class UDPSessionHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let received: (AddressedEnvelope<ByteBuffer>) -> Void

    init(received: @escaping (AddressedEnvelope<ByteBuffer>) -> Void) {
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received(unwrapInboundIn(data))
    }
}

@available(*, unavailable)
extension UDPProxyHandler: Sendable {}

@available(*, unavailable)
extension UDPSessionHandler: Sendable {}
