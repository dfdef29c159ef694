import NIOCore
import NIOHTTP1

/// Writes HTTP/1.1 response heads as bytes, so the downstream pipeline needs no encoder handler. Framing
/// is decided by Ferry (`HeaderRewriter`); this only renders the head as given (chunk framing:
/// `WireFormat`).
enum ResponseSerializer {
    /// `HTTP/1.1 200 OK\r\n`, the fields, and the empty line.
    static func head(_ head: HTTPResponseHead, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256)
        write(head, into: &buffer)
        return buffer
    }

    /// A received head passed on unchanged: the status line as Ferry writes it, then the field lines as
    /// received (one copy of their bytes, no `String`s), then the empty line.
    static func head(statusLineOf view: HTTP1ResponseHeadView, allocator: ByteBufferAllocator) -> ByteBuffer {
        var lines = view.fieldLines
        var buffer = allocator.buffer(capacity: 32 + lines.readableBytes + 2)
        statusLine(version: view.version, status: view.status, into: &buffer)
        buffer.writeBuffer(&lines)
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// `HTTP/1.1 200 OK\r\n`.
    @inline(__always)
    static func statusLine(version: HTTPVersion, status: HTTPResponseStatus, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        let code = status.code
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code / 100))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code / 10 % 10))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code % 10))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
    }

    /// Appends the head to `buffer`.
    @inline(__always)
    static func write(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        statusLine(version: head.version, status: head.status, into: &buffer)
        for (name, value) in head.headers {
            WireFormat.field(name, value, into: &buffer)
        }
        buffer.writeStaticString("\r\n")
    }
}
