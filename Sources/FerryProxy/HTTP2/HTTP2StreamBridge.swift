import NIOCore
import NIOHTTP1

/// Puts one HTTP/2 stream in front of Ferry's HTTP/1.1 exchange: the stream's request (as NIOHTTP2's codec
/// delivers it, already checked against RFC 9113 §8: pseudo-headers, connection-specific fields, `TE`,
/// Content-Length against DATA) is written as an HTTP/1.1 request for the same request decoder and proxy
/// handler a TCP connection has, and the HTTP/1.1 response bytes the proxy handler writes are read back
/// into the stream's HEADERS, DATA and trailers. So routing, filters, retries, timeouts and the access log
/// are one code path for both versions.
///
/// The h2 → h1 rules applied here (RFC 9113 §8.2.3, §8.3.1): `:authority` becomes `Host` (NIOHTTP2's codec),
/// split `cookie` fields are joined with `"; "`, and a body without Content-Length is sent chunked.
/// CONNECT over HTTP/2 (RFC 9113 §8.5) is answered 501: Ferry tunnels over HTTP/1.1 only.
final class HTTP2StreamBridge: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTPServerResponsePart

    /// A request head not yet written: whether a body follows is known from the next part.
    private var pendingHead: HTTPRequestHead?
    private var chunked = false
    private var refused = false
    private var response = HTTP1ResponseParser(limits: HTTP1ResponseDecoder.upstreamLimits)
    private var responseEnded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.method == .CONNECT {
                refused = true
                refuseConnect(context: context)
                return
            }
            response.methods.append(head.method)
            pendingHead = head
        case .body(let body):
            guard !refused else { return }
            writePendingHead(context: context, bodyFollows: true)
            guard body.readableBytes > 0 else { return }
            if chunked {
                context.fireChannelRead(wrapInboundOut(WireFormat.chunkHeader(length: body.readableBytes, allocator: context.channel.allocator)))
                context.fireChannelRead(wrapInboundOut(body))
                context.fireChannelRead(wrapInboundOut(WireFormat.crlf))
            } else {
                context.fireChannelRead(wrapInboundOut(body))
            }
        case .end(let trailers):
            guard !refused else { return }
            writePendingHead(context: context, bodyFollows: false)
            if chunked {
                var last = context.channel.allocator.buffer(capacity: 64)
                last.writeStaticString("0\r\n")
                for (name, value) in trailers ?? [:] { WireFormat.field(name, value, into: &last) }
                last.writeStaticString("\r\n")
                context.fireChannelRead(wrapInboundOut(last))
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // HEADERS without END_STREAM and no DATA yet: the body comes later.
        writePendingHead(context: context, bodyFollows: true)
        context.fireChannelReadComplete()
    }

    /// Writes the held head as HTTP/1.1: chunked when a body follows without Content-Length.
    private func writePendingHead(context: ChannelHandlerContext, bodyFollows: Bool) {
        guard let head = pendingHead else { return }
        pendingHead = nil
        var buffer = context.channel.allocator.buffer(capacity: 256)
        buffer.writeString(head.method.rawValue)
        buffer.writeStaticString(" ")
        buffer.writeString(head.uri)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        var cookies: [String] = []
        var hasLength = false
        for (name, value) in head.headers {
            if name.utf8.count == 6, name.lowercased() == "cookie" { cookies.append(value); continue }
            if name.utf8.count == 14, name.lowercased() == "content-length" { hasLength = true }
            WireFormat.field(name, value, into: &buffer)
        }
        if !cookies.isEmpty { WireFormat.field("cookie", cookies.joined(separator: "; "), into: &buffer) }
        if bodyFollows && !hasLength {
            chunked = true
            buffer.writeStaticString("transfer-encoding: chunked\r\n")
        }
        buffer.writeStaticString("\r\n")
        context.fireChannelRead(wrapInboundOut(buffer))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        guard !responseEnded else {
            promise?.succeed()
            return
        }
        do {
            var wrote = false
            try response.parse(&bytes) { part in
                switch part {
                case .head(let view):
                    var head = view.head
                    head.version = .http2
                    context.write(wrapOutboundOut(.head(head)), promise: nil)
                case .body(let body):
                    context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                case .end(let trailers):
                    responseEnded = true
                    wrote = true
                    context.write(wrapOutboundOut(.end(trailers)), promise: promise)
                }
            }
            if !wrote { promise?.succeed() }
        } catch {
            // The proxy handler writes what it parsed or made itself; a failure here is a bug, not input.
            promise?.fail(error)
            context.close(promise: nil)
        }
    }

    private func refuseConnect(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        let body = "CONNECT over HTTP/2 is not supported; use HTTP/1.1 for tunnels\n"
        headers.add(name: "content-length", value: String(body.utf8.count))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .notImplemented, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
