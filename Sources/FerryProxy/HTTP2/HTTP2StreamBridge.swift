import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// Puts one HTTP/2 stream in front of Ferry's HTTP/1.1 exchange: the stream's request frames (already checked
/// by NIOHTTP2 against RFC 9113 §8: pseudo-headers, lower-case names, connection-specific fields, `TE`,
/// Content-Length against DATA) are written as an HTTP/1.1 request for the same request decoder and proxy
/// handler a TCP connection has, and the HTTP/1.1 response bytes the proxy handler writes are read back
/// into the stream's HEADERS, DATA and trailers. So routing, filters, retries, timeouts and the access log
/// are one code path for both versions.
///
/// The h2 → h1 rules applied here (RFC 9113 §8.2.3, §8.3.1): `:authority` becomes `Host` when the request has
/// none, split `cookie` fields are joined with `"; "`, and a body without Content-Length is sent chunked
/// (with the request's trailers). Back to h2, connection-specific fields are dropped and names lower-cased.
/// CONNECT over HTTP/2 (RFC 9113 §8.5) is answered 501: Ferry tunnels over HTTP/1.1 only.
final class HTTP2StreamBridge: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum RequestState { case head, body(chunked: Bool), done, refused }
    private var request = RequestState.head
    private var response = HTTP1ResponseParser(limits: HTTP1ResponseDecoder.upstreamLimits)
    private var responseEnded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            switch request {
            case .head:
                if headers.headers.first(name: ":method") == "CONNECT" {
                    request = .refused
                    refuseConnect(context: context)
                    return
                }
                writeHead(headers.headers, endStream: headers.endStream, context: context)
            case .body(let chunked):
                // Trailers: they travel only in a chunked body (a Content-Length body ends without them).
                request = .done
                HTTP2Framing.fireTrailers(headers.headers, chunked: chunked, context: context)
            case .done, .refused:
                return
            }
        case .data(let data):
            guard case .body(let chunked) = request else { return }
            if data.endStream { request = .done }
            HTTP2Framing.fireBody(data, chunked: chunked, context: context)
        default:
            return
        }
    }

    /// The request line and fields as HTTP/1.1; chunked when a body follows without Content-Length.
    private func writeHead(_ fields: HPACKHeaders, endStream: Bool, context: ChannelHandlerContext) {
        var method = "", path = "", authority: String?
        var cookies: [String] = []
        var hasHost = false, hasLength = false
        var lines = context.channel.allocator.buffer(capacity: 256)
        for (name, value, _) in fields {
            if name.hasPrefix(":") {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": authority = value
                default: break
                }
                continue
            }
            switch name {
            case "cookie": cookies.append(value); continue
            case "host": hasHost = true
            case "content-length": hasLength = true
            default: break
            }
            WireFormat.field(name, value, into: &lines)
        }
        var buffer = context.channel.allocator.buffer(capacity: lines.readableBytes + path.utf8.count + 64)
        buffer.writeString(method)
        buffer.writeStaticString(" ")
        buffer.writeString(path)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        if !hasHost, let authority { WireFormat.field("host", authority, into: &buffer) }
        buffer.writeBuffer(&lines)
        if !cookies.isEmpty { WireFormat.field("cookie", cookies.joined(separator: "; "), into: &buffer) }
        let chunked = !endStream && !hasLength
        if chunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
        buffer.writeStaticString("\r\n")
        request = endStream ? .done : .body(chunked: chunked)
        response.methods.append(HTTPMethod(rawValue: method))
        context.fireChannelRead(wrapInboundOut(buffer))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        guard !responseEnded else {
            promise?.succeed()
            return
        }
        var frames = HTTP2Framing.FrameWriter()
        do {
            try response.parse(&bytes) { part in
                switch part {
                case .head(let view): frames.head(Self.responseFields(view))
                case .body(let body): frames.body(body, context: context)
                case .end(let trailers):
                    responseEnded = true
                    frames.end(trailers, context: context, promise: promise)
                }
            }
            frames.finishWrite(context: context, promise: promise)
        } catch {
            // The proxy handler writes what it parsed or made itself; a failure here is a bug, not input.
            promise?.fail(error)
            context.close(promise: nil)
        }
    }

    /// `:status` and the response's fields for HTTP/2: names lower-cased and connection-specific fields
    /// dropped (RFC 9113 §8.2.2). The fields a `Connection` field lists are already gone: the proxy handler
    /// writes no hop-by-hop field of the upstream's, only its own `Connection`.
    static func responseFields(_ view: HTTP1ResponseHeadView) -> HPACKHeaders {
        var fields = HPACKHeaders()
        fields.reserveCapacity(view.fields.count + 1)
        fields.add(name: ":status", value: String(view.status.code))
        view.forEachField { name, value in
            if FieldName(bytes: name).isHopByHop { return }
            fields.add(name: lowercased(name), value: String(decoding: value, as: UTF8.self))
        }
        return fields
    }

    /// A field name as HTTP/2 needs it, lower-case; one `String` when it already is.
    static func lowercased(_ name: UnsafeRawBufferPointer) -> String {
        let text = String(decoding: name, as: UTF8.self)
        return name.contains(where: { $0 >= 0x41 && $0 <= 0x5a }) ? text.lowercased() : text
    }

    private func refuseConnect(context: ChannelHandlerContext) {
        let body = "CONNECT over HTTP/2 is not supported; use HTTP/1.1 for tunnels\n"
        let fields = HPACKHeaders([(":status", "501"), ("content-type", "text/plain; charset=utf-8"), ("content-length", String(body.utf8.count))])
        context.write(wrapOutboundOut(.headers(.init(headers: fields))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer(string: body)), endStream: true))), promise: nil)
    }
}
