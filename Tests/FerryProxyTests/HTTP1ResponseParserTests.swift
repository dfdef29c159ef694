@testable import FerryProxy
import NIOCore
import NIOHTTP1
import Testing

/// Ferry's reader of upstream responses: framed by the request method (RFC 9112 §6.3), whatever the reads' sizes.
struct HTTP1ResponseParserTests {
    static let limits = HTTP1Parser.Limits(maxRequestLineBytes: 1024, maxHeadBytes: 1024, maxFieldCount: 10, maxChunkLineBytes: 64)

    /// Reads `text` as the responses to `methods`, in reads of `piece` bytes, then the end of the input.
    static func read(_ text: String, methods: [HTTPMethod], piece: Int = 1 << 20, close: Bool = false) -> (parts: [String], error: HTTP1ParseError.Kind?, unread: String) {
        var parser = HTTP1ResponseParser(limits: limits)
        for m in methods { parser.methods.append(m) }
        var parts: [String] = []
        func record(_ part: HTTP1ResponsePart) {
            switch part {
            case .head(let view):
                let h = view.head
                parts.append((["head \(h.status.code) 1.\(h.version.minor)"] + h.headers.map { "\($0.name)=\($0.value)" }).joined(separator: " "))
            case .body(let b):
                if let last = parts.last, last.hasPrefix("body ") { parts[parts.count - 1] += String(buffer: b) } else { parts.append("body " + String(buffer: b)) }
            case .end(let t): parts.append((["end"] + (t?.map { "\($0.name)=\($0.value)" } ?? [])).joined(separator: " "))
            }
        }
        let (error, kept) = HTTP1ParserCheck.feed(&parser, Array(text.utf8), piece: piece, emit: record)
        if let error { return (parts, error.kind, "") }
        if close {
            switch parser.endOfInput(unread: kept?.readableBytes ?? 0) {
            case .success(let part)?: record(part)
            case .failure(let e)?: return (parts, e.kind, "")
            case nil: break
            }
        }
        return (parts, nil, kept.map { String(buffer: $0) } ?? "")
    }

