import NIOCore
import NIOHTTP1
import NIOSSL

/// The handlers of an accepted HTTP/1.1 connection, kept minimal: Ferry's request decoder (framing and
/// limits) and the proxy handler, which writes response bytes itself (`ResponseSerializer`): no encoder handler.
enum DownstreamPipeline {
    static func configure(_ channel: Channel, environment: ListenerEnvironment, limits: DecoderLimits) throws {
        let sync = channel.pipeline.syncOperations
        // TLS from the snapshot in force now, so a reloaded certificate serves new connections.
        let tls = environment.resolve(environment.store.current).1.tls
        if let tls { try sync.addHandler(NIOSSLServerHandler(context: tls)) }
        let decoder = HTTP1RequestDecoder(limits: limits.parserLimits)
        let handler = HTTPProxyHandler(
            environment: environment, local: environment.loops.local(for: channel.eventLoop),
            remoteAddress: channel.remoteAddress, overTLS: tls != nil)
        try sync.addHandler(decoder)
        try sync.addHandler(handler)
        decoder.sink = handler
    }
}
