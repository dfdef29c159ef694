@testable import FerryProxy
import FerryModel
import NIOCore
import NIOHTTP1
import Testing

/// Ferry's HTTP/1.1 request reader: what it reads (whatever the reads' sizes), what it refuses and why.
struct HTTP1RequestParserTests {
    static let limits = HTTP1RequestParser.Limits(maxRequestLineBytes: 1024, maxHeadBytes: 2048, maxFieldCount: 10, maxChunkLineBytes: 64)

    struct Outcome: Equatable {
        /// `head METHOD TARGET 1.1 name=value...`, `body TEXT` (consecutive body parts joined), `end [trailers]`.
        var parts: [String] = []
        var error: HTTP1ParseError.Kind?
        /// Bytes left unread (after a CONNECT or Upgrade, or an incomplete head).
        var unread = ""
    }

    /// Feeds `text` in reads of `piece` bytes, as the decoder does (unread bytes kept and extended).
    static func read(_ text: String, piece: Int = 1 << 20, limits: HTTP1RequestParser.Limits = limits) -> Outcome {
        var parser = HTTP1RequestParser(limits: limits)
        var outcome = Outcome()
        func record(_ part: HTTP1RequestPart) {
            switch part {
            case .head(let h):
                outcome.parts.append((["head \(h.method.rawValue) \(h.uri) \(h.version.major).\(h.version.minor)"] + h.head.headers.map { "\($0.name)=\($0.value)" }).joined(separator: " "))
            case .body(let b):
                if let last = outcome.parts.last, last.hasPrefix("body ") {
                    outcome.parts[outcome.parts.count - 1] += String(buffer: b)
                } else {
                    outcome.parts.append("body " + String(buffer: b))
                }
            case .end(let t):
                outcome.parts.append((["end"] + (t?.map { "\($0.name)=\($0.value)" } ?? [])).joined(separator: " "))
            }
        }
        let (error, kept) = HTTP1ParserCheck.feed(&parser, Array(text.utf8), piece: piece, emit: record)
        outcome.error = error?.kind
        if error == nil { outcome.unread = kept.map { String(buffer: $0) } ?? "" }
        return outcome
    }

    static let pieces = [1, 2, 3, 7, 1 << 20]

