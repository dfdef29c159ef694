import NIOCore
import NIOHTTP1

/// A response head as received (`HTTP1HeadView`): the status, and where each field lies in the bytes. A head
/// passed on unchanged is written from these bytes.
struct HTTP1ResponseHeadView: HTTP1HeadView {
    var bytes = ByteBuffer()
    let fieldsStart: Int
    let version: HTTPVersion
    let status: HTTPResponseStatus
    let fields: [HTTP1Field]
    /// As NIO's `HTTPResponseHead.isKeepAlive`: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`.
    let isKeepAlive: Bool
    /// How the body is framed, as the parser reads it (by the request's method and the status, RFC 9112 §6.3).
    let bodyFraming: HeaderRewriter.Framing

    /// The head as NIO's type, with a `String` per name and value: for the heads Ferry changes.
    var head: HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count)
        forEachField { name, value in headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self)) }
        return HTTPResponseHead(version: version, status: status, headers: headers)
    }
}

/// What the response decoder hands the upstream connection: NIO's response parts, but the head as a view.
enum HTTP1ResponsePart {
    case head(HTTP1ResponseHeadView)
    case body(ByteBuffer)
    case end(HTTPHeaders?)
}
