import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// How upstream connections are made. Production uses sockets (`SocketConnector`); tests hand the proxy
/// channels they hold themselves (EmbeddedChannels on the same event loop), so forwarding, retries,
/// backpressure and upgrades can be driven byte by byte without a network.
protocol UpstreamConnector: Sendable {
    /// A connected channel to `address` on `eventLoop`, with `initializer` run on its pipeline first.
    func connect(
        to address: SocketAddress, options: UpstreamDialOptions, on eventLoop: any EventLoop,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel>
}

/// Socket options of one upstream connection, from the cluster.
struct UpstreamDialOptions: Sendable {
    var connectTimeout: Duration
    /// TCP keep-alive probes: idle time before the first and between probes; nil: the system's default.
    var tcpKeepalive: Duration?
}

/// TCP connections with NIO's `ClientBootstrap`: no Nagle delay, keep-alive probes when the cluster asks.
struct SocketConnector: UpstreamConnector {
    func connect(
        to address: SocketAddress, options: UpstreamDialOptions, on eventLoop: any EventLoop,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount.milliseconds(options.connectTimeout.milliseconds))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        if let keepalive = options.tcpKeepalive {
            let seconds = Int(max(1, keepalive.components.seconds))
            bootstrap = bootstrap
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .channelOption(ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: TCP_KEEPIDLE)), value: seconds)
                .channelOption(ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: TCP_KEEPINTVL)), value: seconds)
        }
        return bootstrap.channelInitializer(initializer).connect(to: address)
    }
}
