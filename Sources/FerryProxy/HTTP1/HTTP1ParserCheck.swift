import NIOCore
import NIOHTTP1

/// The request reader's invariants, checked on any bytes: for the fuzzer (`ferry-fuzz`, `scripts/fuzz.sh`)
/// and the tests' fixed corpus. Whatever the bytes, reading them in one piece, byte by byte or in reads
/// of a few bytes gives the same parts and the same verdict, and every part read is well formed (field
/// names are tokens, values hold no CR, LF or NUL, a body is no longer than its framing allows).
public enum HTTP1ParserCheck {
    /// Small limits, so the fuzzer reaches them.
    static let limits = HTTP1RequestParser.Limits(maxRequestLineBytes: 256, maxHeadBytes: 512, maxFieldCount: 8, maxChunkLineBytes: 32)

    /// What reading `bytes` in reads of `piece` bytes gives, as text (parts, then the verdict).
    public static func outcome(of bytes: [UInt8], piece: Int) -> String {
        var parser = HTTP1RequestParser(limits: limits)
        var lines: [String] = []
        var pendingBody = 0
        func record(_ part: HTTPServerRequestPart) {
            switch part {
            case .head(let h):
                lines.append("head \(h.method.rawValue) \(h.uri) \(h.version.major).\(h.version.minor) " + h.headers.map { "\($0.name)=\($0.value)" }.joined(separator: "|"))
            case .body(let b):
                pendingBody += b.readableBytes
            case .end(let t):
                if pendingBody > 0 { lines.append("body \(pendingBody)") }
                pendingBody = 0
                lines.append("end " + (t?.map { "\($0.name)=\($0.value)" }.joined(separator: "|") ?? ""))
            }
        }
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
                try parser.parse(&buffer, emit: record)
            } catch {
                if pendingBody > 0 { lines.append("body \(pendingBody)") }
                lines.append("refused \((error as? HTTP1ParseError)?.kind ?? .malformed)")
                return lines.joined(separator: "\n")
            }
            if buffer.readableBytes > 0 { kept = buffer }
        }
        if pendingBody > 0 { lines.append("body \(pendingBody)") }
        lines.append("unread \(kept?.readableBytes ?? 0) \(parser.state == .stopped ? "stopped" : "")")
        return lines.joined(separator: "\n")
    }

    /// What reading `bytes` as the responses to `methods` in reads of `piece` bytes gives, as text.
    public static func responseOutcome(of bytes: [UInt8], methods: [String], piece: Int) -> String {
        var parser = HTTP1ResponseParser(limits: limits)
        for m in methods { parser.methods.append(HTTPMethod(rawValue: m)) }
        var lines: [String] = []
        var pendingBody = 0
        func record(_ part: HTTP1ResponsePart) {
            switch part {
            case .head(let view):
                lines.append("head \(view.status.code) 1.\(view.version.minor) keep-alive \(view.isKeepAlive) " + view.head.headers.map { "\($0.name)=\($0.value)" }.joined(separator: "|"))
            case .body(let b):
                pendingBody += b.readableBytes
            case .end(let t):
                if pendingBody > 0 { lines.append("body \(pendingBody)") }
                pendingBody = 0
                lines.append("end " + (t?.map { "\($0.name)=\($0.value)" }.joined(separator: "|") ?? ""))
            }
        }
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
                try parser.parse(&buffer, emit: record)
            } catch {
                if pendingBody > 0 { lines.append("body \(pendingBody)") }
                lines.append("refused \((error as? HTTP1ParseError)?.kind ?? .malformed)")
                return lines.joined(separator: "\n")
            }
            if buffer.readableBytes > 0 { kept = buffer }
        }
        switch parser.endOfInput(unread: kept?.readableBytes ?? 0) {
        case .success(let part)?: record(part)
        case .failure(let error)?: lines.append("ended \(error.kind)")
        case nil: break
        }
        if pendingBody > 0 { lines.append("body \(pendingBody)") }
        return lines.joined(separator: "\n")
    }

    /// Responses: the first byte of `bytes` picks the methods of the requests they answer (GET, HEAD,
    /// POST, in a pattern), the rest are the responses. A broken invariant, described, or nil.
    public static func responseViolation(in bytes: [UInt8]) -> String? {
        guard let selector = bytes.first else { return nil }
        let methods = (0..<6).map { ["GET", "HEAD", "POST"][Int(selector >> UInt8($0)) % 3] }
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
            for (name, value) in h.headers {
                if name.isEmpty || !name.utf8.allSatisfy(HTTP1Grammar.isToken) { problem = "a field name that is not a token: \(name.debugDescription)" }
                if value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) { problem = "CR, LF or NUL in a field value: \(value.debugDescription)" }
                if value.first == " " || value.last == " " { problem = "blanks around a field value: \(value.debugDescription)" }
            }
            if h.uri.isEmpty || h.uri.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) { problem = "a target with a blank or control character: \(h.uri.debugDescription)" }
        }
        return problem
    }
}
