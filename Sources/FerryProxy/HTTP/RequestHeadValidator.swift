import FerryModel
import NIOHTTP1

/// What the proxy needs to know about a request head, gathered in the one pass that validates it.
struct RequestSummary {
    var host: String?
    var contentLength: Int?
    var chunked = false
    var requestID: String?
    /// The client's X-Forwarded-For values (comma-joined), X-Forwarded-Proto and X-Forwarded-Host.
    var forwardedFor: String?
    var forwardedProto: String?
    var forwardedHost: String?
    var via: String?
    var userAgent: String?
    var referer: String?
    /// The client waits for `100 Continue` before sending its body (`Expect: 100-continue`).
    var expectsContinue = false
    /// A `Connection: upgrade` with an `Upgrade` field.
    var isUpgrade: Bool { connectionUpgrade && hasUpgrade }
    var connectionUpgrade = false
    var hasUpgrade = false
    /// The `Upgrade` value as received, then (once the listener's protocols are applied) as forwarded.
    var upgrade: String?
    /// `Max-Forwards` of an OPTIONS or TRACE request (RFC 9110 §7.6.2): 0 is answered by Ferry, more is
    /// forwarded less one.
    var maxForwards: Int?
    /// The Content-Length field is not in canonical form (`010`, `5, 5`, two fields): Ferry writes its own.
    var rewritesContentLength = false
    /// Whether any field must be dropped on the way upstream (hop-by-hop or rewritten by Ferry).
    var needsFiltering = false
    /// Lower-case names listed in Connection (besides keep-alive, close, upgrade).
    var connectionListed: [String] = []
}

/// Checks a decoded request head against Ferry's limits and the rules of RFC 9112 and RFC 9110 beyond the
/// syntax (which `HTTP1Parser` has checked: token names, values without control characters), and
/// summarises it. Pure: the handler turns a rejection into a local reply and a close.
enum RequestHeadValidator {
    struct Rejection: Error, Equatable {
        var status: HTTPResponseStatus
        var reason: String
    }

    static func validate(_ head: HTTPRequestHead, limits: HTTPLimits, forwardProxy: Bool = false) -> Result<RequestSummary, Rejection> {
        if let rejection = requestLineProblem(method: head.method, uri: head.uri, limits: limits) { return .failure(rejection) }
        var fields = Fields(method: head.method)
        for (name, value) in head.headers {
            if let rejection = fields.visit(FieldName(name), nameLength: name.utf8.count, valueLength: value.utf8.count, value) {
                return .failure(rejection)
            }
        }
        return fields.finish(method: head.method, uri: head.uri, version: head.version, limits: limits, forwardProxy: forwardProxy)
    }

    /// The same for a head read as bytes: a `String` is made only of the values the summary keeps or checks
    /// (Host, Content-Length, the forwarding fields, ...), none of the others.
    static func validate(_ view: HTTP1RequestHeadView, limits: HTTPLimits, forwardProxy: Bool = false) -> Result<RequestSummary, Rejection> {
        if let rejection = requestLineProblem(method: view.method, uri: view.uri, limits: limits) { return .failure(rejection) }
        var fields = Fields(method: view.method)
        var rejection: Rejection?
        view.forEachField { name, value in
            guard rejection == nil else { return }
            // The value becomes a String only when its kind is one the summary reads (`visit` asks lazily).
            rejection = fields.visit(FieldName(bytes: name), nameLength: name.count, valueLength: value.count, String(decoding: value, as: UTF8.self))
        }
        if let rejection { return .failure(rejection) }
        return fields.finish(method: view.method, uri: view.uri, version: view.version, limits: limits, forwardProxy: forwardProxy)
    }

    /// 414 for a request line over `max_request_line`, checked before anything else.
    static func requestLineProblem(method: HTTPMethod, uri: String, limits: HTTPLimits) -> Rejection? {
        guard method.rawValue.utf8.count + uri.utf8.count + 11 > limits.maxRequestLineBytes else { return nil }
        return Rejection(status: .uriTooLong, reason: "request line longer than \(limits.maxRequestLineBytes) bytes")
    }

