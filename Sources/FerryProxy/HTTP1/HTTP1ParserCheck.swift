import NIOCore
import NIOHTTP1

/// The request reader's invariants, checked on any bytes: for the fuzzer (`ferry-fuzz`, `scripts/fuzz.sh`)
/// and the tests' fixed corpus. Whatever the bytes, reading them in one piece, byte by byte or in reads
/// of a few bytes gives the same parts and the same verdict, and every part read is well formed (field
/// names are tokens, values hold no CR, LF or NUL, a body is no longer than its framing allows).
public enum HTTP1ParserCheck {
    /// Small limits, so the fuzzer reaches them.
    static let limits = HTTP1RequestParser.Limits(maxRequestLineBytes: 256, maxHeadBytes: 512, maxFieldCount: 8, maxChunkLineBytes: 32)

    /// Feeds `bytes` to `parser` in reads of `piece` bytes, as `HTTP1Decoder` does (unread bytes kept and
    /// extended, nothing parsed after a stop): the error that ended the reading, if any, and the bytes left.
    static func feed<P: HTTP1DirectionParser>(_ parser: inout P, _ bytes: [UInt8], piece: Int, emit: (P.Part) -> Void) -> (error: HTTP1ParseError?, unread: ByteBuffer?) {
        var kept: ByteBuffer?
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + piece)
            var buffer = ByteBuffer(bytes: bytes[start..<end])
            if var k = kept { k.writeBuffer(&buffer); buffer = k }
            kept = nil
            start = end
            if parser.state == .stopped { kept = buffer; continue }
            do {
                try parser.parse(&buffer, emit: emit)
            } catch {
                return (error as? HTTP1ParseError ?? .malformed("\(error)"), nil)
            }
            if buffer.readableBytes > 0 { kept = buffer }
        }
        return (nil, kept)
    }

    /// The parts read, as lines of text (body bytes counted, not shown), and the verdict.
    struct Transcript {
        private(set) var lines: [String] = []
        private var pendingBody = 0

        mutating func head(_ text: String) { lines.append("head " + text) }
        mutating func body(_ bytes: ByteBuffer) { pendingBody += bytes.readableBytes }
        mutating func end(_ trailers: HTTPHeaders?) {
            flushBody()
            lines.append("end " + (trailers?.map { "\($0.name)=\($0.value)" }.joined(separator: "|") ?? ""))
        }
        mutating func note(_ text: String) {
            flushBody()
            lines.append(text)
        }
        private mutating func flushBody() {
            if pendingBody > 0 { lines.append("body \(pendingBody)") }
            pendingBody = 0
        }
        static func fields(_ headers: HTTPHeaders) -> String { headers.map { "\($0.name)=\($0.value)" }.joined(separator: "|") }
    }

    /// What reading `bytes` in reads of `piece` bytes gives, as text (parts, then the verdict).
    public static func outcome(of bytes: [UInt8], piece: Int) -> String {
        var parser = HTTP1RequestParser(limits: limits)
        var t = Transcript()
        let (error, kept) = feed(&parser, bytes, piece: piece) { part in
            switch part {
            case .head(let h): t.head("\(h.method.rawValue) \(h.uri) \(h.version.major).\(h.version.minor) " + Transcript.fields(h.head.headers))
            case .body(let b): t.body(b)
            case .end(let trailers): t.end(trailers)
            }
        }
        t.note(error.map { "refused \($0.kind)" } ?? "unread \(kept?.readableBytes ?? 0) \(parser.state == .stopped ? "stopped" : "")")
        return t.lines.joined(separator: "\n")
    }

    /// What reading `bytes` as the responses to `methods` in reads of `piece` bytes, then the end of the
    /// input, gives, as text.
    public static func responseOutcome(of bytes: [UInt8], methods: [String], piece: Int) -> String {
        var parser = HTTP1ResponseParser(limits: limits)
        for m in methods { parser.methods.append(HTTPMethod(rawValue: m)) }
        var t = Transcript()
        func record(_ part: HTTP1ResponsePart) {
            switch part {
            case .head(let view): t.head("\(view.status.code) 1.\(view.version.minor) keep-alive \(view.isKeepAlive) " + Transcript.fields(view.head.headers))
            case .body(let b): t.body(b)
            case .end(let trailers): t.end(trailers)
            }
        }
        let (error, kept) = feed(&parser, bytes, piece: piece, emit: record)
        if let error {
            t.note("refused \(error.kind)")
        } else {
            switch parser.endOfInput(unread: kept?.readableBytes ?? 0) {
            case .success(let part)?: record(part)
            case .failure(let error)?: t.note("ended \(error.kind)")
            case nil: t.note(parser.state == .stopped ? "tunnel, unread \(kept?.readableBytes ?? 0)" : "open")
            }
        }
        return t.lines.joined(separator: "\n")
    }

    /// Responses: the first byte of `bytes` picks the methods of the requests they answer (GET, HEAD,
    /// POST, CONNECT, in a pattern), the rest are the responses. A broken invariant, described, or nil.
    public static func responseViolation(in bytes: [UInt8]) -> String? {
        guard let selector = bytes.first else { return nil }
        let methods = (0..<6).map { ["GET", "HEAD", "POST", "CONNECT"][Int(selector >> UInt8($0)) % 4] }
        let rest = Array(bytes.dropFirst())
        let whole = responseOutcome(of: rest, methods: methods, piece: Int.max / 2)
        for piece in [1, 3] {
            let split = responseOutcome(of: rest, methods: methods, piece: piece)
            if split != whole { return "responses to \(methods) in reads of \(piece) bytes give\n\(split)\nbut one read gives\n\(whole)" }
        }
        return nil
    }

    /// A broken invariant on `bytes` read as requests, described, or nil.
    public static func violation(in bytes: [UInt8]) -> String? {
        let whole = outcome(of: bytes, piece: Int.max / 2)
        for piece in [1, 2, 7] {
            let split = outcome(of: bytes, piece: piece)
            if split != whole { return "reads of \(piece) bytes give\n\(split)\nbut one read gives\n\(whole)" }
        }
        var parser = HTTP1RequestParser(limits: limits)
        var buffer = ByteBuffer(bytes: bytes)
        var problem: String?
        try? parser.parse(&buffer) { part in
            guard case .head(let h) = part else { return }
            for (name, value) in h.head.headers {
                if name.isEmpty || !name.utf8.allSatisfy(HTTP1Grammar.isToken) { problem = "a field name that is not a token: \(name.debugDescription)" }
                if value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) { problem = "CR, LF or NUL in a field value: \(value.debugDescription)" }
                if value.first == " " || value.last == " " { problem = "blanks around a field value: \(value.debugDescription)" }
            }
            if h.uri.isEmpty || h.uri.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) { problem = "a target with a blank or control character: \(h.uri.debugDescription)" }
        }
        return problem
    }
}

/// Seeded edits of byte strings, for the fuzzer's random mode and the tests' fixed corpora (the same seed
/// gives the same inputs).
public struct HTTP1Mutator {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int(truncatingIfNeeded: state >> 33)
    }

    /// Up to `edits` edits (delete, insert from `alphabet`, overwrite, repeat a run), leaving the first
    /// `keep` bytes alone.
    public mutating func mutate(_ bytes: inout [UInt8], alphabet: [UInt8], edits: Int, keep: Int = 0) {
        for _ in 0..<(1 + next() % edits) {
            let at = keep + next() % (bytes.count - keep + 1)
            switch next() % 5 {
            case 0 where at < bytes.count: bytes.remove(at: at)
            case 1: bytes.insert(alphabet[next() % alphabet.count], at: at)
            case 2 where at < bytes.count: bytes[at] = UInt8(truncatingIfNeeded: next())
            case 3 where at < bytes.count: bytes[at] = alphabet[next() % alphabet.count]
            default: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + next() % 40)], at: at)
            }
        }
    }
}
