import NIOCore
import NIOHTTP1

/// A response head as received: its bytes (a slice of the read, validated by `HTTP1Parser`), the status,
/// and where each field's name and value lie. No `String` is made for a field until something asks
/// (`head`, `value(of:)`); a head passed on unchanged is written from these bytes.
struct HTTP1ResponseHeadView {
    struct Field {
        /// Offsets in `bytes`.
        var name: Range<Int>
        /// Without the blanks around it.
        var value: Range<Int>
    }

    /// The whole head, status line to the empty line.
    var bytes = ByteBuffer()
    /// Where the first field line starts in `bytes`.
    let fieldsStart: Int
    let version: HTTPVersion
    let status: HTTPResponseStatus
    let fields: [Field]
    /// As NIO's `HTTPResponseHead.isKeepAlive`: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`.
    let isKeepAlive: Bool
    /// How the body is framed, as the parser reads it (by the request's method and the status, RFC 9112 §6.3).
    let bodyFraming: HeaderRewriter.Framing

    /// Each field's name and value bytes, in order.
    @inline(__always)
    func forEachField(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeReadableBytes { raw in
            for f in fields {
                body(UnsafeRawBufferPointer(rebasing: raw[f.name]), UnsafeRawBufferPointer(rebasing: raw[f.value]))
            }
        }
    }

    /// The field lines as received, each ending in CRLF, without the empty line that ends the head.
    var fieldLines: ByteBuffer {
        bytes.getSlice(at: bytes.readerIndex + fieldsStart, length: bytes.readableBytes - fieldsStart - 2)!
    }

    /// The first value of the field named `name` (lower case), as a `String`.
    func value(of name: StaticString) -> String? {
        bytes.withUnsafeReadableBytes { raw in
            for f in fields where HTTP1Grammar.equalsLowercased(UnsafeRawBufferPointer(rebasing: raw[f.name]), name) {
                return String(decoding: UnsafeRawBufferPointer(rebasing: raw[f.value]), as: UTF8.self)
            }
            return nil
        }
    }

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
