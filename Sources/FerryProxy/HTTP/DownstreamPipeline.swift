import NIOCore
import NIOHTTP1
import NIOSSL

/// The handlers of an accepted HTTP/1.1 connection, kept minimal: the chunk-size line guard, the decoder with
/// Ferry's limits and the proxy handler, which writes response bytes itself (`ResponseSerializer`): no encoder handler.
enum DownstreamPipeline {
    static func configure(_ channel: Channel, environment: ListenerEnvironment, limits: NIOHTTPDecoderLimitConfigurationBox) throws {
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = limits.maxFieldSize
        decoderLimits.maxHeaderListSize = limits.maxListSize
        decoderLimits.maxHeaderFieldCount = limits.maxFieldCount
        let sync = channel.pipeline.syncOperations
        // TLS from the snapshot in force now, so a reloaded certificate serves new connections.
        let tls = environment.resolve(environment.store.current).1.tls
        if let tls { try sync.addHandler(NIOSSLServerHandler(context: tls)) }
        try sync.addHandler(ChunkLineGuard(maxChunkLineBytes: limits.maxChunkLineBytes))
        try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(
            leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .drop,
            limitConfiguration: decoderLimits)))
        try sync.addHandler(HTTPProxyHandler(
            environment: environment, local: environment.loops.local(for: channel.eventLoop),
            remoteAddress: channel.remoteAddress, overTLS: tls != nil))
    }
}
