import NIOHTTP1

/// Turns a downstream request head into the head sent upstream, and an upstream response head into the
/// one sent downstream: hop-by-hop fields removed (RFC 9110 §7.6.1), framing set by Ferry, forwarding
/// fields added. Pure functions over `HTTPHeaders`.
enum HeaderRewriter {
    /// Fields that describe one hop and never travel further.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// How a message body is framed.
    enum Framing: Equatable {
        case none
        case contentLength
        case chunked
        /// HTTP/1.0-style: the body runs until the connection closes (responses only).
        case untilClose
    }

    struct ForwardingInfo {
        var clientAddress: String
        var requestID: String
        var isUpgrade: Bool
    }

    /// Request framing as received (after `RequestHeadValidator` accepted it).
    static func requestFraming(_ headers: HTTPHeaders) -> Framing {
        if headers.contains(name: "transfer-encoding") { return .chunked }
        if headers.contains(name: "content-length") { return .contentLength }
        return .none
    }

    /// The head to send upstream. Keeps Host, adds X-Forwarded-For/-Proto/-Host, Via and X-Request-Id.
    static func upstreamRequest(_ head: HTTPRequestHead, framing: Framing, info: ForwardingInfo) -> HTTPRequestHead {
        var out = head
        out.version = .http1_1
        removeHopByHop(&out.headers, keepUpgrade: info.isUpgrade)
        switch framing {
        case .chunked: out.headers.add(name: "transfer-encoding", value: "chunked")
        case .contentLength, .none, .untilClose: break
        }
        if info.isUpgrade {
            out.headers.add(name: "connection", value: "upgrade")
        }
        if let existing = out.headers.first(name: "x-forwarded-for") {
            out.headers.replaceOrAdd(name: "x-forwarded-for", value: "\(existing), \(info.clientAddress)")
        } else {
            out.headers.add(name: "x-forwarded-for", value: info.clientAddress)
        }
        out.headers.replaceOrAdd(name: "x-forwarded-proto", value: "http")
        if let host = head.headers.first(name: "host") {
            out.headers.replaceOrAdd(name: "x-forwarded-host", value: host)
        }
        appendVia(&out.headers, version: head.version)
        if !out.headers.contains(name: "x-request-id") {
            out.headers.add(name: "x-request-id", value: info.requestID)
        }
        return out
    }

    /// Response framing as received from the upstream, given the request method.
    static func responseFraming(_ head: HTTPResponseHead, requestMethod: HTTPMethod) -> Framing {
        let code = head.status.code
        if requestMethod == .HEAD || (100..<200).contains(code) || code == 204 || code == 304 { return .none }
        if let te = head.headers.first(name: "transfer-encoding"), te.lowercased().contains("chunked") { return .chunked }
        if head.headers.contains(name: "content-length") { return .contentLength }
        return .untilClose
    }

    /// The head to send downstream; `keepAlive` says whether the downstream connection stays open after it.
    /// Returns the framing Ferry writes the body with.
    static func downstreamResponse(
        _ head: HTTPResponseHead,
        upstreamFraming: Framing,
        requestVersion: HTTPVersion,
        keepAlive: inout Bool,
        isUpgrade: Bool
    ) -> HTTPResponseHead {
        var out = head
        out.version = requestVersion.minor == 0 ? .http1_0 : .http1_1
        if isUpgrade && head.status == .switchingProtocols {
            removeHopByHop(&out.headers, keepUpgrade: true)
            out.headers.add(name: "connection", value: "upgrade")
            appendVia(&out.headers, version: head.version)
            return out
        }
        let keepTransferEncoding = upstreamFraming == .none && head.headers.contains(name: "transfer-encoding")
        let originalTE = keepTransferEncoding ? head.headers.first(name: "transfer-encoding") : nil
        removeHopByHop(&out.headers, keepUpgrade: false)
        switch upstreamFraming {
        case .chunked, .untilClose:
            if requestVersion.minor >= 1 {
                out.headers.add(name: "transfer-encoding", value: "chunked")
            } else {
                keepAlive = false
            }
        case .none:
            // A HEAD response may advertise the GET's framing.
            if let originalTE { out.headers.add(name: "transfer-encoding", value: originalTE) }
        case .contentLength:
            break
        }
        if !keepAlive {
            out.headers.add(name: "connection", value: "close")
        } else if requestVersion.minor == 0 {
            out.headers.add(name: "connection", value: "keep-alive")
        }
        appendVia(&out.headers, version: head.version)
        return out
    }

    /// Removes hop-by-hop fields and any field the Connection header names.
    static func removeHopByHop(_ headers: inout HTTPHeaders, keepUpgrade: Bool) {
        var named: [String] = []
        var found = false
        for (name, value) in headers {
            let lower = name.lowercased()
            if hopByHop.contains(lower) {
                found = true
                if lower == "connection" {
                    for token in value.split(separator: ",") {
                        let t = token.trimmingSpaces.lowercased()
                        if !t.isEmpty, !(keepUpgrade && t == "upgrade") { named.append(t) }
                    }
                }
            }
        }
        guard found else { return }
        for name in hopByHop where !(keepUpgrade && name == "upgrade") {
            headers.remove(name: name)
        }
        for name in named where !isProtectedFromConnectionRemoval(name) {
            headers.remove(name: name)
        }
    }

    /// A client may not use Connection to strip fields Ferry relies on for routing and framing.
    static func isProtectedFromConnectionRemoval(_ name: String) -> Bool {
        ["host", "content-length", "x-request-id"].contains(name)
    }

    static func appendVia(_ headers: inout HTTPHeaders, version: HTTPVersion) {
        let entry = "\(version.major).\(version.minor) ferry"
        if let existing = headers.first(name: "via") {
            headers.replaceOrAdd(name: "via", value: "\(existing), \(entry)")
        } else {
            headers.add(name: "via", value: entry)
        }
    }

    /// Whether the request asks to switch protocols (`Connection: upgrade` + `Upgrade`).
    static func isUpgradeRequest(_ head: HTTPRequestHead) -> Bool {
        guard head.headers.contains(name: "upgrade") else { return false }
        return head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
    }
}
