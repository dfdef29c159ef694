import NIOCore
import NIOHTTP1

/// A request head as received (`HTTP1HeadView`): the request line's parts, and where each field lies in the
/// bytes. The head validator classifies fields as bytes, and the upstream head is written from the received
/// field lines it keeps.
struct HTTP1RequestHeadView: HTTP1HeadView {
    var bytes = ByteBuffer()
    let method: HTTPMethod
    let uri: String
    let version: HTTPVersion
    let fields: [HTTP1Field]
    /// As NIO's `HTTPRequestHead.isKeepAlive`: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`.
    let isKeepAlive: Bool

    /// Fields start at the first field's name (right after the request line), or at the empty line.
    var fieldsStart: Int { fields.first.map { $0.name.lowerBound } ?? bytes.readableBytes - 2 }

    /// The head as NIO's type, with a `String` per name and value: for the paths that read a request as a
    /// whole (the forward proxy, filters, client access, routes that change fields).
    var head: HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count)
        forEachField { name, value in headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self)) }
        return HTTPRequestHead(version: version, method: method, uri: uri, headers: headers)
    }
}

/// What the request decoder hands the proxy handler: NIO's request parts, but the head as a view.
enum HTTP1RequestPart {
    case head(HTTP1RequestHeadView)
    case body(ByteBuffer)
    case end(HTTPHeaders?)
}
