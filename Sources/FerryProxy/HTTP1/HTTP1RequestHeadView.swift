import NIOCore
import NIOHTTP1

/// A request head as received: its bytes (a slice of the read, validated by `HTTP1Parser`), the request
/// line's parts, and where each field's name and value lie. No `String` is made for a field until something
/// asks (`value(of:)`, `head`): the head validator classifies fields as bytes, and the upstream head is
/// written from the received field lines it keeps.
struct HTTP1RequestHeadView {
    struct Field {
        /// Offsets in `bytes`.
        var name: Range<Int>
        /// Without the blanks around it.
        var value: Range<Int>
    }

    /// The whole head, request line to the empty line.
    var bytes = ByteBuffer()
    let method: HTTPMethod
    let uri: String
    let version: HTTPVersion
    let fields: [Field]
    /// As NIO's `HTTPRequestHead.isKeepAlive`: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`.
    let isKeepAlive: Bool

    /// Each field's name and value bytes, in order.
    @inline(__always)
    func forEachField(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeReadableBytes { raw in
            for f in fields {
                body(UnsafeRawBufferPointer(rebasing: raw[f.name]), UnsafeRawBufferPointer(rebasing: raw[f.value]))
            }
        }
    }

    /// Where the first field line starts in `bytes` (after the request line).
    var fieldsStart: Int { fields.first.map { $0.name.lowerBound } ?? bytes.readableBytes - 2 }

    /// The field lines as received, each ending in CRLF, without the empty line that ends the head.
    var fieldLines: ByteBuffer {
        let start = fieldsStart
        return bytes.getSlice(at: bytes.readerIndex + start, length: bytes.readableBytes - start - 2)!
    }

    /// The first value of the field named `name` (any case), as a `String`.
    func value(of name: String) -> String? {
        var name = name
        return name.withUTF8 { wanted in
            bytes.withUnsafeReadableBytes { raw in
                for f in fields where HTTP1Grammar.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: raw[f.name]), wanted) {
                    return String(decoding: UnsafeRawBufferPointer(rebasing: raw[f.value]), as: UTF8.self)
                }
                return nil
            }
        }
    }

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
