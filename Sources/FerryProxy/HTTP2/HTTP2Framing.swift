import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// What both HTTP/2 bridges do to move a message between HTTP/1.1 bytes and a stream's frames.
enum HTTP2Framing {
    /// Writes one message's parts as frames: a head is held until the next part of the same write, so a
    /// message without a body ends the stream on its HEADERS; trailers travel as a final HEADERS frame.
    struct FrameWriter {
        private var heldHead: HPACKHeaders?
        /// Whether the message's end was written (its promise then completes with that frame).
        private(set) var ended = false

        mutating func head(_ fields: HPACKHeaders) {
            heldHead = fields
        }

        mutating func body(_ body: ByteBuffer, context: ChannelHandlerContext) {
            writeHeldHead(context: context, endStream: false, promise: nil)
            context.write(NIOAny(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(body)))), promise: nil)
        }

        mutating func end(_ trailers: HTTPHeaders?, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
            ended = true
            if heldHead != nil, trailers == nil {
                writeHeldHead(context: context, endStream: true, promise: promise)
                return
            }
            writeHeldHead(context: context, endStream: false, promise: nil)
            if let trailers {
                let fields = HPACKHeaders(trailers.map { ($0.name.lowercased(), $0.value) })
                context.write(NIOAny(HTTP2Frame.FramePayload.headers(.init(headers: fields, endStream: true))), promise: promise)
            } else {
                context.write(NIOAny(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: promise)
            }
        }

        /// After a write's parts: a head still held goes out (its body comes later), and the write's promise
        /// completes unless the end carried it.
        mutating func finishWrite(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
            writeHeldHead(context: context, endStream: false, promise: nil)
            if !ended { promise?.succeed() }
        }

        private mutating func writeHeldHead(context: ChannelHandlerContext, endStream: Bool, promise: EventLoopPromise<Void>?) {
            guard let head = heldHead else { return }
            heldHead = nil
            context.write(NIOAny(HTTP2Frame.FramePayload.headers(.init(headers: head, endStream: endStream))), promise: promise)
        }
    }

    /// A DATA frame's bytes as HTTP/1.1 body bytes (chunk-framed when `chunked`), then the last chunk when it
    /// ends the stream.
    static func fireBody(_ data: HTTP2Frame.FramePayload.Data, chunked: Bool, context: ChannelHandlerContext) {
        if case .byteBuffer(let body) = data.data, body.readableBytes > 0 {
            if chunked {
                context.fireChannelRead(NIOAny(WireFormat.chunkHeader(length: body.readableBytes, allocator: context.channel.allocator)))
                context.fireChannelRead(NIOAny(body))
                context.fireChannelRead(NIOAny(WireFormat.crlf))
            } else {
                context.fireChannelRead(NIOAny(body))
            }
        }
        if data.endStream, chunked { context.fireChannelRead(NIOAny(ByteBuffer(staticString: "0\r\n\r\n"))) }
    }

    /// Trailers (a HEADERS frame after the body) as HTTP/1.1's last chunk; a body that is not chunked cannot
    /// carry them and ends without.
    static func fireTrailers(_ fields: HPACKHeaders, chunked: Bool, context: ChannelHandlerContext) {
        guard chunked else { return }
        var last = context.channel.allocator.buffer(capacity: 64)
        last.writeStaticString("0\r\n")
        for (name, value, _) in fields where !name.hasPrefix(":") { WireFormat.field(name, value, into: &last) }
        last.writeStaticString("\r\n")
        context.fireChannelRead(NIOAny(last))
    }
}
