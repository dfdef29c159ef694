import NIOCore
import NIOHTTP2
import NIOSSL

/// This loop's HTTP/2 connections to upstreams (clusters with `protocol: h2`): one per endpoint (and TLS
/// context), shared by every request to it as one stream each, dialed on first use and forgotten when it
/// closes (a GOAWAY, an error, the upstream going away).
final class HTTP2UpstreamPool {
    struct Key: Hashable {
        var address: SocketAddress
        var tls: ObjectIdentifier?
    }

    private var connections: [Key: EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>] = [:]

    /// A new stream to `address` with `initializer` run on its pipeline, on a pooled connection or a new one.
    func stream(
        to address: SocketAddress, tls: (UpstreamTLSContext, String?)?, connector: UpstreamConnector, options: UpstreamDialOptions,
        on loop: EventLoop, initializer: @escaping NIOChannelInitializer
    ) -> EventLoopFuture<Channel> {
        let key = Key(address: address, tls: tls.map { ObjectIdentifier($0.0) })
        let multiplexer: EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>
        if let existing = connections[key] {
            multiplexer = existing
        } else {
            multiplexer = connect(address, tls: tls, connector: connector, options: options, on: loop)
            connections[key] = multiplexer
            multiplexer.whenFailure { [self] _ in connections[key] = nil }
        }
        return multiplexer.flatMap { $0.createStreamChannel(initializer) }
    }

    private func connect(
        _ address: SocketAddress, tls: (UpstreamTLSContext, String?)?, connector: UpstreamConnector, options: UpstreamDialOptions, on loop: EventLoop
    ) -> EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer> {
        let key = Key(address: address, tls: tls.map { ObjectIdentifier($0.0) })
        return connector.connect(to: address, options: options, on: loop) { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                if let (context, serverName) = tls {
                    try sync.addHandler(try NIOSSLClientHandler(context: context.context, serverHostname: serverName))
                }
                _ = try sync.configureHTTP2Pipeline(mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()) { stream in
                    stream.eventLoop.makeSucceededVoidFuture()
                }
            }
        }
        .flatMapThrowing { [self] channel in
            channel.closeFuture.whenComplete { _ in self.connections[key] = nil }
            return try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
        }
    }
}

@available(*, unavailable)
extension HTTP2UpstreamPool: Sendable {}
