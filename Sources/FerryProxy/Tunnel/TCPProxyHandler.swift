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

    /// Reads of a relayed stream: sized to what arrives, from 4 KiB up to 256 KiB (NIO's default stops at
    /// 64 KiB), so a bulk transfer moves in fewer, larger reads and writes.
    static let recvAllocator = AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 16384, maximum: 256 * 1024)

    /// The cluster of a TLS connection passed through by its server name; nil: the listener's `tcp_proxy`.
    private let clusterName: String?

    init(environment: ListenerEnvironment, local: LoopLocal, remoteAddress: SocketAddress?, cluster: String? = nil) {
        self.clusterName = cluster
        self.environment = environment
        self.local = local
        self.clientAddress = remoteAddress.map(HTTPProxyHandler.describe) ?? "unknown"
        self.clientIP = remoteAddress?.ipText ?? "unknown"
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
        guard let name = clusterName ?? listener.listener.tcpProxy?.cluster, let cluster = snapshot.clusters[name], !cluster.addresses.isEmpty else {
            context.close(promise: nil)
            return
        }
        guard let index = cluster.pickL4Endpoint(for: clientIP, excluding: excluded, snapshotVersion: snapshot.config.version, local: local) else {
            environment.metrics.upstreamConnectFailures.increment()
            context.close(promise: nil)
            return
        }
        let options = UpstreamDialOptions(connectTimeout: cluster.cluster.connectTimeout, tcpKeepalive: cluster.cluster.tcpKeepalive)
        environment.connector.connect(to: cluster.addresses[index], options: options, on: context.eventLoop) { channel in
            // Set before the connection exists, so a peer that half-closes at once is not read as a close.
            channel.eventLoop.makeCompletedFuture {
                try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
                try channel.syncOptions?.setOption(.recvAllocator, value: TCPProxyHandler.recvAllocator)
            }
        }
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
        var session = TunnelSession(downstream: context.channel, upstream: upstream, early: early, clientEnded: clientEnded)
        early = []
        // Reads were held until now: one is owed to the glue (a second one, if NIO asked too, is ignored).
        session.owesRead = true
        if cluster.countsActiveRequests {
            // least_request: the connection counts against its endpoint until it closes.
            let local = self.local
            let name = cluster.cluster.name, count = cluster.addresses.count
            local.withBalancerState(cluster: name, snapshotVersion: snapshotVersion, endpoints: count) { state, _ in state.requestStarted(index) }
            session.onClose.append { local.withBalancerState(cluster: name, snapshotVersion: snapshotVersion, endpoints: count) { state, _ in state.requestFinished(index) } }
        }
        let format = environment.resolve(environment.store.current).0.config.accessLog.format
        if format != .none {
            var event = AccessLogEvent(startTime: WallClock.now(), listener: environment.listenerName, downstream: clientAddress)
            event.method = "TCP"
            event.cluster = cluster.cluster.name
            event.upstream = cluster.endpointNames[index]
            session.log = .init(event: event, format: format, writer: environment.accessLog, startedAt: startedAt)
        }
        session.start { down, _ in down.removeHandler(context: context, promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }
}

@available(*, unavailable)
extension TCPProxyHandler: Sendable {}