    /// The summary gathered field by field, then checked as a whole.
    struct Fields {
        let method: HTTPMethod
        var summary = RequestSummary()
        var count = 0
        var bytes = 0
        var contentLength: Substring?
        var transferEncodings: [Substring] = []
        var hostCount = 0

        init(method: HTTPMethod) { self.method = method }

        /// One field (`value` is read only for the kinds the summary keeps); a rejection ends the head.
        @inline(__always)
        mutating func visit(_ kind: FieldName, nameLength: Int, valueLength: Int, _ value: @autoclosure () -> String) -> Rejection? {
            count += 1
            bytes += nameLength + valueLength + 4
            if kind == .other { return nil }
            let value = value()
            switch kind {
            case .host:
                hostCount += 1
                summary.host = value
                if let problem = HostHeader.problem(Substring(value)) {
                    return Rejection(status: .badRequest, reason: problem)
                }
            case .contentLength:
                for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                    let trimmed = part.trimmingSpaces
                    guard !trimmed.isEmpty, trimmed.utf8.count <= 18, trimmed.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                        return Rejection(status: .badRequest, reason: "invalid Content-Length")
                    }
                    if let existing = contentLength {
                        guard Int(existing) == Int(trimmed) else {
                            return Rejection(status: .badRequest, reason: "conflicting Content-Length values")
                        }
                        summary.rewritesContentLength = true
                    }
                    if trimmed.utf8.count > 1 && trimmed.utf8.first == UInt8(ascii: "0") || trimmed.utf8.count != part.utf8.count {
                        summary.rewritesContentLength = true
                    }
                    contentLength = trimmed
                }
                if summary.rewritesContentLength { summary.needsFiltering = true }
            case .transferEncoding:
                summary.needsFiltering = true
                for part in value.split(separator: ",") {
                    let coding = part.trimmingSpaces
                    if !coding.isEmpty { transferEncodings.append(coding) }
                }
            case .connection:
                summary.needsFiltering = true
                for token in value.split(separator: ",") {
                    let t = token.trimmingSpaces
                    if FieldName.equalsIgnoringCase(t, "upgrade") {
                        summary.connectionUpgrade = true
                    } else if !FieldName.equalsIgnoringCase(t, "keep-alive"), !FieldName.equalsIgnoringCase(t, "close"), !t.isEmpty {
                        summary.connectionListed.append(t.lowercased())
                    }
                }
            case .upgrade:
                summary.needsFiltering = true
                summary.hasUpgrade = true
                summary.upgrade = summary.upgrade.map { "\($0), \(value)" } ?? value
            case .forwardedProto:
                summary.needsFiltering = true
                if summary.forwardedProto == nil { summary.forwardedProto = value }
            case .forwardedHost:
                summary.needsFiltering = true
                if summary.forwardedHost == nil { summary.forwardedHost = value }
            case .hopByHop, .forwarded, .ferryInternal:
                summary.needsFiltering = true
            case .forwardedFor:
                summary.needsFiltering = true
                summary.forwardedFor = summary.forwardedFor.map { "\($0), \(value)" } ?? value
            case .via:
                summary.needsFiltering = true
                summary.via = summary.via.map { "\($0), \(value)" } ?? value
            case .requestID:
                if summary.requestID == nil { summary.requestID = value }
            case .maxForwards:
                guard method == .OPTIONS || method == .TRACE else { break }
                let text = Substring(value).trimmingSpaces
                guard !text.isEmpty, text.utf8.count <= 9, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(text) else {
                    return Rejection(status: .badRequest, reason: "invalid Max-Forwards (a number of hops)")
                }
                summary.maxForwards = min(summary.maxForwards ?? n, n)
                summary.needsFiltering = true
            case .userAgent:
                summary.userAgent = value
            case .referer:
                summary.referer = value
            case .expect:
                // Ferry answers the expectation itself (as Envoy does by default); the field is not forwarded.
                summary.needsFiltering = true
                if FieldName.equalsIgnoringCase(Substring(value).trimmingSpaces, "100-continue") {
                    summary.expectsContinue = true
                } else {
                    return Rejection(status: .expectationFailed, reason: "only \"Expect: 100-continue\" is supported")
                }
            case .other:
                break
            }
            return nil
        }

        /// The checks on the head as a whole, once every field is read.
        func finish(method: HTTPMethod, uri: String, version: HTTPVersion, limits: HTTPLimits, forwardProxy: Bool) -> Result<RequestSummary, Rejection> {
            var summary = summary
            if count > limits.maxHeaderCount {
                return .failure(Rejection(status: .requestHeaderFieldsTooLarge, reason: "more than \(limits.maxHeaderCount) header fields"))
            }
            if bytes > limits.maxHeaderBytes {
                return .failure(Rejection(status: .requestHeaderFieldsTooLarge, reason: "header block larger than \(limits.maxHeaderBytes) bytes"))
            }
            if !transferEncodings.isEmpty {
                if contentLength != nil {
                    return .failure(Rejection(status: .badRequest, reason: "both Content-Length and Transfer-Encoding"))
                }
                if version.major == 1 && version.minor == 0 {
                    return .failure(Rejection(status: .badRequest, reason: "Transfer-Encoding in an HTTP/1.0 request"))
                }
                if transferEncodings.count != 1 || !FieldName.equalsIgnoringCase(transferEncodings[0], "chunked") {
                    return .failure(Rejection(status: .badRequest, reason: "unsupported Transfer-Encoding; only a single \"chunked\" is accepted"))
                }
                summary.chunked = true
            }
            summary.contentLength = contentLength.flatMap { Int($0) }
            // RFC 9112 §3.2: every HTTP/1.1 request carries exactly one Host (a forward proxy's too, though it
            // takes the destination from the target).
            if hostCount > 1 || (version.major == 1 && version.minor >= 1 && hostCount == 0) {
                return .failure(Rejection(status: .badRequest, reason: hostCount == 0 ? "missing Host" : "more than one Host"))
            }
            if !forwardProxy, !uri.hasPrefix("/") && method != .OPTIONS {
                return .failure(Rejection(status: .badRequest, reason: "request target must be a path (origin-form) on a reverse-proxy listener"))
            }
            return .success(summary)
        }
    }
}

