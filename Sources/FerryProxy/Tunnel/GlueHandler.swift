import NIOCore

/// One half of a byte tunnel between two channels on the same event loop (WebSocket after 101, and later
/// CONNECT and TCP proxying). Each side reads only while its partner is writable; a half-close is passed
/// through; when one side closes, the other is closed too.
final class GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Called once when this side's channel goes inactive (for connection accounting and logs).
    var onClose: (() -> Void)?
    /// Bytes read from this side's channel (and passed to the partner).
    private(set) var bytesRead = 0

    private init() {}

    /// Two handlers glued to each other; add one to each channel.
    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler()
        let second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    // MARK: partner calls

    private func partnerWrite(_ data: ByteBuffer) {
        context?.write(wrapOutboundOut(data), promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerWriteEOF() {
        context?.close(mode: .output, promise: nil)
    }

    private func partnerCloseFull() {
        context?.close(promise: nil)
    }

    /// The partner drained: this side may read again. The read is asked for even when no request was
    /// recorded as held (NIO ignores a second request while one is outstanding), so reading can never stay
    /// stopped after a drain.
    private func partnerBecameWritable() {
        pendingRead = false
        context?.read()
    }

    private var partnerWritable: Bool {
        context?.channel.isWritable ?? false
    }

    // MARK: own events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytesRead &+= buffer.readableBytes
        partner?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerCloseFull()
        onClose?()
        onClose = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // What was read before the end is written out first: the partner's output closes after it.
            partner?.partnerFlush()
            partner?.partnerWriteEOF()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

@available(*, unavailable)
extension GlueHandler: Sendable {}
