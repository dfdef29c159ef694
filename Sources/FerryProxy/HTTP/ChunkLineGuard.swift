import FerryModel
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Limits the length of chunk-size lines (the size and its extensions) of chunked request bodies
/// (RFC 9112 §7.1.1: a recipient "ought to limit the total length of chunk extensions"). SwiftNIO's
/// decoder skips extensions without reporting them, so this handler sits in front of it and follows the
/// framing of the raw bytes: request heads (to learn the body's framing), Content-Length bodies, chunks
/// and trailers. It only ever refuses a chunk-size line longer than the limit; whatever it cannot follow
/// (CONNECT, an upgrade) it passes on unread, and framing errors are left to the decoder and the head
/// validator, which close the connection.
final class ChunkLineGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var scanner: ChunkLineScanner
    private var failed = false

    init(maxChunkLineBytes: Int) {
        scanner = ChunkLineScanner(maxChunkLineBytes: maxChunkLineBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if failed { return }
        let buffer = unwrapInboundIn(data)
        guard let offending = buffer.withUnsafeReadableBytes({ scanner.scan($0) }) else {
            context.fireChannelRead(data)
            return
        }
        // The bytes before the offending line are decoded first (they may finish earlier requests).
        failed = true
        if offending > 0, let before = buffer.getSlice(at: buffer.readerIndex, length: offending) {
            context.fireChannelRead(wrapInboundOut(before))
        }
        context.fireErrorCaught(ChunkLineTooLong(limit: scanner.maxChunkLineBytes))
    }
}

/// A chunk-size line (size and extensions) over the listener's `max_chunk_line`: `400` and close.
struct ChunkLineTooLong: Error, CustomStringConvertible {
    var limit: Int
    var description: String { "a chunk-size line (size and extensions) longer than \(limit) bytes" }
}

/// The framing of a stream of HTTP/1.1 requests, followed byte by byte only where it must be (heads and
/// chunk-size lines; bodies are skipped by length). Pure: `scan` returns the offset of the byte that made a
/// chunk-size line too long, or nil.
struct ChunkLineScanner {
    enum Mode: Equatable {
        case head, body, chunkLine, chunkData, chunkDataEnd, trailers
        /// A CONNECT or upgrade head: the rest of the connection is not HTTP framing.
        case passthrough
    }

    let maxChunkLineBytes: Int
    private(set) var mode: Mode = .head
    /// Bytes left of a Content-Length body or of a chunk's data.
    private var remaining = 0
    /// Characters on the current line (CR and LF not counted).
    private var lineLength = 0

    // What the head seen so far says.
    private var onRequestLine = true
    private var isConnect = false
    private var transferEncoding = false
    private var contentLength = 0
    private var connectionUpgrade = false
    private var upgrade = false
    /// The start of a head line split across reads, kept until its end arrives.
    private var partialLine: [UInt8] = []
    // The chunk-size line.
    private var chunkSize = 0
    private var inHexDigits = true

    /// A head line longer than this is the decoder's to refuse; the guard stops following the framing.
    static let maxHeadLineBytes = 256 * 1024

