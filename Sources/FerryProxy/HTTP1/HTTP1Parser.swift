import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the bytes of a request cannot be read as HTTP/1.1. The connection they came on is answered (400,
/// 414 or 431) and closed; nothing after them is read.
struct HTTP1ParseError: Error, Equatable, CustomStringConvertible {
    enum Kind: Equatable {
        /// Not HTTP/1.1 as RFC 9112 writes it, or framing that two readers could take differently: 400.
        case malformed
        /// The request line alone is longer than `max_request_line`: 414.
        case requestLineTooLong
        /// The head (or the trailers) is larger than the limits or has too many fields: 431.
        case headTooLarge
        /// A chunk-size line (size and extensions) longer than `max_chunk_line`: 400.
        case chunkLineTooLong
        /// The connection ended inside a request.
        case endedEarly
    }

    var kind: Kind
    var reason: String

    var description: String { reason }

    static func malformed(_ reason: String) -> HTTP1ParseError { HTTP1ParseError(kind: .malformed, reason: reason) }
}

/// Ferry's reader of HTTP/1.1 messages (RFC 9112), incremental and strict: bytes in, message parts out,
/// pipelined messages in order — requests on a downstream connection, responses on an upstream one.
/// Framing is decided from the head exactly as §6 says, and every ambiguity that lets two readers of the
/// same bytes disagree (the root of request smuggling and response splitting) is refused:
/// Transfer-Encoding with Content-Length, a request Transfer-Encoding that does not end in chunked or
/// comes with HTTP/1.0, differing Content-Lengths, bare CR or LF, obs-fold, a blank before a field's
/// colon. Limits are enforced while scanning, before anything is kept. Bodies are slices of the received
/// buffers (no copy). After a CONNECT, an Upgrade request, a 101 or a 2xx to a CONNECT it stops: what follows belongs
/// to the tunnel.
///
/// Pure: `parse` consumes what it can from `buffer`, hands parts to `emit`, and leaves an incomplete
/// head or chunk-size line in `buffer` for the next call (with more bytes appended).
/// `HTTP1RequestParser` and `HTTP1ResponseParser` give it each direction's part types.
struct HTTP1Parser {
    enum Role {
        case request
        /// Responses, framed by the methods of the requests they answer (a HEAD response has no body).
        case response
    }

    enum Part {
        case requestHead(HTTP1RequestHeadView)
        case responseHead(HTTP1ResponseHeadView)
        case body(ByteBuffer)
        case end(HTTPHeaders?)
    }

    struct Limits {
        var maxRequestLineBytes: Int
        /// The whole head, request line and fields (and, separately, the trailers).
        var maxHeadBytes: Int
        var maxFieldCount: Int
        var maxChunkLineBytes: Int
    }

    enum State: Equatable {
        /// Waiting for a request head (between requests).
        case head
        case body(remaining: Int)
        case chunkLine
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data.
        case chunkDataEnd
        case trailers
        /// A response body without Content-Length or chunked framing: it ends when the connection does.
        case untilClose
        /// After a CONNECT or Upgrade request, or a 101: the rest is not HTTP.
        case stopped
        case failed
    }

    let role: Role
    let limits: Limits
    private(set) var state: State = .head
    /// The methods of requests sent and not yet answered (responses only). A reference, so a request
    /// written while a response is being read (the next one of a pipeline) can be added to it then. A
    /// request reader shares one empty queue it never touches: no allocation per accepted connection.
    let methods: MethodQueue
    /// The request being read is a CONNECT or an Upgrade: stop when it ends.
    private var stopsAfterMessage = false
    /// How far a head (or trailer block) has been searched for its end, so a head arriving in pieces is
    /// scanned once.
    private var scanned = 0

    init(role: Role, limits: Limits) {
        self.role = role
        self.limits = limits
        self.methods = role == .response ? MethodQueue() : Self.noMethods
    }

    /// The queue of every request reader: empty, never read or written (requests are not framed by methods).
    nonisolated(unsafe) private static let noMethods = MethodQueue()

    /// The methods of the requests a connection sent and that are not yet answered, oldest first.
    final class MethodQueue {
        private var methods: [HTTPMethod] = []
        private var next = 0

        var isEmpty: Bool { next == methods.count }
        var first: HTTPMethod { methods[next] }

        func append(_ method: HTTPMethod) {
            if next > 16, next * 2 > methods.count {
                methods.removeFirst(next)
                next = 0
            }
            methods.append(method)
        }

        func removeFirst() {
            next += 1
        }
    }

    /// Reads parts from `buffer` until it is empty or holds only the start of something longer.
    mutating func parse(_ buffer: inout ByteBuffer, emit: (Part) -> Void) throws {
        while buffer.readableBytes > 0 {
            switch state {
            case .head:
                guard let head = try readHead(&buffer) else { return }
                if let head { emit(head) }
                if bodiless {
                    bodiless = false
                    finishMessage(trailers: nil, emit: emit)
                }
            case .body(let remaining):
                let n = min(remaining, buffer.readableBytes)
                emit(.body(buffer.readSlice(length: n)!))
                if n == remaining {
                    finishMessage(trailers: nil, emit: emit)
                } else {
                    state = .body(remaining: remaining - n)
                }
            case .chunkLine:
                guard let size = try readChunkLine(&buffer) else { return }
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let n = min(remaining, buffer.readableBytes)
                emit(.body(buffer.readSlice(length: n)!))
                state = n == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - n)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else {
                    if buffer.readableBytes == 1, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) != 13 {
                        throw fail(.malformed("a chunk's data is not followed by CRLF"))
                    }
                    return
                }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw fail(.malformed("a chunk's data is not followed by CRLF")) }
                state = .chunkLine
            case .trailers:
                guard let fields = try readTrailers(&buffer) else { return }
                finishMessage(trailers: fields.isEmpty ? nil : HTTPHeaders(fields), emit: emit)
            case .untilClose:
                emit(.body(buffer.readSlice(length: buffer.readableBytes)!))
            case .stopped, .failed:
                return
            }
        }
    }

    /// The connection's input ended: the end of a body read until then (`.end`), an error if a message was
    /// under way, or nothing.
    func endOfInput(unread: Int) -> Result<Part, HTTP1ParseError>? {
        let what = role == .request ? "request" : "response"
        switch state {
        case .head: return unread > 0 ? .failure(HTTP1ParseError(kind: .endedEarly, reason: "the connection ended inside a \(what) head")) : nil
        case .untilClose: return .success(.end(nil))
        case .stopped, .failed: return nil
        default: return .failure(HTTP1ParseError(kind: .endedEarly, reason: "the connection ended inside a \(what) body"))
        }
    }

    /// The head just read has no body: its end follows at once.
    private var bodiless = false

    private mutating func finishMessage(trailers: HTTPHeaders?, emit: (Part) -> Void) {
        emit(.end(trailers))
        state = stopsAfterMessage ? .stopped : .head
        stopsAfterMessage = false
    }

    private mutating func fail(_ error: HTTP1ParseError) -> HTTP1ParseError {
        state = .failed
        return error
    }

    // MARK: head

    /// The offset just past the empty line that ends a block of field lines starting at `start`, or nil
    /// when it has not arrived. Lines end in CRLF; a LF without CR is refused here.
    private mutating func findEndOfBlock(_ bytes: UnsafeRawBufferPointer, from start: Int) throws -> Int? {
        // Resume at the start of the line the last search stopped in.
        var lineStart = scanned > 0 ? scanned : start
        let base = bytes.baseAddress!
        while lineStart < bytes.count {
            guard let lf = memchr(base + lineStart, 0x0A, bytes.count - lineStart) else {
                scanned = lineStart
                return nil
            }
            let at = base.distance(to: UnsafeRawPointer(lf))
            guard at > start, bytes[at - 1] == 0x0D else { throw fail(.malformed("a line ends in LF without CR")) }
            if at - 1 == lineStart { scanned = 0; return at + 1 }
            lineStart = at + 1
        }
        scanned = lineStart
        return nil
    }

    /// A head: nil until it has arrived whole; then the part to emit (none for a dropped 1xx response).
    private mutating func readHead(_ buffer: inout ByteBuffer) throws -> Part?? {
        // Empty lines before a request line are ignored (RFC 9112 §2.2).
        while role == .request, scanned == 0, buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
            buffer.moveReaderIndex(forwardBy: 2)
        }
        if role == .request, scanned == 0, buffer.readableBytes == 1, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0x0D { return nil }
        guard buffer.readableBytes > 0 else { return nil }
        if role == .response, methods.isEmpty {
            throw fail(.malformed("a response to no request"))
        }
        let result: (Part?, Int)? = try buffer.withUnsafeReadableBytes { bytes in
            let limit = min(bytes.count, limits.maxHeadBytes + 1)
            guard let end = try findEndOfBlock(UnsafeRawBufferPointer(rebasing: bytes[..<limit]), from: 0) else {
                if bytes.count > limits.maxHeadBytes {
                    // Which limit: the request line alone, or the head.
                    let lineEnd = memchr(bytes.baseAddress!, 0x0A, bytes.count).map { bytes.baseAddress!.distance(to: UnsafeRawPointer($0)) } ?? bytes.count
                    throw fail(role == .request && lineEnd > limits.maxRequestLineBytes
                        ? HTTP1ParseError(kind: .requestLineTooLong, reason: "request line longer than \(limits.maxRequestLineBytes) bytes")
                        : HTTP1ParseError(kind: .headTooLarge, reason: "\(role == .request ? "request" : "response") head larger than \(limits.maxHeadBytes) bytes"))
                }
                return nil
            }
            let head = UnsafeRawBufferPointer(rebasing: bytes[..<end])
            return (role == .request ? .requestHead(try parseRequestHead(head)) : try parseResponseHead(head), end)
        }
        guard let (parsed, length) = result else { return nil }
        var part = parsed
        // A head view keeps the received bytes (a slice: no copy).
        if case .responseHead(var view)? = part {
            view.bytes = buffer.getSlice(at: buffer.readerIndex, length: length)!
            part = .responseHead(view)
        } else if case .requestHead(var view)? = part {
            view.bytes = buffer.getSlice(at: buffer.readerIndex, length: length)!
            part = .requestHead(view)
        }
        buffer.moveReaderIndex(forwardBy: length)
        return .some(part)
    }

    /// A whole head, CRLF CRLF included.
    private mutating func parseRequestHead(_ bytes: UnsafeRawBufferPointer) throws -> HTTP1RequestHeadView {
        let base = bytes.baseAddress!
        let lineEnd = base.distance(to: UnsafeRawPointer(memchr(base, 0x0A, bytes.count)!)) - 1  // at the CR
        // request-line = method SP request-target SP HTTP-version
        var i = 0
        while i < lineEnd, HTTP1Grammar.isToken(bytes[i]) { i += 1 }
        guard i > 0, i < lineEnd, bytes[i] == 0x20 else { throw fail(.malformed("the request line is not METHOD TARGET HTTP/1.1")) }
        let method = HTTPMethod(rawValue: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<i]), as: UTF8.self))
        let targetStart = i + 1
        i = targetStart
        while i < lineEnd, HTTP1Grammar.isTarget(bytes[i]) { i += 1 }
        guard i > targetStart, i < lineEnd, bytes[i] == 0x20 else { throw fail(.malformed("the request line is not METHOD TARGET HTTP/1.1 (one space between the parts, no control characters)")) }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<i]), as: UTF8.self)
        let versionStart = i + 1
        guard lineEnd - versionStart == 8,
              bytes[versionStart] == 0x48, bytes[versionStart + 1] == 0x54, bytes[versionStart + 2] == 0x54, bytes[versionStart + 3] == 0x50,
              bytes[versionStart + 4] == 0x2F, bytes[versionStart + 6] == 0x2E,
              (0x30...0x39).contains(bytes[versionStart + 5]), (0x30...0x39).contains(bytes[versionStart + 7]) else {
            throw fail(.malformed("the request line does not end in HTTP/1.1 or HTTP/1.0"))
        }
        let major = Int(bytes[versionStart + 5] - 0x30), minor = Int(bytes[versionStart + 7] - 0x30)
        guard major == 1 else { throw fail(.malformed("HTTP/\(major).\(minor) is not spoken here (HTTP/1.1 and HTTP/1.0 are)")) }
        // A request line over max_request_line within the head limit is the head validator's to answer (414).

        var framing = Framing()
        var fields: [HTTP1Field] = []
        fields.reserveCapacity(12)
        try scanFields(bytes, from: lineEnd + 2, framing: &framing, trailers: false) { name, value in
            fields.append(HTTP1Field(name: name, value: value))
        }
        let keepAlive = minor >= 1 ? !framing.connectionClose : framing.connectionKeepAlive && !framing.connectionClose
        let head = HTTP1RequestHeadView(method: method, uri: target, version: HTTPVersion(major: major, minor: minor), fields: fields, isKeepAlive: keepAlive)

        // Message body length (RFC 9112 §6.3).
        if method == .CONNECT {
            // No body, whatever the fields say (RFC 9112 §6.3): the tunnel's bytes follow.
            bodiless = true
            stopsAfterMessage = true
            return head
        }
        if framing.connectionUpgrade && framing.hasUpgrade { stopsAfterMessage = true }
        if framing.hasTransferEncoding {
            guard minor >= 1 else { throw fail(.malformed("Transfer-Encoding in an HTTP/1.0 request")) }
            guard framing.contentLength == nil else { throw fail(.malformed("both Transfer-Encoding and Content-Length")) }
            guard framing.chunkedLast else { throw fail(.malformed("a Transfer-Encoding that does not end in chunked")) }
            state = .chunkLine
        } else if let length = framing.contentLength, length > 0 {
            state = .body(remaining: length)
        } else {
            bodiless = true
        }
        return head
    }

    /// A whole response head. Framed by the method it answers (RFC 9112 §6.3): HEAD, 1xx, 204 and 304 have
    /// no body; chunked if Transfer-Encoding ends in it, else until the connection closes; Content-Length;
    /// else until the connection closes. A 1xx other than 101 is dropped (Ferry answers 100-continue
    /// itself); a 101 ends the HTTP part of the connection.
    private mutating func parseResponseHead(_ bytes: UnsafeRawBufferPointer) throws -> Part? {
        let base = bytes.baseAddress!
        let lineEnd = base.distance(to: UnsafeRawPointer(memchr(base, 0x0A, bytes.count)!)) - 1  // at the CR
        // status-line = HTTP-version SP status-code SP [ reason-phrase ]
        guard lineEnd >= 12,
              bytes[0] == 0x48, bytes[1] == 0x54, bytes[2] == 0x54, bytes[3] == 0x50, bytes[4] == 0x2F, bytes[6] == 0x2E,
              bytes[5] == 0x31, (0x30...0x39).contains(bytes[7]), bytes[8] == 0x20,
              (0x31...0x39).contains(bytes[9]), (0x30...0x39).contains(bytes[10]), (0x30...0x39).contains(bytes[11]),
              lineEnd == 12 || bytes[12] == 0x20 else {
            throw fail(.malformed("the status line is not HTTP/1.1 CODE REASON"))
        }
        for i in 12..<lineEnd where !HTTP1Grammar.isFieldValue(bytes[i]) { throw fail(.malformed("a control character in the reason phrase")) }
        let minor = Int(bytes[7] - 0x30)
        let code = Int(bytes[9] - 0x30) * 100 + Int(bytes[10] - 0x30) * 10 + Int(bytes[11] - 0x30)
        var framing = Framing()
        var fields: [HTTP1Field] = []
        fields.reserveCapacity(12)
        try scanFields(bytes, from: lineEnd + 2, framing: &framing, trailers: false) { name, value in
            fields.append(HTTP1Field(name: name, value: value))
        }
        let method = methods.first
        if code < 200 && code != 101 {
            return nil  // informational: the final response to the same request follows
        }
        methods.removeFirst()
        let keepAlive = minor >= 1 ? !framing.connectionClose : framing.connectionKeepAlive && !framing.connectionClose
        // A 2xx to a CONNECT makes the connection a tunnel right after the head; its Content-Length or
        // Transfer-Encoding is ignored (RFC 9112 §6.3 rule 2).
        let opensTunnel = code == 101 || (method == .CONNECT && code / 100 == 2)
        let bodyFraming: HeaderRewriter.Framing =
            opensTunnel || method == .HEAD || code == 204 || code == 304 ? .none
            : framing.hasTransferEncoding ? (framing.chunkedLast ? .chunked : .untilClose)
            : framing.contentLength != nil ? .contentLength : .untilClose
        let head = HTTP1ResponseHeadView(fieldsStart: lineEnd + 2, version: HTTPVersion(major: 1, minor: minor), status: HTTPResponseStatus(statusCode: code),
                                         fields: fields, isKeepAlive: keepAlive, bodyFraming: bodyFraming)
        if opensTunnel {
            bodiless = true
            stopsAfterMessage = true
        } else if method == .HEAD || code == 204 || code == 304 {
            bodiless = true
        } else if framing.hasTransferEncoding {
            guard framing.contentLength == nil else { throw fail(.malformed("both Transfer-Encoding and Content-Length")) }
            state = framing.chunkedLast ? .chunkLine : .untilClose
        } else if let length = framing.contentLength {
            if length > 0 { state = .body(remaining: length) } else { bodiless = true }
        } else {
            state = .untilClose
        }
        return .responseHead(head)
    }

    /// What the fields say of the body's framing.
    struct Framing {
        var contentLength: Int?
        var hasTransferEncoding = false
        /// The last transfer coding listed is chunked (and it is listed once, last).
        var chunkedLast = false
        var connectionUpgrade = false
        var connectionClose = false
        var connectionKeepAlive = false
        var hasUpgrade = false
    }

    /// Field lines from `start` to the empty line, validated (RFC 9112 §5), as (name, value) pairs.
    private mutating func parseFields(_ bytes: UnsafeRawBufferPointer, from start: Int, framing: inout Framing, trailers: Bool) throws -> [(String, String)] {
        var fields: [(String, String)] = []
        fields.reserveCapacity(12)
        try scanFields(bytes, from: start, framing: &framing, trailers: trailers) { name, value in
            fields.append((String(decoding: UnsafeRawBufferPointer(rebasing: bytes[name]), as: UTF8.self),
                           String(decoding: UnsafeRawBufferPointer(rebasing: bytes[value]), as: UTF8.self)))
        }
        return fields
    }

    /// Field lines from `start` to the empty line, validated (RFC 9112 §5): each field's name and value
    /// (without the blanks around it) as ranges of `bytes`, to `visit`.
    @inline(__always)
    private mutating func scanFields(_ bytes: UnsafeRawBufferPointer, from start: Int, framing: inout Framing, trailers: Bool,
                                     _ visit: (Range<Int>, Range<Int>) -> Void) throws {
        let base = bytes.baseAddress!
        var lineStart = start
        var count = 0
        while true {
            let cr = base.distance(to: UnsafeRawPointer(memchr(base + lineStart, 0x0A, bytes.count - lineStart)!)) - 1
            if cr == lineStart { break }
            guard count < limits.maxFieldCount else {
                throw fail(HTTP1ParseError(kind: .headTooLarge, reason: "more than \(limits.maxFieldCount) header fields"))
            }
            count += 1
            let first = bytes[lineStart]
            if first == 0x20 || first == 0x09 { throw fail(.malformed("a field line folded onto the next (obs-fold)")) }
            var i = lineStart
            while i < cr, HTTP1Grammar.isToken(bytes[i]) { i += 1 }
            guard i > lineStart, i < cr, bytes[i] == 0x3A else {
                throw fail(.malformed(i < cr && (bytes[i] == 0x20 || bytes[i] == 0x09) ? "a blank between a field name and its colon" : "a field line that is not NAME: VALUE"))
            }
            var valueStart = i + 1
            while valueStart < cr, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
            var valueEnd = cr
            while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
            for j in valueStart..<valueEnd where !HTTP1Grammar.isFieldValue(bytes[j]) {
                throw fail(.malformed(bytes[j] == 0x0D ? "a CR inside a field value" : "a control character in a field value"))
            }
            if !trailers {
                try noteFraming(name: UnsafeRawBufferPointer(rebasing: bytes[lineStart..<i]), value: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd]), into: &framing)
            }
            visit(lineStart..<i, valueStart..<valueEnd)
            lineStart = cr + 2
        }
    }

    private mutating func noteFraming(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, into framing: inout Framing) throws {
        switch name.count {
        case 14 where HTTP1Grammar.equalsLowercased(name, "content-length"):
            // 1*DIGIT, or a list of identical values (RFC 9110 §8.6); anything else is refused.
            var k = 0
            repeat {
                var s = k
                while k < value.count, value[k] != 0x2C { k += 1 }
                var e = k
                while s < e, value[s] == 0x20 || value[s] == 0x09 { s += 1 }
                while e > s, value[e - 1] == 0x20 || value[e - 1] == 0x09 { e -= 1 }
                guard e > s, e - s <= 18 else { throw fail(.malformed("an invalid Content-Length")) }
                var length = 0
                for d in s..<e {
                    let c = value[d]
                    guard c >= 0x30 && c <= 0x39 else { throw fail(.malformed("an invalid Content-Length")) }
                    length = length * 10 + Int(c - 0x30)
                }
                if let existing = framing.contentLength, existing != length { throw fail(.malformed("Content-Length fields that differ")) }
                framing.contentLength = length
                k += 1  // past the comma
            } while k <= value.count
        case 17 where HTTP1Grammar.equalsLowercased(name, "transfer-encoding"):
            framing.hasTransferEncoding = true
            // The codings, comma-separated; chunked must be the last and appear once.
            var k = 0
            var tokenStart = -1
            var tokenEnd = -1
            var lastIsChunked = framing.chunkedLast
            var sawChunkedBefore = framing.chunkedLast
            func endToken() throws {
                guard tokenStart >= 0 else { return }
                let token = UnsafeRawBufferPointer(rebasing: value[tokenStart..<tokenEnd])
                let isChunked = HTTP1Grammar.equalsLowercased(token, "chunked")
                if isChunked && sawChunkedBefore { throw fail(.malformed("chunked applied twice")) }
                sawChunkedBefore = sawChunkedBefore || isChunked
                lastIsChunked = isChunked
                tokenStart = -1
            }
            while k < value.count {
                let c = value[k]
                if c == 0x2C { try endToken() } else if c != 0x20 && c != 0x09 {
                    if tokenStart < 0 { tokenStart = k }
                    tokenEnd = k + 1
                }
                k += 1
            }
            try endToken()
            framing.chunkedLast = lastIsChunked
        case 10 where HTTP1Grammar.equalsLowercased(name, "connection"):
            // Does the list name the upgrade token?
            var k = 0
            while k < value.count {
                while k < value.count, value[k] == 0x20 || value[k] == 0x09 || value[k] == 0x2C { k += 1 }
                let s = k
                while k < value.count, value[k] != 0x2C { k += 1 }
                var e = k
                while e > s, value[e - 1] == 0x20 || value[e - 1] == 0x09 { e -= 1 }
                let token = UnsafeRawBufferPointer(rebasing: value[s..<e])
                if HTTP1Grammar.equalsLowercased(token, "upgrade") { framing.connectionUpgrade = true }
                if HTTP1Grammar.equalsLowercased(token, "close") { framing.connectionClose = true }
                if HTTP1Grammar.equalsLowercased(token, "keep-alive") { framing.connectionKeepAlive = true }
            }
        case 7 where HTTP1Grammar.equalsLowercased(name, "upgrade"):
            framing.hasUpgrade = true
        default:
            break
        }
    }

    // MARK: chunked

    /// A chunk-size line (`1a2b;ext=v` CRLF): the size, or nil until the line has arrived.
    private mutating func readChunkLine(_ buffer: inout ByteBuffer) throws -> Int? {
        let result: (Int, Int)? = try buffer.withUnsafeReadableBytes { bytes in
            let window = min(bytes.count, limits.maxChunkLineBytes + 2)
            guard let lf = memchr(bytes.baseAddress!, 0x0A, window) else {
                if window > limits.maxChunkLineBytes + 1 {
                    throw fail(HTTP1ParseError(kind: .chunkLineTooLong, reason: "a chunk-size line (size and extensions) longer than \(limits.maxChunkLineBytes) bytes"))
                }
                return nil
            }
            let at = bytes.baseAddress!.distance(to: UnsafeRawPointer(lf))
            guard at > 0, bytes[at - 1] == 0x0D else { throw fail(.malformed("a chunk-size line that does not end in CRLF")) }
            let end = at - 1
            if end > limits.maxChunkLineBytes {
                throw fail(HTTP1ParseError(kind: .chunkLineTooLong, reason: "a chunk-size line (size and extensions) longer than \(limits.maxChunkLineBytes) bytes"))
            }
            var size = 0
            var i = 0
            while i < end, let digit = HTTP1Grammar.hexValue(bytes[i]) {
                guard i < 15 else { throw fail(.malformed("a chunk size too large")) }
                size = size * 16 + digit
                i += 1
            }
            guard i > 0 else { throw fail(.malformed("an invalid chunk size")) }
            // chunk-ext: BWS ";" ... — extensions are skipped, but must hold no control characters.
            var j = i
            while j < end, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
            if j < end {
                guard bytes[j] == 0x3B else { throw fail(.malformed("an invalid chunk size")) }
                for k in j..<end where !HTTP1Grammar.isFieldValue(bytes[k]) { throw fail(.malformed("a control character in a chunk extension")) }
            }
            return (size, at + 1)
        }
        guard let (size, length) = result else { return nil }
        buffer.moveReaderIndex(forwardBy: length)
        return size
    }

    /// The trailer section after the last chunk, up to its empty line: the fields, or nil until it has arrived.
    private mutating func readTrailers(_ buffer: inout ByteBuffer) throws -> [(String, String)]? {
        let result: ([(String, String)], Int)? = try buffer.withUnsafeReadableBytes { bytes in
            // As for a head: the search window is the limit and one byte, and the verdict "too large" is
            // given only once that window is full, so reads of any size reach the same verdict.
            let limit = min(bytes.count, limits.maxHeadBytes + 1)
            guard let end = try findEndOfBlock(UnsafeRawBufferPointer(rebasing: bytes[..<limit]), from: 0) else {
                if bytes.count > limits.maxHeadBytes { throw fail(HTTP1ParseError(kind: .headTooLarge, reason: "trailers larger than \(limits.maxHeadBytes) bytes")) }
                return nil
            }
            var framing = Framing()
            return (try parseFields(UnsafeRawBufferPointer(rebasing: bytes[..<end]), from: 0, framing: &framing, trailers: true), end)
        }
        guard let (fields, length) = result else { return nil }
        buffer.moveReaderIndex(forwardBy: length)
        return fields
    }
}

