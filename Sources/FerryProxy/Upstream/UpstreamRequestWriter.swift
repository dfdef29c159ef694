import NIOCore

/// Takes the place of NIO's `HTTPRequestEncoder` on an upstream connection. Ferry writes request bytes
/// itself — heads serialized in one pass (`RequestSerializer`), bodies chunk-framed when the request is
/// chunked — straight through this handler's context, past the response decoder (which learns each
/// request's method from the queue it shares with `UpstreamConnection`, not from the pipeline).
final class UpstreamRequestWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Request bytes, in order, towards the socket (or TLS).
    func writeBytes(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamRequestWriter: Sendable {}
