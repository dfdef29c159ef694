import FerryModel
import NIOCore
import NIOPosix

/// The downstream end of a TCP proxy listener: picks an endpoint of the listener's cluster with its load
/// balancer, connects on the same event loop (another endpoint when a connect fails, once per endpoint), then
/// glues the two connections and steps aside. Nothing is read from the client until the upstream is up.
final class TCPProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    let environment: ListenerEnvironment
    let local: LoopLocal
    private let clientAddress: String
    /// The client's IP address (the affinity and hash key).
    private let clientIP: String
    private var context: ChannelHandlerContext?
    private var excluded: [Int] = []
    private let startedAt = NIODeadline.now()

    init(environment: ListenerEnvironment, local: LoopLocal, remoteAddress: SocketAddress?) {
        self.environment = environment
        self.local = local
        self.clientAddress = remoteAddress.map(HTTPProxyHandler.describe) ?? "unknown"
        self.clientIP = remoteAddress?.ipAddress ?? "unknown"
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { connect(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        connect(context: context)
        context.fireChannelActive()
    }

    /// Reads wait for the glue (which reads only while the other side can take the bytes).
    func read(context: ChannelHandlerContext) {}

    /// Bytes NIO read anyway before the glue (it reads to the end when the client half-closes early), and
    /// whether the client's end was seen: both are handed to the upstream once it is connected.
    private var early: [ByteBuffer] = []
    private var clientEnded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        early.append(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            clientEnded = true
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private var connecting = false

    private func connect(context: ChannelHandlerContext) {
        guard !connecting else { return }
        connecting = true
        dialNext(context: context)
    }

    private func dialNext(context: ChannelHandlerContext) {
        let (snapshot, listener) = environment.resolve(environment.store.current)
        guard let settings = listener.listener.tcpProxy, let cluster = snapshot.clusters[settings.cluster], !cluster.addresses.isEmpty else {
            context.close(promise: nil)
            return
        }
        guard let index = cluster.pickL4Endpoint(for: clientIP, excluding: excluded, snapshotVersion: snapshot.config.version, local: local) else {
            environment.metrics.upstreamConnectFailures.increment()
            context.close(promise: nil)
            return
        }
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(.milliseconds(cluster.cluster.connectTimeout.milliseconds))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: cluster.addresses[index])
            .assumeIsolated()
            .whenComplete { result in
                guard let context = self.context, context.channel.isActive else {
                    if case .success(let channel) = result { channel.close(promise: nil) }
                    self.context?.close(promise: nil)
                    return
                }
                switch result {
                case .success(let upstream):
                    self.glue(to: upstream, endpoint: index, cluster: cluster, snapshotVersion: snapshot.config.version, context: context)
                case .failure:
                    cluster.stats.connectFailures.increment()
                    self.excluded.append(index)
                    self.dialNext(context: context)
                }
            }
    }

    private func glue(to upstream: Channel, endpoint index: Int, cluster: CompiledCluster, snapshotVersion: Int, context: ChannelHandlerContext) {
        let (downstreamGlue, upstreamGlue) = GlueHandler.matchedPair()
        let (snapshot, _) = environment.resolve(environment.store.current)
        let format = snapshot.config.accessLog.format
        var onClose: [() -> Void] = []
        if cluster.countsActiveRequests {
            // least_request: the connection counts against its endpoint until it closes.
            let local = self.local
            let name = cluster.cluster.name, count = cluster.addresses.count
            local.withBalancerState(cluster: name, snapshotVersion: snapshotVersion, endpoints: count) { state, _ in state.requestStarted(index) }
            onClose.append { local.withBalancerState(cluster: name, snapshotVersion: snapshotVersion, endpoints: count) { state, _ in state.requestFinished(index) } }
        }
        if format != .none {
            let writer = environment.accessLog
            let startedAt = self.startedAt
            var event = AccessLogEvent(startTime: WallClock.now(), listener: environment.listenerName, downstream: clientAddress)
            event.method = "TCP"
            event.cluster = cluster.cluster.name
            event.upstream = cluster.endpointNames[index]
            onClose.append {
                event.bytesReceived = downstreamGlue.bytesRead
                event.bytesSent = upstreamGlue.bytesRead
                event.durationNanos = (NIODeadline.now() - startedAt).nanoseconds
                writer.record(event, format: format)
            }
        }
        if !onClose.isEmpty { downstreamGlue.onClose = { for action in onClose { action() } } }
        do {
            try upstream.pipeline.syncOperations.addHandler(upstreamGlue)
            try context.pipeline.syncOperations.addHandler(downstreamGlue)
            for buffer in early { upstream.write(buffer, promise: nil) }
            early = []
            upstream.flush()
            if clientEnded { upstream.close(mode: .output, promise: nil) }
            let channel = context.channel
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            // Reads were held until now: one is owed to the glue (a second one, if NIO asked too, is ignored).
            channel.read()
        } catch {
            upstream.close(promise: nil)
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }
}

@available(*, unavailable)
extension TCPProxyHandler: Sendable {}