/// The request side of `HTTP1Parser`, in NIO's request part types (what `HTTPProxyHandler` reads).
struct HTTP1RequestParser {
    typealias Limits = HTTP1Parser.Limits
    private var parser: HTTP1Parser

    init(limits: Limits) {
        parser = HTTP1Parser(role: .request, limits: limits)
    }

    var state: HTTP1Parser.State { parser.state }

    mutating func parse(_ buffer: inout ByteBuffer, emit: (HTTP1RequestPart) -> Void) throws {
        try parser.parse(&buffer) { part in
            switch part {
            case .requestHead(let head): emit(.head(head))
            case .body(let bytes): emit(.body(bytes))
            case .end(let trailers): emit(.end(trailers))
            case .responseHead: break
            }
        }
    }

    /// The connection's input ended: an error if a request was under way.
    func endOfInput(unread: Int) -> HTTP1ParseError? {
        if case .failure(let error) = parser.endOfInput(unread: unread) { return error }
        return nil
    }
}

/// The response side of `HTTP1Parser`, in NIO's response part types (what `UpstreamConnection` reads).
struct HTTP1ResponseParser {
    typealias Limits = HTTP1Parser.Limits
    private var parser: HTTP1Parser

    init(limits: Limits) {
        parser = HTTP1Parser(role: .response, limits: limits)
    }

    var state: HTTP1Parser.State { parser.state }

    /// The methods of requests sent, which frame their responses (a HEAD response has no body).
    var methods: HTTP1Parser.MethodQueue { parser.methods }

    mutating func parse(_ buffer: inout ByteBuffer, emit: (HTTP1ResponsePart) -> Void) throws {
        try parser.parse(&buffer) { part in
            switch part {
            case .responseHead(let head): emit(.head(head))
            case .body(let bytes): emit(.body(bytes))
            case .end(let trailers): emit(.end(trailers))
            case .requestHead: break
            }
        }
    }

    /// The connection's input ended: the end of a body read until then, or an error if a response was under way.
    func endOfInput(unread: Int) -> Result<HTTP1ResponsePart, HTTP1ParseError>? {
        switch parser.endOfInput(unread: unread) {
        case .success(.end(let trailers)): .success(.end(trailers))
        case .failure(let error): .failure(error)
        default: nil
        }
    }
}
