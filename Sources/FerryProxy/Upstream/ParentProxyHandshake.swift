import NIOCore
import NIOHTTP1

/// Opens a tunnel through a parent (corporate) proxy: first in the upstream pipeline, it sends
/// `CONNECT authority`, reads the parent's answer with Ferry's own response parser (a 2xx to a CONNECT opens
/// the tunnel right after its head, RFC 9112 §6.3), then removes itself, so that what follows talks to the
/// destination as if connected directly; bytes the parent sent behind its head go on. `done` fails with
/// the parent's status otherwise.
final class ParentProxyHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    let authority: String
    let done: EventLoopPromise<Void>
    private var parser = HTTP1ResponseParser(limits: ParentProxyHandshake.limits)
    /// Bytes of the answer head that arrived in pieces.
    private var received: ByteBuffer?
    private var finished = false
    /// A parent's answer head larger than 16 KiB is refused.
    static let limits = HTTP1Parser.Limits(maxRequestLineBytes: 16 * 1024, maxHeadBytes: 16 * 1024, maxFieldCount: 100, maxChunkLineBytes: 4096)

    init(authority: String, done: EventLoopPromise<Void>) {
        self.authority = authority
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        parser.methods.append(.CONNECT)
        let request = "CONNECT \(authority) HTTP/1.1\r\nHost: \(authority)\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else {
            context.fireChannelRead(data)
            return
        }
        var buffer = unwrapInboundIn(data)
        if var kept = received {
            received = nil
            kept.writeBuffer(&buffer)
            buffer = kept
        }
        var status: HTTPResponseStatus?
        do {
            try parser.parse(&buffer) { part in
                if case .head(let head) = part, status == nil { status = head.status }
            }
        } catch {
            fail(context, "the parent proxy's answer is not HTTP/1.1 (\(error))")
            return
        }
        guard let status else {
            received = buffer
            return
        }
        guard parser.state == .stopped else {
            fail(context, "the parent proxy answered \(status.code) \(status.reasonPhrase)")
            return
        }
        finished = true
        done.succeed(())
        if buffer.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffer)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Also when the connection to the parent never came up: the promise must not be left pending.
        if !finished {
            finished = true
            done.fail(Refused(description: "the connection to the parent proxy ended before it answered CONNECT"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished { fail(context, "the parent proxy closed the connection before answering CONNECT") }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !finished { fail(context, "\(error)") }
        context.fireErrorCaught(error)
    }

    private func fail(_ context: ChannelHandlerContext, _ message: String) {
        guard !finished else { return }
        finished = true
        done.fail(Refused(description: message))
        context.close(promise: nil)
    }
}