/// The header names the proxy treats specially, recognised without allocating.
enum FieldName {
    case host, contentLength, transferEncoding, connection, upgrade, hopByHop
    case forwardedFor, forwardedProto, forwardedHost, forwarded, via, requestID, userAgent, referer, expect, maxForwards
    /// `X-Ferry-*`: Ferry's own namespace, never taken from a client.
    case ferryInternal
    case other

    init<S: StringProtocol>(_ name: S) {
        self.init(bytes: name.utf8)
    }

    /// The kind of a name given as its bytes (a field of a received head, not yet a `String`).
    @inline(__always)
    init<C: Collection>(bytes name: C) where C.Element == UInt8 {
        switch name.count {
        case 2: self = Self.equalsIgnoringCase(bytes: name, "te") ? .hopByHop : .other
        case 3: self = Self.equalsIgnoringCase(bytes: name, "via") ? .via : .other
        case 4: self = Self.equalsIgnoringCase(bytes: name, "host") ? .host : .other
        case 6: self = Self.equalsIgnoringCase(bytes: name, "expect") ? .expect : .other
        case 9: self = Self.equalsIgnoringCase(bytes: name, "forwarded") ? .forwarded : Self.isFerryInternal(name) ? .ferryInternal : .other
        case 7:
            if Self.equalsIgnoringCase(bytes: name, "upgrade") { self = .upgrade } else if Self.equalsIgnoringCase(bytes: name, "trailer") { self = .hopByHop } else if Self.equalsIgnoringCase(bytes: name, "referer") { self = .referer } else { self = .other }
        case 10:
            if Self.equalsIgnoringCase(bytes: name, "connection") { self = .connection } else if Self.equalsIgnoringCase(bytes: name, "keep-alive") { self = .hopByHop } else if Self.equalsIgnoringCase(bytes: name, "user-agent") { self = .userAgent } else { self = .other }
        case 12:
            if Self.equalsIgnoringCase(bytes: name, "x-request-id") { self = .requestID } else if Self.equalsIgnoringCase(bytes: name, "max-forwards") { self = .maxForwards } else { self = Self.isFerryInternal(name) ? .ferryInternal : .other }
        case 14: self = Self.equalsIgnoringCase(bytes: name, "content-length") ? .contentLength : Self.isFerryInternal(name) ? .ferryInternal : .other
        case 15: self = Self.equalsIgnoringCase(bytes: name, "x-forwarded-for") ? .forwardedFor : Self.isFerryInternal(name) ? .ferryInternal : .other
        case 16:
            if Self.equalsIgnoringCase(bytes: name, "proxy-connection") { self = .hopByHop } else if Self.equalsIgnoringCase(bytes: name, "x-forwarded-host") { self = .forwardedHost } else { self = Self.isFerryInternal(name) ? .ferryInternal : .other }
        case 18: self = Self.equalsIgnoringCase(bytes: name, "proxy-authenticate") ? .hopByHop : Self.isFerryInternal(name) ? .ferryInternal : .other
        case 19: self = Self.equalsIgnoringCase(bytes: name, "proxy-authorization") ? .hopByHop : Self.isFerryInternal(name) ? .ferryInternal : .other
        case 17:
            if Self.equalsIgnoringCase(bytes: name, "transfer-encoding") { self = .transferEncoding } else if Self.equalsIgnoringCase(bytes: name, "x-forwarded-proto") { self = .forwardedProto } else { self = Self.isFerryInternal(name) ? .ferryInternal : .other }
        default: self = Self.isFerryInternal(name) ? .ferryInternal : .other
        }
    }

