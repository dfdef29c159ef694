import FerryModel
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL
import NIOTLS

/// The handlers of an accepted HTTP connection, kept minimal. HTTP/1.1: Ferry's request decoder (framing and
/// limits) and the proxy handler, which writes response bytes itself (`ResponseSerializer`): no encoder
/// handler. Over TLS the certificate is chosen by SNI first when the listener has several; HTTP/2 is chosen
/// by ALPN (`h2`) on TLS, or by the connection preface on a cleartext listener that accepts prior knowledge,
/// and then every stream gets the HTTP/1.1 handlers behind an `HTTP2StreamBridge`.
enum DownstreamPipeline {
    static func configure(_ channel: Channel, environment: ListenerEnvironment, limits: DecoderLimits) throws {
        // TLS and HTTP/2 settings from the snapshot in force now, so a reloaded certificate serves new connections.
        let listener = environment.resolve(environment.store.current).1
        let setup = Setup(environment: environment, limits: limits, http2: listener.http2, overTLS: listener.tls != nil)
        guard let tls = listener.tls else {
            if listener.http2.priorKnowledge {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTP2PrefaceDetector { isHTTP2 in
                    if isHTTP2 { try setup.addHTTP2(to: channel, verified: false) } else { try setup.addHTTP1(to: channel, verified: false) }
                }))
            } else {
                try setup.addHTTP1(to: channel, verified: false)
            }
            return
        }
        if tls.selectsByName {
            // NIOTLS's SNIHandler holds the ClientHello's bytes and hands them on once it steps aside.
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SNIHandler { result in
                let name: String? = if case .hostname(let name) = result { name } else { nil }
                return channel.eventLoop.makeCompletedFuture {
                    if let cluster = tls.passthrough.select(name).value {
                        // Not terminated: the ClientHello and all that follows go to the cluster as they are.
                        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
                        try channel.pipeline.syncOperations.addHandler(TCPProxyHandler(
                            environment: setup.environment, local: setup.environment.loops.local(for: channel.eventLoop),
                            remoteAddress: channel.remoteAddress, cluster: cluster))
                    } else {
                        try setup.addTLS(tls.entry(forServerName: name), offersHTTP2: tls.offersHTTP2, to: channel)
                    }
                }
            }))
        } else {
            try setup.addTLS(tls.defaultEntry, offersHTTP2: tls.offersHTTP2, to: channel)
        }
    }

    /// What a connection's handlers are made from.
    struct Setup {
        let environment: ListenerEnvironment
        let limits: DecoderLimits
        let http2: DownstreamHTTP2
        let overTLS: Bool

        /// The TLS handler of the chosen certificate, then HTTP/1.1 — or, when ALPN offers `h2`, whichever
        /// protocol the handshake chose.
        func addTLS(_ entry: CompiledTLS.Entry, offersHTTP2: Bool, to channel: Channel) throws {
            try channel.pipeline.syncOperations.addHandler(CompiledTLS.handler(entry))
            guard offersHTTP2 else {
                try addHTTP1(to: channel, verified: entry.verifiesClients)
                return
            }
            try channel.pipeline.syncOperations.addHandler(ApplicationProtocolNegotiationHandler { result in
                channel.eventLoop.makeCompletedFuture {
                    if case .negotiated("h2") = result {
                        try addHTTP2(to: channel, verified: entry.verifiesClients)
                    } else {
                        try addHTTP1(to: channel, verified: entry.verifiesClients)
                    }
                }
            })
        }

        /// Ferry's request decoder and the proxy handler.
        @discardableResult
        func addHTTP1(to channel: Channel, verified: Bool, overHTTP2: Bool = false) throws -> HTTPProxyHandler {
            let decoder = HTTP1RequestDecoder(limits: limits.parserLimits)
            let handler = HTTPProxyHandler(
                environment: environment, local: environment.loops.local(for: channel.eventLoop),
                remoteAddress: channel.remoteAddress, overTLS: overTLS)
            handler.clientCertificatesVerified = verified
            handler.overHTTP2 = overHTTP2
            try channel.pipeline.syncOperations.addHandler(decoder)
            try channel.pipeline.syncOperations.addHandler(handler)
            decoder.sink = handler
            return handler
        }

        /// NIOHTTP2's connection handler with Ferry's limits; each stream: the bridge to HTTP/1.1 and the
        /// HTTP/1.1 handlers.
        func addHTTP2(to channel: Channel, verified: Bool) throws {
            var connection = NIOHTTP2Handler.ConnectionConfiguration()
            connection.initialSettings = [
                HTTP2Setting(parameter: .maxConcurrentStreams, value: http2.maxConcurrentStreams),
                HTTP2Setting(parameter: .maxHeaderListSize, value: http2.maxHeaderListSize),
            ]
            var stream = NIOHTTP2Handler.StreamConfiguration()
            stream.streamResetFrameRateLimit.maximumCount = http2.maxResetsPer30s
            let setup = self
            try channel.pipeline.syncOperations.addHandler(ConnectionFlushCoalescer(local: environment.loops.local(for: channel.eventLoop)))
            _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                mode: .server, connectionConfiguration: connection, streamConfiguration: stream
            ) { streamChannel in
                streamChannel.eventLoop.makeCompletedFuture {
                    let sync = streamChannel.pipeline.syncOperations
                    try sync.addHandler(HTTP2StreamBridge())
                    try setup.addHTTP1(to: streamChannel, verified: verified, overHTTP2: true)
                }
            }
        }
    }
}

/// Sits under an HTTP/2 connection's handler: the flushes its streams' exchanges make at the end of a tick
/// (`LoopLocal`'s batched flushes, one per stream) become one flush of the connection after them, so many
/// responses leave in one write instead of one system call each.
final class ConnectionFlushCoalescer: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = Any
    private let local: LoopLocal
    private var pending = false

    init(local: LoopLocal) {
        self.local = local
    }

    func flush(context: ChannelHandlerContext) {
        guard local.isDraining else {
            context.flush()
            return
        }
        guard !pending else { return }
        pending = true
        local.flushAfterDrain { [self] in
            pending = false
            context.flush()
        }
    }
}

/// Tells an HTTP/2 connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, RFC 9113 §3.4) from an HTTP/1.1
/// request by its first bytes, then steps aside (the bytes go on to what `decided` added).
final class HTTP2PrefaceDetector: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let decided: (Bool) throws -> Void
    private var done = false

    init(decided: @escaping (Bool) throws -> Void) {
        self.decided = decided
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard !done else { return .needMoreData }
        let n = min(buffer.readableBytes, Self.preface.count)
        let seen = buffer.getBytes(at: buffer.readerIndex, length: n) ?? []
        let matches = seen.elementsEqual(Self.preface.prefix(n))
        guard !matches || n == Self.preface.count else { return .needMoreData }
        done = true
        try decided(matches)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        return .needMoreData
    }

    /// On removal (and at the end of input) the held bytes go on to the handlers `decided` added.
    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if buffer.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(buffer))
            buffer.moveReaderIndex(to: buffer.writerIndex)
        }
        return .needMoreData
    }
}
