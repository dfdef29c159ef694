import NIOCore
import NIOHTTP2
import NIOSSL

/// This loop's HTTP/2 connections to upstreams (clusters with `protocol: h2`), shared by every request to an
/// endpoint (and TLS context) as one stream each. A request takes the first connection with a free stream
/// under the upstream's SETTINGS_MAX_CONCURRENT_STREAMS; when all are full, another connection is dialed (as
/// Envoy does), so a server that allows few streams is not a queue. A connection is forgotten when it closes
/// (a GOAWAY, an error, the upstream going away).
final class HTTP2UpstreamPool {
    struct Key: Hashable {
        var address: SocketAddress
        var tls: ObjectIdentifier?
    }

    /// One connection: its multiplexer (once connected), the streams open on it, and how many the upstream
    /// allows.
    final class Connection {
        let multiplexer: EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>
        var openStreams = 0
        /// The upstream's SETTINGS_MAX_CONCURRENT_STREAMS; until its SETTINGS arrive, NIOHTTP2's and most
        /// servers' 100.
        var streamLimit = 100
        var closed = false

        init(_ multiplexer: EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>) { self.multiplexer = multiplexer }

        var hasFreeStream: Bool { !closed && openStreams < streamLimit }
    }

    private var connections: [Key: [Connection]] = [:]

    /// A new stream to `address` with `initializer` run on its pipeline, on a pooled connection or a new one.
    func stream(
        to address: SocketAddress, tls: (UpstreamTLSContext, String?)?, connector: UpstreamConnector, options: UpstreamDialOptions,
        on loop: EventLoop, initializer: @escaping NIOChannelInitializer
    ) -> EventLoopFuture<Channel> {
        let key = Key(address: address, tls: tls.map { ObjectIdentifier($0.0) })
        let connection: Connection
        if let free = connections[key]?.first(where: \.hasFreeStream) {
            connection = free
        } else {
            connection = connect(address, key: key, tls: tls, connector: connector, options: options, on: loop)
            // Until its own SETTINGS arrive, a new connection is taken to allow what its siblings do.
            if let known = connections[key]?.first?.streamLimit { connection.streamLimit = known }
            connections[key, default: []].append(connection)
        }
        connection.openStreams += 1
        let stream = connection.multiplexer.flatMap { $0.createStreamChannel(initializer) }
        stream.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel): channel.closeFuture.assumeIsolated().whenComplete { _ in connection.openStreams -= 1 }
            case .failure: connection.openStreams -= 1
            }
        }
        return stream
    }

    private func connect(
        _ address: SocketAddress, key: Key, tls: (UpstreamTLSContext, String?)?, connector: UpstreamConnector, options: UpstreamDialOptions, on loop: EventLoop
    ) -> Connection {
        let promise = loop.makePromise(of: NIOHTTP2Handler.StreamMultiplexer.self)
        let connection = Connection(promise.futureResult)
        let observer = NIOLoopBound(connection, eventLoop: loop)
        connector.connect(to: address, options: options, on: loop) { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                if let (context, serverName) = tls {
                    try sync.addHandler(try NIOSSLClientHandler(context: context.context, serverHostname: serverName))
                }
                _ = try sync.configureHTTP2Pipeline(mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()) { stream in
                    stream.eventLoop.makeSucceededVoidFuture()
                }
                try sync.addHandler(UpstreamSettingsObserver(observer.value))
            }
        }
        .assumeIsolated().flatMapThrowing { channel in
            channel.closeFuture.assumeIsolated().whenComplete { [self] _ in forget(connection, key: key) }
            return try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
        }
        .whenComplete { [self] result in
            if case .failure = result { forget(connection, key: key) }
            promise.completeWith(result)
        }
        return connection
    }

    private func forget(_ connection: Connection, key: Key) {
        connection.closed = true
        connections[key]?.removeAll { $0 === connection }
        if connections[key]?.isEmpty == true { connections[key] = nil }
    }
}

/// Reads the upstream's SETTINGS (NIOHTTP2 passes connection frames down the pipeline) for how many streams
/// a connection may carry.
private final class UpstreamSettingsObserver: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    private let connection: HTTP2UpstreamPool.Connection

    init(_ connection: HTTP2UpstreamPool.Connection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if case .settings(.settings(let settings)) = frame.payload,
           let limit = settings.last(where: { $0.parameter == .maxConcurrentStreams }) {
            // A server that allows none still gets one stream per connection, never a stall.
            connection.streamLimit = max(1, limit.value)
        }
    }
}

@available(*, unavailable)
extension HTTP2UpstreamPool: Sendable {}
@available(*, unavailable)
extension HTTP2UpstreamPool.Connection: Sendable {}