    @Test(arguments: [1, 3, 1 << 20])
    func responsesAreFramedByTheirRequests(piece: Int) {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
            + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"  // to HEAD: no body
            + "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"  // 1xx dropped
            + "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nGrpc-Status: 0\r\n\r\n"
            + "HTTP/1.0 200 OK\r\n\r\nuntil the close"
        let r = Self.read(text, methods: [.GET, .HEAD, .POST, .GET, .GET, .GET], piece: piece, close: true)
        #expect(r.error == nil)
        #expect(r.parts == [
            "head 200 1.1 Content-Length=5", "body hello", "end",
            "head 200 1.1 Content-Length=5", "end",
            "head 204 1.1", "end",
            "head 304 1.1 Content-Length=9", "end",
            "head 200 1.1 Transfer-Encoding=chunked", "body abc", "end Grpc-Status=0",
            "head 200 1.0", "body until the close", "end",
        ], "\(piece)")
    }

    /// RFC 9112 §6.3 rule 2: a 2xx to a CONNECT opens the tunnel right after its head, whatever length it
    /// declares; any other answer is an ordinary response with its body.
    @Test(arguments: [1, 1 << 20])
    func aSuccessfulConnectOpensATunnelAndARefusalIsAResponse(piece: Int) {
        let opened = Self.read("HTTP/1.1 200 Connection established\r\nContent-Length: 99\r\n\r\nTLS bytes", methods: [.CONNECT], piece: piece)
        #expect(opened.parts == ["head 200 1.1 Content-Length=99", "end"] && opened.error == nil, "\(opened)")
        #expect(opened.unread == "TLS bytes")
        let refused = Self.read("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\ndeny", methods: [.CONNECT], piece: piece)
        #expect(refused.parts == ["head 407 1.1 Content-Length=4", "body deny", "end"] && refused.error == nil, "\(refused)")
    }

    @Test func aTransferCodingOtherThanChunkedLastIsReadUntilTheClose() {
        let r = Self.read("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzipped", methods: [.GET], close: true)
        #expect(r.parts == ["head 200 1.1 Transfer-Encoding=gzip", "body zipped", "end"] && r.error == nil)
    }

    @Test func a101StopsTheReading() {
        let r = Self.read("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\u{81}\u{2}hi", methods: [.GET])
        #expect(r.parts == ["head 101 1.1 Upgrade=websocket Connection=upgrade", "end"])
        #expect(r.unread == "\u{81}\u{2}hi")
    }

    @Test(arguments: [
        ("a response to no request", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
        ("TE with CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
        ("differing CLs", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
        ("no status code", "HTTP/1.1 OK\r\n\r\n"),
        ("a two-digit status", "HTTP/1.1 20 OK\r\n\r\n"),
        ("HTTP/2", "HTTP/2.0 200 OK\r\n\r\n"),
        ("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
        ("bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
        ("a bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ])
    func refused(name: String, text: String) {
        #expect(Self.read(text, methods: [.GET]).error == .malformed, "\(name)")
    }

    @Test func aStatusLineWithoutReasonIsRead() {
        #expect(Self.read("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", methods: [.GET]).parts == ["head 200 1.1 Content-Length=0", "end"])
    }

    @Test func aResponseCutShortIsAnError() {
        #expect(Self.read("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", methods: [.GET], close: true).error == .endedEarly)
        #expect(Self.read("HTTP/1.1 200 OK\r\nContent-Le", methods: [.GET], close: true).error == .endedEarly)
        #expect(Self.read("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", methods: [.GET], close: true).error == nil)
    }

    /// The head as received: field lines passed on byte for byte, values on request, keep-alive as NIO reads it.
    @Test func theHeadIsAViewOfTheReceivedBytes() throws {
        var parser = HTTP1ResponseParser(limits: Self.limits)
        parser.methods.append(.GET)
        parser.methods.append(.GET)
        parser.methods.append(.GET)
        var buffer = ByteBuffer(string: "HTTP/1.1 200 Fine\r\nServer:  origin \r\nX-Odd:\tspaced\r\nContent-Length: 0\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            + "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
        var views: [HTTP1ResponseHeadView] = []
        try parser.parse(&buffer) { if case .head(let v) = $0 { views.append(v) } }
        try #require(views.count == 3)
        #expect(String(buffer: views[0].fieldLines) == "Server:  origin \r\nX-Odd:\tspaced\r\nContent-Length: 0\r\n")
        #expect(views[0].value(of: "server") == "origin" && views[0].value(of: "x-odd") == "spaced" && views[0].value(of: "upgrade") == nil)
        #expect(views[0].head.headers.map { "\($0.name)=\($0.value)" } == ["Server=origin", "X-Odd=spaced", "Content-Length=0"])
        #expect(views.map(\.isKeepAlive) == [true, false, true])
        // Written on with Ferry's status line and the received field lines.
        let out = ResponseSerializer.head(statusLineOf: views[0], allocator: ByteBufferAllocator())
        #expect(String(buffer: out) == "HTTP/1.1 200 OK\r\nServer:  origin \r\nX-Odd:\tspaced\r\nContent-Length: 0\r\n\r\n")
    }

    /// The view carries the framing the parser reads the body with, which the proxy forwards by: a
    /// Transfer-Encoding that does not end in chunked is read until the close, whatever else it lists.
    @Test func theViewCarriesTheParsersFraming() throws {
        var parser = HTTP1ResponseParser(limits: Self.limits)
        for m: HTTPMethod in [.HEAD, .GET, .GET, .GET] { parser.methods.append(m) }
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
            + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nrest")
        var framings: [HeaderRewriter.Framing] = []
        try parser.parse(&buffer) { if case .head(let v) = $0 { framings.append(v.bodyFraming) } }
        #expect(framings == [.none, .contentLength, .chunked, .untilClose])
    }

    /// A fixed corpus of mutated responses (seeded): reads of any size give the same parts and verdict.
    @Test func aFixedMutationCorpusReadsTheSameWhateverTheReads() {
        let seeds = [
            "\u{0}HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n",
            "\u{1}HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
            "\u{2}HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nuntil the close",
            "\u{3}HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes",
            // To a CONNECT (the selector's low bits), whose 2xx opens a tunnel whatever length it declares.
            "\u{7}HTTP/1.1 200 Connection established\r\nContent-Length: 9\r\n\r\ntunnelled",
        ]
        let alphabet = Array("\r\n :;,0123456789abcdefHTTP/1.0 chunkedContent-LengthTransfer-Encoding\u{0}".utf8)
        var mutator = HTTP1Mutator(seed: 0x2545_F491_4F6C_DD1D)
        var refused = 0
        for round in 0..<1000 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            mutator.mutate(&bytes, alphabet: alphabet, edits: 4, keep: 1)
            let problem = HTTP1ParserCheck.responseViolation(in: bytes)
            #expect(problem == nil, "round \(round): \(String(decoding: bytes, as: UTF8.self).debugDescription): \(problem ?? "")")
            if HTTP1ParserCheck.responseOutcome(of: Array(bytes.dropFirst()), methods: ["GET"], piece: 1 << 20).contains("refused") { refused += 1 }
        }
        #expect(refused > 50 && refused < 950, "the corpus exercises both verdicts: \(refused) refused")
    }
}
