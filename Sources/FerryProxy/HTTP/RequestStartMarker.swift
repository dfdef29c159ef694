import NIOCore

/// Sits before the HTTP decoder and notes when the first byte of a request arrives, so the
/// request-header deadline runs from that byte while an idle keep-alive connection runs on the idle timeout.
final class RequestStartMarker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Set by the proxy handler when it waits for a new request head.
    var waitingForHead = true
    /// When the first byte of the awaited head arrived.
    private(set) var firstByteAt: NIODeadline?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if waitingForHead, firstByteAt == nil {
            firstByteAt = .now()
        }
        context.fireChannelRead(data)
    }

    /// Called when a head arrived (stop timing) or a new one is awaited (start over).
    func reset(waiting: Bool) {
        waitingForHead = waiting
        firstByteAt = nil
    }
}
