import NIOCore
import NIOHTTP1

/// A response Ferry writes itself: errors with a short text body, direct responses and redirects.
struct LocalReply {
    var status: HTTPResponseStatus
    var body: String
    var flags: ResponseFlags
    var extraHeaders: [(String, String)] = []
    var contentType = "text/plain; charset=utf-8"
    /// A binary body (a served file), instead of `body`.
    var bodyBuffer: ByteBuffer?
    /// Whether the downstream connection must close after this reply (protocol errors).
    var closeConnection: Bool

    /// The whole answer to a connection over its listener's limit, written before anything is read.
    static let overloadedResponse = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 59\r\nconnection: close\r\nserver: ferry\r\n\r\n503 Service Unavailable: too many connections; retry later\n"

    static func error(_ status: HTTPResponseStatus, _ detail: String, flags: ResponseFlags, close: Bool = false) -> LocalReply {
        LocalReply(status: status, body: "\(status.code) \(status.reasonPhrase): \(detail)\n", flags: flags, closeConnection: close)
    }

    var bodyLength: Int { bodyBuffer?.readableBytes ?? body.utf8.count }

    /// The answer to an OPTIONS or TRACE whose Max-Forwards reached 0 at Ferry: OPTIONS gets the methods a
    /// proxy serves; TRACE gets the request back as `message/http` (RFC 9110 §9.3.8), without the fields
    /// that carry credentials (Authorization, Proxy-Authorization, Cookie).
    static func lastHop(_ head: HTTPRequestHead) -> LocalReply {
        guard head.method == .TRACE else {
            var reply = LocalReply(status: .ok, body: "", flags: .localResponse, closeConnection: false)
            reply.extraHeaders = [("allow", "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT")]
            return reply
        }
        var echo = "TRACE \(head.uri) HTTP/\(head.version.major).\(head.version.minor)\r\n"
        for (name, value) in head.headers {
            let lower = name.lowercased()
            if lower == "authorization" || lower == "proxy-authorization" || lower == "cookie" { continue }
            echo += "\(name): \(value)\r\n"
        }
        echo += "\r\n"
        var reply = LocalReply(status: .ok, body: echo, flags: .localResponse, closeConnection: false)
        reply.contentType = "message/http"
        return reply
    }

    func head(version: HTTPVersion, keepAlive: Bool, requestID: String?) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(5 + extraHeaders.count)
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(bodyLength))
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        if let requestID { headers.add(name: "x-request-id", value: requestID) }
        headers.add(name: "server", value: "ferry")
        if !keepAlive { headers.add(name: "connection", value: "close") }
        return HTTPResponseHead(version: version.minor == 0 ? .http1_0 : .http1_1, status: status, headers: headers)
    }
}
