import NIOCore
import NIOHTTP1

/// Takes the place of NIO's `HTTPRequestEncoder` on an upstream connection. Ferry writes request bytes
/// itself — heads serialized in one pass (`RequestSerializer`), bodies chunk-framed when the request is
/// chunked — straight through this handler's context, past the response decoder. What still travels the
/// pipeline as `HTTPClientRequestPart` is a head naming the method (`marker(for:)`), which the response
/// decoder records to frame the response (a HEAD response has no body); it is dropped here.
final class UpstreamRequestWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Request bytes, in order, towards the socket (or TLS).
    func writeBytes(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(.byteBuffer(bytes)), promise: nil)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head, .end:
            // Seen by the response decoder on its way here; the bytes went through `writeBytes`.
            promise?.succeed(())
        case .body(let bytes):
            context.write(wrapOutboundOut(bytes), promise: promise)
        }
    }

    private static let getMarker = HTTPRequestHead(version: .http1_1, method: .GET, uri: "")
    private static let headMarker = HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "")
    private static let postMarker = HTTPRequestHead(version: .http1_1, method: .POST, uri: "")

    /// A head that carries only `method`, for the response decoder (shared for the commonest methods).
    static func marker(for method: HTTPMethod) -> HTTPRequestHead {
        switch method {
        case .GET: getMarker
        case .HEAD: headMarker
        case .POST: postMarker
        default: HTTPRequestHead(version: .http1_1, method: method, uri: "")
        }
    }
}

@available(*, unavailable)
extension UpstreamRequestWriter: Sendable {}