    @Test(arguments: pieces)
    func requestsAreReadTheSameWhateverTheReadSizes(piece: Int) {
        let text = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            + "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n5;name=value\r\nhello\r\n6 ; q\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"
            + "\r\nGET /d HTTP/1.0\r\n\r\n"
        let outcome = Self.read(text, piece: piece)
        #expect(outcome.error == nil)
        #expect(outcome.parts == [
            "head GET /a 1.1 Host=a", "end",
            "head POST /b 1.1 Host=a Content-Length=5", "body hello", "end",
            "head POST /c 1.1 Host=a Transfer-Encoding=gzip, Chunked", "body hello world", "end X-Sum=1",
            "head GET /d 1.0", "end",
        ], "\(piece)")
    }

    @Test func fieldValuesLoseTheirSurroundingBlanksOnly() {
        let outcome = Self.read("GET / HTTP/1.1\r\nHost:a\r\nX-A: \t one  two \t\r\nX-Empty:\r\nX-Utf8: caf\u{e9}\r\n\r\n")
        #expect(outcome.parts.first == "head GET / 1.1 Host=a X-A=one  two X-Empty= X-Utf8=caf\u{e9}")
    }

    @Test func identicalContentLengthsAreOne() {
        #expect(Self.read("POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nok").parts.dropFirst() == ["body ok", "end"])
        #expect(Self.read("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok").parts.dropFirst() == ["body ok", "end"])
        #expect(Self.read("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\n\r\n").parts.count == 4)
    }

    /// Framing two readers could take differently, and bytes that are not HTTP/1.1 (RFC 9112 §2.2, §3, §5,
    /// §6.1, §6.3, §7.1): refused.
    @Test(arguments: [
        ("CL with TE", "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("TE with CL", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
        ("differing CLs", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
        ("differing CL list", "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n"),
        ("CL with a sign", "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"),
        ("CL with a letter", "POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n"),
        ("CL with an empty element", "POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n"),
        ("CL empty", "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n"),
        ("CL too long", "POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n"),
        ("TE not ending in chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        ("TE not chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
        ("TE chunked twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("TE empty", "POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n"),
        ("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("bare CR in a value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"),
        ("bare LF ending a field", "GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n"),
        ("bare LF ending the request line", "GET / HTTP/1.1\nX: a\r\n\r\n"),
        ("NUL in a value", "GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n"),
        ("obs-fold", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"),
        ("blank before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
        ("no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n"),
        ("empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n"),
        ("separator in a name", "GET / HTTP/1.1\r\nX(y): a\r\n\r\n"),
        ("two spaces in the request line", "GET  / HTTP/1.1\r\n\r\n"),
        ("a space in the target", "GET /a b HTTP/1.1\r\n\r\n"),
        ("a tab in the target", "GET /a\tb HTTP/1.1\r\n\r\n"),
        ("no version", "GET /\r\n\r\n"),
        ("HTTP/2.0", "GET / HTTP/2.0\r\n\r\n"),
        ("lower-case version", "GET / http/1.1\r\n\r\n"),
        ("garbage", "HELLO\r\n\r\n"),
        ("bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        ("chunk size with a sign", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n"),
        ("chunk size overflowing", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n"),
        ("chunk data not followed by CRLF", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
        ("chunk line ending in LF", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n"),
        ("control character in a chunk extension", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\u{1}\r\nhello\r\n"),
        ("bare LF in trailers", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n"),
    ])
    func refused(name: String, text: String) {
        for piece in [1, 1 << 20] {
            let outcome = Self.read(text + "GET /next HTTP/1.1\r\n\r\n", piece: piece)
            #expect(outcome.error == .malformed, "\(name) in reads of \(piece): \(outcome)")
            #expect(!outcome.parts.contains { $0.contains("/next") }, "\(name)")
        }
    }

    @Test(arguments: pieces)
    func aLongChunkLineIsRefusedWhereverTheReadsSplit(piece: Int) {
        let head = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        let long = String(repeating: "x", count: 100)
        #expect(Self.read(head + "5;\(long)\r\nhello\r\n0\r\n\r\n", piece: piece).error == .chunkLineTooLong)
        #expect(Self.read(head + "5\r\nhello\r\n0;\(long)\r\n\r\n", piece: piece).error == .chunkLineTooLong)
        // A line of exactly the limit is read.
        let exact = "5;" + String(repeating: "x", count: 62)
        #expect(Self.read(head + "\(exact)\r\nhello\r\n0\r\n\r\n", piece: piece).error == nil)
        // The requests before it are read first.
        let outcome = Self.read("GET / HTTP/1.1\r\n\r\n" + head + "5;\(long)\r\n", piece: piece)
        #expect(outcome.parts == ["head GET / 1.1", "end", "head POST /a 1.1 Transfer-Encoding=chunked"] && outcome.error == .chunkLineTooLong)
    }

    @Test func bodiesAndTrailersAreNotReadAsChunkLines() {
        let body = String(repeating: "y", count: 300)
        let text = "POST /a HTTP/1.1\r\nContent-Length: 300\r\n\r\n\(body)"
            + "POST /b HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n12c\r\n\(body)\r\n0\r\nX-Trailer: \(String(repeating: "t", count: 100))\r\n\r\n"
        let outcome = Self.read(text, piece: 5)
        #expect(outcome.error == nil && outcome.parts.count == 6)
    }

    @Test(arguments: pieces)
    func aTunnelStopsTheReading(piece: Int) {
        let connect = Self.read("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\n\u{16}\u{3}\u{1}raw bytes\r\n\r\n", piece: piece)
        #expect(connect.parts == ["head CONNECT a:443 1.1 Host=a:443 Content-Length=5", "end"])
        #expect(connect.unread == "\u{16}\u{3}\u{1}raw bytes\r\n\r\n" && connect.error == nil)
        // An Upgrade request's own body is read, then nothing.
        let upgrade = Self.read("POST /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\n\r\n", piece: piece)
        #expect(upgrade.parts.dropFirst() == ["body hi", "end"])
        #expect(upgrade.unread == "GET / HTTP/1.1\r\n\r\n")
        // Upgrade without Connection: upgrade is an ordinary request.
        #expect(Self.read("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", piece: piece).parts.count == 4)
    }

    @Test func limitsAreEnforcedWhileScanning() {
        let fields = (0..<11).map { "X-\($0): v\r\n" }.joined()
        #expect(Self.read("GET / HTTP/1.1\r\n\(fields)\r\n").error == .headTooLarge)
        #expect(Self.read("GET / HTTP/1.1\r\n\((0..<10).map { "X-\($0): v\r\n" }.joined())\r\n").error == nil)
        // A head that never ends is refused once it passes the limit, not buffered.
        let endless = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 3000)
        #expect(Self.read(endless, piece: 100).error == .headTooLarge)
        #expect(Self.read("GET /" + String(repeating: "a", count: 3000), piece: 100).error == .requestLineTooLong)
        let trailers = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + (0..<11).map { "T-\($0): v\r\n" }.joined() + "\r\n"
        #expect(Self.read(trailers).error == .headTooLarge)
    }

    @Test func theEndOfInputInsideARequestIsReported() {
        var parser = HTTP1RequestParser(limits: Self.limits)
        var buffer = ByteBuffer(string: "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        try? parser.parse(&buffer) { _ in }
        #expect(parser.endOfInput(unread: 0)?.kind == .endedEarly)
        var idle = HTTP1RequestParser(limits: Self.limits)
        #expect(idle.endOfInput(unread: 0) == nil)
        #expect(idle.endOfInput(unread: 3)?.kind == .endedEarly)
        var done = ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")
        try? idle.parse(&done) { _ in }
        #expect(idle.endOfInput(unread: 0) == nil)
    }

    @Test func bodiesAreSlicesOfTheReceivedBuffer() throws {
        var parser = HTTP1RequestParser(limits: Self.limits)
        var buffer = ByteBuffer(string: "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        var body: ByteBuffer?
        try parser.parse(&buffer) { if case .body(let b) = $0 { body = b } }
        let same = try #require(body).withUnsafeReadableBytes { b in buffer.withUnsafeReadableBytes { $0.baseAddress! == b.baseAddress! + b.count } }
        #expect(same, "the body ends where the buffer's unread part starts: no copy")
    }

    /// Found by the fuzzer: trailers one byte past the limit, then a LF without CR. Read whole, the LF was
    /// within the search window (400); read byte by byte, the limit was reached first (431).
    @Test func trailersPastTheLimitGetOneVerdictWhateverTheReads() {
        let text = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + String(repeating: "a", count: 510) + "\nX"
        let problem = HTTP1ParserCheck.violation(in: Array(text.utf8))
        #expect(problem == nil, "\(problem ?? "")")
        #expect(HTTP1ParserCheck.outcome(of: Array(text.utf8), piece: 1).hasSuffix("refused headTooLarge"))
    }

    /// A fixed corpus of mutated requests (seeded, so every run reads the same bytes): nothing crashes, and
    /// the invariants the fuzzer checks hold (`HTTP1ParserCheck`: reads of any size give the same parts and
    /// verdict; what is read is well formed).
    @Test func aFixedMutationCorpusKeepsTheReadersInvariants() {
        let seeds = [
            "GET /a?b=c HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n",
            "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
            "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nrest",
            "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes",
        ]
        let alphabet = Array("\r\n :;,0123456789abcdefABCDEF\t\u{0}\u{7f}GETPOSTHTTP/1.0-chunkedContent-LengthTransfer-Encoding".utf8)
        var mutator = HTTP1Mutator(seed: 0x9E37_79B9_7F4A_7C15)
        var read = 0, refused = 0
        for round in 0..<1500 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            mutator.mutate(&bytes, alphabet: alphabet, edits: 4)
            let problem = HTTP1ParserCheck.violation(in: bytes)
            #expect(problem == nil, "round \(round): \(String(decoding: bytes, as: UTF8.self).debugDescription): \(problem ?? "")")
            if HTTP1ParserCheck.outcome(of: bytes, piece: 1 << 20).contains("refused") { refused += 1 } else { read += 1 }
        }
        #expect(read > 100 && refused > 100, "the corpus exercises both verdicts: \(read) read, \(refused) refused")
    }
}

/// The decoder in the downstream pipeline: refusals answered 400 (or 414/431) and the connection closed,
/// the requests before them answered.
struct HTTP1RequestDecoderPipelineTests {
    @Test func anOverLongChunkLineIs400AndClose() throws {
        var limits = HTTPLimits()
        limits.maxChunkLineBytes = 64
        let f = try PipelineFixture(limits: limits)
        let ok = try f.exchange("POST /submit HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n")
        #expect(ok.hasPrefix("HTTP/1.1 202 Accepted\r\n"))
        let out = try f.exchange("POST /submit HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\(String(repeating: "x", count: 200))\r\nhello\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(out.contains("HTTP/1.1 400 Bad Request\r\n"), "\(out)")
        #expect(out.hasSuffix("400 Bad Request: a chunk-size line (size and extensions) longer than 64 bytes\n"), "\(out)")
        #expect(!out.contains("200 OK"))
        #expect(!f.isOpen)
    }

    @Test func aHeadInPiecesIsAnsweredOnceWhole() throws {
        let f = try PipelineFixture()
        #expect(try f.exchange("GET /hea").isEmpty)
        #expect(try f.exchange("lthz HTTP/1.1\r\nHo").isEmpty)
        let out = try f.exchange("st: a\r\n\r\n")
        #expect(out.hasPrefix("HTTP/1.1 200 OK\r\n") && f.isOpen)
    }

    @Test func anEndlessRequestLineIs414() throws {
        let f = try PipelineFixture()
        let out = try f.exchange("GET /" + String(repeating: "a", count: 100 * 1024))
        #expect(out.hasPrefix("HTTP/1.1 414 URI Too Long\r\n"), "\(out.prefix(80))")
        #expect(!f.isOpen)
    }
}

/// The character classes against their definitions in RFC 9110 §5.6.2 and RFC 9112.
struct HTTP1GrammarTests {
    @Test func classesMatchTheRFCs() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for b in 0...255 {
            let c = UInt8(b)
            #expect(HTTP1Grammar.isToken(c) == tchar.contains(c), "token \(b)")
            #expect(HTTP1Grammar.isFieldValue(c) == (c == 9 || c == 32 || (33...126).contains(c) || c >= 128), "field value \(b)")
            #expect(HTTP1Grammar.isTarget(c) == ((33...126).contains(c) || c >= 128), "target \(b)")
        }
    }
}
