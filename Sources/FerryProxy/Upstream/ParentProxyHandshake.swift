import NIOCore

/// Opens a tunnel through a parent (corporate) proxy: first in the upstream pipeline, it sends
/// `CONNECT authority`, waits for the parent's `2xx`, then removes itself, so that what follows talks
/// to the destination as if connected directly. `done` fails with the parent's status line otherwise.
final class ParentProxyHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    let authority: String
    let done: EventLoopPromise<Void>
    private var received: ByteBuffer?
    private var finished = false
    /// A parent's answer head larger than this is refused.
    static let maxHead = 16 * 1024

    init(authority: String, done: EventLoopPromise<Void>) {
        self.authority = authority
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
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
        if received == nil { received = buffer } else { received!.writeBuffer(&buffer) }
        let view = received!.readableBytesView
        guard let end = view.firstRange(of: [13, 10, 13, 10]) else {
            if view.count > Self.maxHead { fail(context, "the parent proxy's answer head is too long") }
            return
        }
        let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
        let statusLine = head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (200...299).contains(status) else {
            fail(context, "the parent proxy answered \"\(statusLine)\"")
            return
        }
        finished = true
        received!.moveReaderIndex(forwardBy: end.upperBound - view.startIndex)
        let rest = received!
        received = nil
        done.succeed(())
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
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
