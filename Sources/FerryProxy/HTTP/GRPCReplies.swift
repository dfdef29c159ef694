import NIOCore
import NIOHTTP1

/// What a gRPC client gets from Ferry itself: a gRPC status, not an HTML or text page (a gRPC client cannot
/// read those), and the deadline it asked for.
enum GRPC {
    /// Whether a request is gRPC: `content-type: application/grpc` or `application/grpc+…`.
    static func isGRPC(contentType: String?) -> Bool {
        guard let contentType else { return false }
        let prefix = "application/grpc".utf8
        return contentType.utf8.count >= prefix.count
            && zip(contentType.utf8, prefix).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }

    /// gRPC's status for an HTTP status it did not get from a gRPC server (gRPC's http-grpc-status-mapping):
    /// 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504
    /// UNAVAILABLE, anything else UNKNOWN.
    static func status(forHTTP code: UInt) -> Int {
        switch code {
        case 400, 431: 13
        case 401: 16
        case 403: 7
        case 404: 12
        case 429, 502, 503, 504: 14
        default: 2
        }
    }

    /// A Ferry error as a Trailers-Only gRPC response (a timeout of Ferry's is DEADLINE_EXCEEDED): `200`, `content-type: application/grpc`, `grpc-status`
    /// and `grpc-message` (percent-encoded, as gRPC's wire format says), no body. Over HTTP/2 it is one
    /// HEADERS frame that ends the stream.
    static func reply(for reply: LocalReply) -> LocalReply {
        var grpc = LocalReply(status: .ok, body: "", flags: reply.flags, closeConnection: reply.closeConnection)
        grpc.contentType = "application/grpc"
        let message = reply.body.trimmingCharacters(in: .whitespacesAndNewlines)
        // Ferry's own deadline (the route's, or the client's grpc-timeout) passed: DEADLINE_EXCEEDED, which is
        // what the client's own timer would say; other answers by the HTTP mapping.
        let code = reply.flags.contains(.upstreamRequestTimeout) ? 4 : status(forHTTP: reply.status.code)
        grpc.extraHeaders = [("grpc-status", String(code)), ("grpc-message", percentEncoded(message))]
        return grpc
    }

    /// Bytes outside 0x20–0x7E and `%` as `%XX`.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte >= 0x20, byte <= 0x7e, byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// `grpc-timeout`: 1–8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`); nil when it is not one.
    static func timeout(_ text: String) -> TimeAmount? {
        guard let unit = text.last, (2...9).contains(text.utf8.count) else { return nil }
        let digits = text.dropLast()
        guard digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int64(digits) else { return nil }
        switch unit {
        case "H": return .hours(value)
        case "M": return .minutes(value)
        case "S": return .seconds(value)
        case "m": return .milliseconds(value)
        case "u": return .microseconds(value)
        case "n": return .nanoseconds(value)
        default: return nil
        }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
