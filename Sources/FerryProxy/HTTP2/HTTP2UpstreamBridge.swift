import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// One request to an HTTP/2 upstream, as one stream: the HTTP/1.1 request bytes the exchange writes are read
/// (Ferry's request parser) into HEADERS, DATA and trailers, and the stream's response frames are written back
/// as an HTTP/1.1 response for the upstream connection's response decoder — the mirror of
/// `HTTP2StreamBridge`, so the exchange code is the same for HTTP/1.1 and HTTP/2 upstreams.
///
/// h1 → h2 (RFC 9113 §8.2.2, §8.3.1): `Host` becomes `:authority`, connection-specific fields are dropped,
/// names lower-cased, `te: trailers` sent (gRPC servers look for it). h2 → h1: the response is chunked unless
/// it has a Content-Length (so trailers such as `grpc-status` travel), a HEADERS frame that ends the stream
/// (gRPC's Trailers-Only) has `content-length: 0`, and every response says `connection: close`: a stream
/// carries one exchange and is never pooled.
final class HTTP2UpstreamBridge: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let scheme: String
    private var request = HTTP1RequestParser(limits: .init(maxRequestLineBytes: 1 << 20, maxHeadBytes: 1 << 20, maxFieldCount: 20_000, maxChunkLineBytes: 4096))
    private enum ResponseState { case head, body(chunked: Bool), done }
    private var response = ResponseState.head

    init(tls: Bool) {
        scheme = tls ? "https" : "http"
    }

    // MARK: request: HTTP/1.1 bytes → frames

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        var frames = HTTP2Framing.FrameWriter()
        do {
            try request.parse(&bytes) { part in
                switch part {
                case .head(let view): frames.head(requestFields(view))
                case .body(let body): frames.body(body, context: context)
                case .end(let trailers): frames.end(trailers, context: context, promise: promise)
                }
            }
            frames.finishWrite(context: context, promise: promise)
        } catch {
            promise?.fail(error)
            context.close(promise: nil)
        }
    }

    private func requestFields(_ view: HTTP1RequestHeadView) -> HPACKHeaders {
        var fields = HPACKHeaders()
        fields.reserveCapacity(view.fields.count + 5)
        fields.add(name: ":method", value: view.method.rawValue)
        fields.add(name: ":scheme", value: scheme)
        var authority = ""
        var regular: [(String, String)] = []
        view.forEachField { name, value in
            if HTTP1Grammar.equalsIgnoringCase(name, "host") {
                authority = String(decoding: value, as: UTF8.self)
                return
            }
            let kind = FieldName(bytes: name)
            if kind.isHopByHop || HTTP1Grammar.equalsIgnoringCase(name, "te") { return }
            regular.append((HTTP2StreamBridge.lowercased(name), String(decoding: value, as: UTF8.self)))
        }
        fields.add(name: ":authority", value: authority)
        fields.add(name: ":path", value: view.uri)
        fields.add(name: "te", value: "trailers")
        for (name, value) in regular { fields.add(name: name, value: value) }
        return fields
    }

    // MARK: response: frames → HTTP/1.1 bytes

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            switch response {
            case .head:
                guard let status = headers.headers.first(name: ":status").flatMap(Int.init), status >= 200 || status < 100 else { return }  // 1xx
                writeHead(status: status, headers.headers, endStream: headers.endStream, context: context)
            case .body(let chunked):
                response = .done
                HTTP2Framing.fireTrailers(headers.headers, chunked: chunked, context: context)
            case .done:
                return
            }
        case .data(let data):
            guard case .body(let chunked) = response else { return }
            if data.endStream { response = .done }
            HTTP2Framing.fireBody(data, chunked: chunked, context: context)
        default:
            return
        }
    }

    private func writeHead(status: Int, _ fields: HPACKHeaders, endStream: Bool, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 256)
        let code = HTTPResponseStatus(statusCode: status)
        buffer.writeString("HTTP/1.1 \(status) \(code.reasonPhrase.isEmpty ? "Status" : code.reasonPhrase)\r\n")
        var hasLength = false
        for (name, value, _) in fields where !name.hasPrefix(":") {
            if name == "content-length" { hasLength = true }
            WireFormat.field(name, value, into: &buffer)
        }
        let chunked = !endStream && !hasLength
        if endStream && !hasLength { buffer.writeStaticString("content-length: 0\r\n") }
        if chunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
        buffer.writeStaticString("connection: close\r\n\r\n")
        response = endStream ? .done : .body(chunked: chunked)
        context.fireChannelRead(wrapInboundOut(buffer))
    }
}
