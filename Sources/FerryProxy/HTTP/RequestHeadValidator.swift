import FerryModel
import NIOHTTP1

/// Checks a decoded request head against Ferry's limits and the framing rules of RFC 9112 that the
/// decoder leaves to us. Pure: the handler turns a rejection into a local reply and a close.
enum RequestHeadValidator {
    struct Rejection: Error, Equatable {
        var status: HTTPResponseStatus
        var reason: String
    }

    static func validate(_ head: HTTPRequestHead, limits: HTTPLimits) -> Rejection? {
        let requestLineLength = head.method.rawValue.utf8.count + head.uri.utf8.count + 11
        if requestLineLength > limits.maxRequestLineBytes {
            return Rejection(status: .uriTooLong, reason: "request line longer than \(limits.maxRequestLineBytes) bytes")
        }
        var count = 0
        var bytes = 0
        var contentLength: Substring?
        var transferEncodings: [Substring] = []
        var hostCount = 0
        for (name, value) in head.headers {
            count += 1
            bytes += name.utf8.count + value.utf8.count + 4
            if let problem = fieldProblem(name: name, value: value) {
                return Rejection(status: .badRequest, reason: problem)
            }
            switch name.utf8.count {
            case 4 where name.lowercased() == "host":
                hostCount += 1
            case 14 where name.lowercased() == "content-length":
                for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                    let trimmed = part.trimmingSpaces
                    guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                        return Rejection(status: .badRequest, reason: "invalid Content-Length")
                    }
                    if let existing = contentLength, existing != trimmed {
                        return Rejection(status: .badRequest, reason: "conflicting Content-Length values")
                    }
                    contentLength = trimmed
                }
            case 17 where name.lowercased() == "transfer-encoding":
                for part in value.split(separator: ",") {
                    let coding = part.trimmingSpaces
                    if !coding.isEmpty { transferEncodings.append(coding) }
                }
            default:
                break
            }
        }
        if count > limits.maxHeaderCount {
            return Rejection(status: .requestHeaderFieldsTooLarge, reason: "more than \(limits.maxHeaderCount) header fields")
        }
        if bytes > limits.maxHeaderBytes {
            return Rejection(status: .requestHeaderFieldsTooLarge, reason: "header block larger than \(limits.maxHeaderBytes) bytes")
        }
        if !transferEncodings.isEmpty {
            if contentLength != nil {
                return Rejection(status: .badRequest, reason: "both Content-Length and Transfer-Encoding")
            }
            if head.version.major == 1 && head.version.minor == 0 {
                return Rejection(status: .badRequest, reason: "Transfer-Encoding in an HTTP/1.0 request")
            }
            if transferEncodings.count != 1 || transferEncodings[0].lowercased() != "chunked" {
                return Rejection(status: .badRequest, reason: "unsupported Transfer-Encoding; only a single \"chunked\" is accepted")
            }
        }
        if head.version.major == 1 && head.version.minor >= 1 && hostCount != 1 {
            return Rejection(status: .badRequest, reason: hostCount == 0 ? "missing Host" : "more than one Host")
        }
        if hostCount > 1 {
            return Rejection(status: .badRequest, reason: "more than one Host")
        }
        if !head.uri.hasPrefix("/") && head.method != .OPTIONS {
            return Rejection(status: .badRequest, reason: "request target must be a path (origin-form) on a reverse-proxy listener")
        }
        return nil
    }

    /// Field names are tokens; values carry no CR, LF or NUL (RFC 9110 §5.5) and no leading/trailing whitespace inside a name.
    static func fieldProblem(name: String, value: String) -> String? {
        for b in name.utf8 where !isTokenByte(b) {
            return "invalid character in header field name"
        }
        if name.isEmpty { return "empty header field name" }
        for b in value.utf8 where b == 0 || b == 13 || b == 10 || (b < 32 && b != 9) || b == 127 {
            return "invalid character in header field value"
        }
        return nil
    }

    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
