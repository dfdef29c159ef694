import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS

/// The handlers of an accepted HTTP/1.1 connection, kept minimal: Ferry's request decoder (framing and
/// limits) and the proxy handler, which writes response bytes itself (`ResponseSerializer`): no encoder handler.
enum DownstreamPipeline {
    static func configure(_ channel: Channel, environment: ListenerEnvironment, limits: DecoderLimits) throws {
        let sync = channel.pipeline.syncOperations
        // TLS from the snapshot in force now, so a reloaded certificate serves new connections.
        let tls = environment.resolve(environment.store.current).1.tls
        let decoder = HTTP1RequestDecoder(limits: limits.parserLimits)
        let handler = HTTPProxyHandler(
            environment: environment, local: environment.loops.local(for: channel.eventLoop),
            remoteAddress: channel.remoteAddress, overTLS: tls != nil)
        if let tls {
            if tls.selectsByName {
                try addTLSBySNI(tls, to: channel, before: decoder, handler: handler)
            } else {
                handler.clientCertificatesVerified = tls.defaultEntry.verifiesClients
                try sync.addHandler(CompiledTLS.handler(tls.defaultEntry))
            }
        }
        try sync.addHandler(decoder)
        try sync.addHandler(handler)
        decoder.sink = handler
    }

    /// Reads the ClientHello's server name first (NIOTLS's `SNIHandler`, which holds the bytes and hands them
    /// on once it steps aside), then puts the TLS handler of the certificate that name selects in its place.
    private static func addTLSBySNI(_ tls: CompiledTLS, to channel: Channel, before decoder: HTTP1RequestDecoder, handler: HTTPProxyHandler) throws {
        let sni = ByteToMessageHandler(SNIHandler { result in
            let name: String? = if case .hostname(let name) = result { name } else { nil }
            let entry = tls.entry(forServerName: name)
            handler.clientCertificatesVerified = entry.verifiesClients
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(CompiledTLS.handler(entry), position: .before(decoder))
            }
        })
        try channel.pipeline.syncOperations.addHandler(sni)
    }
}
