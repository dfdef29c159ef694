import NIOCore
import NIOHTTP1

/// Writes HTTP/1.1 request heads as bytes for `UpstreamRequestWriter`: the request line, the fields, the
/// empty line. Framing fields are Ferry's decision (`HeaderRewriter`); this only renders them.
enum RequestSerializer {
    /// A whole head, for a head built as `HTTPRequestHead` (the reverse-proxy path).
    static func head(_ head: HTTPRequestHead, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256 + head.uri.utf8.count)
        requestLine(method: head.method, target: head.uri, into: &buffer)
        for (name, value) in head.headers { WireFormat.field(name, value, into: &buffer) }
        endOfHead(into: &buffer)
        return buffer
    }

    /// `GET /path HTTP/1.1\r\n`.
    static func requestLine(method: HTTPMethod, target: String, into buffer: inout ByteBuffer) {
        buffer.writeString(method.rawValue)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(target)
        buffer.writeStaticString(" HTTP/1.1\r\n")
    }

    static func endOfHead(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("\r\n")
    }
}