    /// Whether a name starts with `x-ferry-` (any case): two byte compares for almost every other name.
    @inline(__always)
    static func isFerryInternal<C: Collection>(_ utf8: C) -> Bool where C.Element == UInt8 {
        guard utf8.count > 8, utf8.first! | 0x20 == UInt8(ascii: "x") else { return false }
        var i = 0
        let prefix: StaticString = "x-ferry-"
        for byte in utf8 {
            if i == 8 { return true }
            let folded = (byte >= 65 && byte <= 90) ? byte | 0x20 : byte
            if folded != prefix.utf8Start[i] { return false }
            i += 1
        }
        return false
    }

    /// ASCII case-insensitive equality with a lower-case literal.
    @inline(__always)
    static func equalsIgnoringCase<S: StringProtocol>(_ text: S, _ lower: StaticString) -> Bool {
        equalsIgnoringCase(bytes: text.utf8, lower)
    }

    @inline(__always)
    static func equalsIgnoringCase<C: Collection>(bytes text: C, _ lower: StaticString) -> Bool where C.Element == UInt8 {
        guard text.count == lower.utf8CodeUnitCount else { return false }
        var i = 0
        let expected = lower.utf8Start
        for byte in text {
            let folded = (byte >= 65 && byte <= 90) ? byte | 0x20 : byte
            if folded != expected[i] { return false }
            i += 1
        }
        return true
    }

    /// Whether the field never travels past one hop (RFC 9110 §7.6.1).
    var isHopByHop: Bool {
        switch self {
        case .connection, .upgrade, .hopByHop, .transferEncoding: true
        default: false
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
