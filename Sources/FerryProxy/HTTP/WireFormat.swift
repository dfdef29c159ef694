import NIOCore
import NIOHTTP1

/// The pieces of HTTP/1.1 framing that requests and responses share, in either direction: a field line
/// and chunked transfer coding. `RequestSerializer` and `ResponseSerializer` build heads from them.
enum WireFormat {
    /// `name: value\r\n`.
    @inline(__always)
    static func field(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }

    /// The size line that precedes a chunk, `1a2b\r\n`, appended to `buffer`.
    static func writeChunkHeader(length: Int, into buffer: inout ByteBuffer) {
        buffer.writeString(String(length, radix: 16))
        buffer.writeStaticString("\r\n")
    }

    /// The size line that precedes a chunk, as a buffer of its own.
    static func chunkHeader(length: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 20)
        writeChunkHeader(length: length, into: &buffer)
        return buffer
    }

    /// The last chunk, with trailers when there are any, and the empty line.
    static func lastChunk(trailers: HTTPHeaders?, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 8)
        buffer.writeStaticString("0\r\n")
        for (name, value) in trailers ?? [:] { field(name, value, into: &buffer) }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// The line end that follows a chunk's data.
    static let crlf: ByteBuffer = ByteBuffer(staticString: "\r\n")
}
