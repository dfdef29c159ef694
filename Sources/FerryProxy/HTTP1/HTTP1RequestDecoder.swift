import NIOCore
import NIOHTTP1

/// The downstream side of an HTTP/1.1 connection: received bytes → `HTTPServerRequestPart`s through
/// `HTTP1RequestParser`. In place of NIO's `ByteToMessageHandler(HTTPRequestDecoder)` and Ferry's former
/// chunk-line guard in front of it: one scan of the bytes, Ferry's limits and framing rules applied while
/// scanning. Bytes the parser cannot use yet (a head in pieces) are kept; what follows a CONNECT or an
/// Upgrade request is kept unread and passed on as bytes when the handler is removed (the tunnel's glue
/// receives it).
final class HTTP1RequestDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart

    private var parser: HTTP1RequestParser
    /// Received bytes not yet parsed (nil when everything received was used).
    private var unread: ByteBuffer?

    init(limits: HTTP1RequestParser.Limits) {
        parser = HTTP1RequestParser(limits: limits)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var kept = unread {
            unread = nil
            kept.writeBuffer(&buffer)
            buffer = kept
        }
        switch parser.state {
        case .failed:
            return
        case .stopped:
            unread = buffer
            return
        default:
            break
        }
        do {
            try parser.parse(&buffer) { part in context.fireChannelRead(wrapInboundOut(part)) }
        } catch {
            unread = nil
            context.fireErrorCaught(error)
            return
        }
        if buffer.readableBytes > 0 {
            // Compact a large read of which little is left, so one small remainder does not pin it.
            if buffer.readerIndex > 4096, buffer.readableBytes < buffer.readerIndex / 4 { buffer.discardReadBytes() }
            unread = buffer
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let error = parser.endOfInput(unread: unread?.readableBytes ?? 0) {
            context.fireErrorCaught(error)
        }
        context.fireChannelInactive()
    }

    /// Taken off the pipeline to make a tunnel: the bytes that followed the request belong to the new
    /// protocol, and go on to the glue. (A channel that closes does not come here.)
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if let unread, unread.readableBytes > 0, parser.state == .stopped {
            self.unread = nil
            context.fireChannelRead(NIOAny(unread))
        }
        context.leavePipeline(removalToken: removalToken)
    }
}

@available(*, unavailable)
extension HTTP1RequestDecoder: Sendable {}