    init(maxChunkLineBytes: Int) {
        self.maxChunkLineBytes = maxChunkLineBytes
    }

    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        let count = bytes.count
        while index < count {
            switch mode {
            case .passthrough:
                return nil
            case .body, .chunkData:
                let skipped = min(remaining, count - index)
                remaining -= skipped
                index += skipped
                if remaining == 0 {
                    if mode == .body { startHead() } else { mode = .chunkDataEnd }
                }
            case .chunkDataEnd:
                // The CRLF after a chunk's data (the decoder checks it).
                if bytes[index] == UInt8(ascii: "\n") {
                    mode = .chunkLine
                    lineLength = 0
                    chunkSize = 0
                    inHexDigits = true
                }
                index += 1
            case .chunkLine:
                let b = bytes[index]
                if b == UInt8(ascii: "\n") {
                    if chunkSize == 0 {
                        mode = .trailers
                        lineLength = 0
                    } else {
                        mode = .chunkData
                        remaining = chunkSize
                    }
                } else if b != UInt8(ascii: "\r") {
                    lineLength += 1
                    if lineLength > maxChunkLineBytes { return index }
                    if inHexDigits, let digit = RequestPath.hexValue(b) {
                        // An overflowing size is the decoder's to refuse; here it only must not trap.
                        chunkSize = chunkSize > (Int.max >> 5) ? Int.max >> 1 : chunkSize << 4 | Int(digit)
                    } else {
                        inHexDigits = false
                    }
                }
                index += 1
            case .trailers:
                let b = bytes[index]
                if b == UInt8(ascii: "\n") {
                    if lineLength == 0 { startHead() } else { lineLength = 0 }
                } else if b != UInt8(ascii: "\r") {
                    lineLength += 1
                }
                index += 1
            case .head:
                // Each head line is classified whole: in place when it lies in this read (the common
                // case), else once its end has arrived.
                guard let end = Self.lineFeed(in: bytes, from: index) else {
                    partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index...]))
                    if partialLine.count > Self.maxHeadLineBytes { mode = .passthrough }
                    return nil
                }
                if partialLine.isEmpty {
                    headLine(UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
                } else {
                    partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
                    let line = partialLine
                    partialLine.removeAll(keepingCapacity: true)
                    line.withUnsafeBytes { headLine($0) }
                }
                index = end + 1
            }
        }
        return nil
    }

    private mutating func startHead() {
        mode = .head
        onRequestLine = true
        isConnect = false
        transferEncoding = false
        contentLength = 0
        connectionUpgrade = false
        upgrade = false
    }

    private static let connect = Array("CONNECT ".utf8)
    private static let upgradeToken = Array("upgrade".utf8)

    /// The index of the next LF at or after `start`, or nil.
    @inline(__always)
    private static func lineFeed(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let base = bytes.baseAddress, start < bytes.count,
              let found = memchr(base + start, 0x0A, bytes.count - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    /// One whole head line (without its LF): the request line, a field that decides framing, or the end.
    private mutating func headLine(_ line: UnsafeRawBufferPointer) {
        var length = line.count
        if length > 0, line[length - 1] == UInt8(ascii: "\r") { length -= 1 }
        if length == 0 {
            if !onRequestLine { endOfHead() }
            return
        }
        if onRequestLine {
            onRequestLine = false
            isConnect = length > Self.connect.count && Self.connect.indices.allSatisfy { line[$0] == Self.connect[$0] }
            return
        }
        guard let colon = line[..<length].firstIndex(of: UInt8(ascii: ":")) else { return }
        let first = line[0] | 0x20
        switch (colon, first) {
        case (17, UInt8(ascii: "t")) where Self.equalsLowered(line, "transfer-encoding"):
            transferEncoding = true
        case (14, UInt8(ascii: "c")) where Self.equalsLowered(line, "content-length"):
            var value = 0
            for i in (colon + 1)..<length {
                let b = line[i]
                if b == UInt8(ascii: ",") { break }
                if b >= 0x30 && b <= 0x39 { value = value > (Int.max / 20) ? Int.max / 2 : value * 10 + Int(b - 0x30) }
            }
            contentLength = value
        case (10, UInt8(ascii: "c")) where Self.equalsLowered(line, "connection"):
            var matched = 0
            for i in (colon + 1)..<length {
                let b = line[i] >= 65 && line[i] <= 90 ? line[i] | 0x20 : line[i]
                if b == Self.upgradeToken[matched] {
                    matched += 1
                    if matched == Self.upgradeToken.count { connectionUpgrade = true; break }
                } else {
                    matched = b == Self.upgradeToken[0] ? 1 : 0
                }
            }
        case (7, UInt8(ascii: "u")) where Self.equalsLowered(line, "upgrade"):
            upgrade = true
        default:
            break
        }
    }

    /// Whether `line` starts with `name` (lower case), ignoring ASCII case.
    @inline(__always)
    private static func equalsLowered(_ line: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        let expected = name.utf8Start
        for i in 0..<name.utf8CodeUnitCount {
            let b = line[i]
            if (b >= 65 && b <= 90 ? b | 0x20 : b) != expected[i] { return false }
        }
        return true
    }

    private mutating func endOfHead() {
        if isConnect || (connectionUpgrade && upgrade) {
            mode = .passthrough
        } else if transferEncoding {
            mode = .chunkLine
            lineLength = 0
            chunkSize = 0
            inHexDigits = true
        } else if contentLength > 0 {
            mode = .body
            remaining = contentLength
        } else {
            startHead()
        }
    }
}
