import FerryModel
import NIOCore
import NIOHTTP1

/// Turns a downstream request head into the head sent upstream, and an upstream response head into the
/// one sent downstream: hop-by-hop fields removed (RFC 9110 §7.6.1), framing set by Ferry, forwarding
/// fields added. Pure functions; each builds the new field list in one pass, and a response that needs
/// no change is passed on as it is.
enum HeaderRewriter {
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
        /// `https` when the client connected over TLS.
        var scheme = "http"
        /// The peer is a trusted proxy (`ForwardedTrust`): its forwarding fields are kept and appended to;
        /// otherwise they are replaced by what the connection says.
        var trusted = false
        /// The Host sent for an HTTP/1.0 request that has none (HTTP/1.1 upstream requires one, RFC 9112 §3.2):
        /// the cluster's authority, as nginx sends `$proxy_host`.
        var hostWhenMissing = ""
    }

    /// Request framing as validated.
    static func requestFraming(_ summary: RequestSummary) -> Framing {
        if summary.chunked { return .chunked }
        if summary.contentLength != nil { return .contentLength }
        return .none
    }

    /// The head to send upstream. Keeps Host, sets X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host
    /// (from the connection, or a trusted peer's kept and appended to), appends Via, and adds X-Request-Id
    /// when the request has none.
    static func upstreamRequest(_ head: HTTPRequestHead, summary: RequestSummary, info: ForwardingInfo) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 7)
        upstreamRequestFields(head, summary: summary, info: info) { headers.add(name: $0, value: $1) }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }

    /// The fields of the upstream request, in order, to `emit`: the client's end-to-end fields (all of
    /// them, as received, when nothing is to be dropped), then Ferry's framing and forwarding fields. The
    /// caller writes them into the request bytes (no `HTTPHeaders` built) or into a head to change further.
    @inline(__always)
    static func upstreamRequestFields(_ head: HTTPRequestHead, summary: RequestSummary, info: ForwardingInfo, _ emit: (String, String) -> Void) {
        if summary.needsFiltering {
            endToEndFields(head, summary: summary, trusted: info.trusted, writesForwardedProtoAndHost: true, emit)
        } else {
            for (name, value) in head.headers { emit(name, value) }
        }
        ferryRequestFields(version: head.version, summary: summary, info: info, emit)
    }

    /// The same fields for a head read as bytes, written into `bytes`: when nothing is to be dropped the
    /// client's field lines are copied as received, in one piece (no `String` per field); otherwise they go
    /// through the same filter as the fields of a head.
    @inline(__always)
    static func upstreamRequestFields(_ view: HTTP1RequestHeadView, summary: RequestSummary, info: ForwardingInfo, into bytes: inout ByteBuffer) {
        if summary.needsFiltering {
            endToEndFields(view.head, summary: summary, trusted: info.trusted, writesForwardedProtoAndHost: true) { WireFormat.field($0, $1, into: &bytes) }
        } else {
            var lines = view.fieldLines
            bytes.writeBuffer(&lines)
        }
        ferryRequestFields(version: view.version, summary: summary, info: info) { WireFormat.field($0, $1, into: &bytes) }
    }

    /// Ferry's framing and forwarding fields, after the client's.
    @inline(__always)
    private static func ferryRequestFields(version: HTTPVersion, summary: RequestSummary, info: ForwardingInfo, _ emit: (String, String) -> Void) {
        if summary.host == nil, !info.hostWhenMissing.isEmpty { emit("host", info.hostWhenMissing) }
        if summary.chunked { emit("transfer-encoding", "chunked") }
        if summary.isUpgrade { emit("connection", "upgrade") }
        emit("x-forwarded-for", forwardedFor(summary, info.clientAddress, trusted: info.trusted))
        emit("x-forwarded-proto", info.trusted ? summary.forwardedProto ?? info.scheme : info.scheme)
        if info.trusted, let host = summary.forwardedHost {
            emit("x-forwarded-host", host)
        } else if let host = summary.host {
            emit("x-forwarded-host", host)
        }
        let via = version.minor == 0 ? "1.0 ferry" : "1.1 ferry"
        emit("via", summary.via.map { "\($0), \(via)" } ?? via)
        if summary.requestID == nil { emit("x-request-id", info.requestID) }
    }

    /// The fields a forward proxy sends for an absolute-form request, in order, to `emit`: `Host` from the
    /// URL first, the client's end-to-end fields, then `Via` and `X-Forwarded-For` appended — Squid's
    /// defaults (`via on`, `forwarded_for on`). Nothing else about the client or Ferry (no request ID, no
    /// X-Forwarded-Proto/Host) is added on the way to an outside destination. One pass over the fields,
    /// written straight into the request bytes by the caller.
    @inline(__always)
    static func forwardProxyFields(_ head: HTTPRequestHead, summary: RequestSummary, clientAddress: String, host: String, trusted: Bool, _ emit: (String, String) -> Void) {
        emit("host", host)
        endToEndFields(head, summary: summary, trusted: trusted, skipping: .host, emit)
        if summary.chunked { emit("transfer-encoding", "chunked") }
        if summary.isUpgrade { emit("connection", "upgrade") }
        let via = head.version.minor == 0 ? "1.0 ferry" : "1.1 ferry"
        emit("via", summary.via.map { "\($0), \(via)" } ?? via)
        emit("x-forwarded-for", forwardedFor(summary, clientAddress, trusted: trusted))
    }

    /// The client's fields that travel upstream, in order: hop-by-hop fields, those its Connection names,
    /// Ferry's own namespace and (from an untrusted peer) the forwarding fields are left out; a
    /// non-canonical Content-Length is written as the number Ferry frames the body with; `Upgrade` carries
    /// only the listener's allowed protocols. `skipping` is a field the caller writes itself, as are
    /// X-Forwarded-Proto and -Host with `writesForwardedProtoAndHost`.
    @inline(__always)
    private static func endToEndFields(_ head: HTTPRequestHead, summary: RequestSummary, trusted: Bool, writesForwardedProtoAndHost: Bool = false, skipping: FieldName? = nil, _ emit: (String, String) -> Void) {
        var upgradeWritten = false
        var maxForwardsWritten = false
        for (name, value) in head.headers {
            let kind = FieldName(name)
            if kind == skipping { continue }
            switch kind {
            case .forwardedFor, .via, .expect, .ferryInternal:
                continue
            case .forwardedProto, .forwardedHost:
                if trusted && !writesForwardedProtoAndHost { emit(name, value) }
            case .forwarded:
                if trusted { emit(name, value) }
            case .contentLength where summary.rewritesContentLength:
                continue
            case .maxForwards:
                if let hops = summary.maxForwards {
                    if !maxForwardsWritten { emit(name, String(hops - 1)) }
                    maxForwardsWritten = true
                } else {
                    emit(name, value)
                }
            case .upgrade:
                if summary.isUpgrade, !upgradeWritten, let upgrade = summary.upgrade {
                    upgradeWritten = true
                    emit("upgrade", upgrade)
                }
            default:
                if travels(kind, name: name, summary: summary) { emit(name, value) }
            }
        }
        if summary.rewritesContentLength, !summary.chunked, let length = summary.contentLength { emit("content-length", String(length)) }
    }

    /// X-Forwarded-For to send: the peer, after a trusted peer's own list.
    @inline(__always)
    private static func forwardedFor(_ summary: RequestSummary, _ clientAddress: String, trusted: Bool) -> String {
        guard trusted, let received = summary.forwardedFor else { return clientAddress }
        return "\(received), \(clientAddress)"
    }

    /// A route's header changes and Host rewrite, on a head already built for upstream.
    static func apply(_ changes: HeaderChanges, host: String?, to headers: inout HTTPHeaders) {
        var kept = HTTPHeaders()
        kept.reserveCapacity(headers.count + changes.set.count)
        if let host { kept.add(name: "host", value: host) }
        for (name, value) in headers {
            if changes.drops(name) { continue }
            if host != nil, FieldName(name) == .host { continue }
            kept.add(name: name, value: value)
        }
        for field in changes.set { kept.add(name: field.name, value: field.value) }
        headers = kept
    }

    /// `prefix` in front of `target` (path and query) with exactly one slash between them.
    static func joinPath(_ prefix: String, _ target: String) -> String {
        var p = Substring(prefix)
        while p.hasSuffix("/") { p = p.dropLast() }
        return p.isEmpty ? target : p + target
    }

    /// Whether a client's field goes on to the upstream: end-to-end fields do, hop-by-hop ones and those
    /// the client's Connection names do not, except Upgrade on an upgrade request.
    @inline(__always)
    private static func travels(_ kind: FieldName, name: String, summary: RequestSummary) -> Bool {
        if kind == .upgrade && summary.isUpgrade { return true }
        if kind.isHopByHop { return false }
        return summary.connectionListed.isEmpty || !isListed(name, in: summary.connectionListed)
    }

    /// A client may not use Connection to strip fields Ferry relies on for routing and framing.
    static func isListed(_ name: String, in listed: [String]) -> Bool {
        let lower = name.lowercased()
        guard listed.contains(lower) else { return false }
        return !["host", "content-length", "x-request-id"].contains(lower)
    }

    /// What an upstream response's fields say, read in one pass: its framing (given the request method) and
    /// which hop-by-hop fields it carries.
    struct ResponseFields: Equatable {
        var framing: Framing
        /// A hop-by-hop field other than `Connection: keep-alive`.
        var hasHopByHop = false
        /// `Connection: keep-alive`, which may stay when the client's connection is kept alive too.
        var hasConnectionKeepAlive = false
        /// Content-Length or Transfer-Encoding is present (a 204 or 304 with them may be followed by body
        /// bytes that must never be read as the next response).
        var declaresBody = false
        /// Lower-case names the response's Connection field lists (RFC 9110 §7.6.1): removed downstream.
        var connectionListed: [String] = []
    }

    /// Reads a response's fields one by one (so that they can be serialized in the same pass).
    struct ResponseInspector {
        private var chunked = false
        /// Transfer-Encoding seen in a head read as bytes (whose framing the decoder decided).
        private var transferCoded = false
        private var length = false
        private var hasHopByHop = false
        private var hasConnectionKeepAlive = false
        private var connectionListed: [String] = []

        @inline(__always)
        mutating func visit(_ name: String, _ value: String) {
            visit(FieldName(name), value)
        }

        /// A field of a received head, as bytes (its framing is the decoder's: `fields(framing:)`): a `String`
        /// is made only of a Connection value.
        @inline(__always)
        mutating func visit(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
            let kind = FieldName(bytes: name)
            switch kind {
            case .transferEncoding:
                transferCoded = true
                hasHopByHop = true
            case .connection: visit(kind, String(decoding: value, as: UTF8.self))
            case .contentLength: length = true
            default: if kind.isHopByHop { hasHopByHop = true }
            }
        }

        @inline(__always)
        private mutating func visit(_ kind: FieldName, _ value: String) {
            switch kind {
            case .transferEncoding:
                chunked = chunked || value.lowercased().contains("chunked")
                hasHopByHop = true
            case .contentLength:
                length = true
            case .connection where FieldName.equalsIgnoringCase(value, "keep-alive"):
                hasConnectionKeepAlive = true
            case .connection:
                hasHopByHop = true
                for token in value.split(separator: ",") {
                    let t = token.trimmingSpaces
                    if t.isEmpty || FieldName.equalsIgnoringCase(t, "keep-alive") || FieldName.equalsIgnoringCase(t, "close") || FieldName.equalsIgnoringCase(t, "upgrade") { continue }
                    connectionListed.append(t.lowercased())
                }
            default:
                if kind.isHopByHop { hasHopByHop = true }
            }
        }

        /// What the fields visited say, for a response the decoder framed as `framing`.
        func fields(framing: Framing) -> ResponseFields {
            ResponseFields(framing: framing, hasHopByHop: hasHopByHop, hasConnectionKeepAlive: hasConnectionKeepAlive,
                           declaresBody: chunked || transferCoded || length, connectionListed: connectionListed)
        }

        /// What the fields visited say, for a response with `status` to a `requestMethod` request.
        func fields(status: HTTPResponseStatus, requestMethod: HTTPMethod) -> ResponseFields {
            let code = status.code
            let bodiless = requestMethod == .HEAD || (100..<200).contains(code) || code == 204 || code == 304
            let framing: Framing = bodiless ? .none : chunked ? .chunked : length ? .contentLength : .untilClose
            return ResponseFields(framing: framing, hasHopByHop: hasHopByHop, hasConnectionKeepAlive: hasConnectionKeepAlive,
                                  declaresBody: chunked || length, connectionListed: connectionListed)
        }
    }

    static func inspectResponse(_ head: HTTPResponseHead, requestMethod: HTTPMethod) -> ResponseFields {
        var inspector = ResponseInspector()
        for (name, value) in head.headers { inspector.visit(name, value) }
        return inspector.fields(status: head.status, requestMethod: requestMethod)
    }

    /// Response framing as received from the upstream, given the request method.
    static func responseFraming(_ head: HTTPResponseHead, requestMethod: HTTPMethod) -> Framing {
        inspectResponse(head, requestMethod: requestMethod).framing
    }

    /// Whether Ferry chunk-frames the body it sends downstream: bodies without a length, to HTTP/1.1 clients.
    static func chunksDownstream(upstreamFraming: Framing, requestVersion: HTTPVersion) -> Bool {
        (upstreamFraming == .chunked || upstreamFraming == .untilClose) && requestVersion.minor >= 1
    }

    /// Whether the response's Connection field names this field (never the framing fields Ferry relies on).
    @inline(__always)
    private static func listedInConnection(_ name: String, _ fields: ResponseFields) -> Bool {
        guard !fields.connectionListed.isEmpty else { return false }
        let kind = FieldName(name)
        if kind == .contentLength || kind == .transferEncoding { return false }
        return fields.connectionListed.contains(name.lowercased())
    }

    /// What a response head needs changed on its way downstream (decided from its fields alone).
    enum ResponseChange: Equatable {
        /// It goes on as received.
        case none
        /// A `101` the client asked for: the end-to-end fields and `Upgrade`, then `Connection: upgrade`.
        case upgrade
        /// Hop-by-hop fields and those the Connection field lists are dropped (and Content-Length when
        /// `dropsLength`); Ferry adds `Transfer-Encoding: chunked` when `chunked`, and its own Connection field.
        case rewrite(chunked: Bool, dropsLength: Bool, connection: ConnectionField)
    }

    enum ConnectionField: Equatable {
        case none, close, keepAlive
    }

    /// What must change in a response head with these fields; `keepAlive` turns false when the body can only
    /// end with the connection (an HTTP/1.0 client of a chunked or close-delimited body).
    static func responseChange(
        status: HTTPResponseStatus, version upstreamVersion: HTTPVersion, fields: ResponseFields, requestVersion: HTTPVersion,
        keepAlive: inout Bool, isUpgrade: Bool
    ) -> ResponseChange {
        let upstreamFraming = fields.framing
        let version: HTTPVersion = requestVersion.minor == 0 ? .http1_0 : .http1_1
        if isUpgrade && status == .switchingProtocols { return .upgrade }
        let chunkedDownstream = chunksDownstream(upstreamFraming: upstreamFraming, requestVersion: requestVersion)
        if (upstreamFraming == .chunked || upstreamFraming == .untilClose) && !chunkedDownstream {
            // An HTTP/1.0 client gets a body without length: it ends when the connection closes.
            keepAlive = false
        }
        let needsConnectionField = !keepAlive || requestVersion.minor == 0
        // A 204 never carries Content-Length (RFC 9110 §8.6): a client that believed one would wait for
        // body bytes, or read the next response as them.
        let dropsLength = status == .noContent && fields.declaresBody
        // "Connection: keep-alive" is as true of Ferry's hop as of the upstream's: it may stay.
        let hasHopByHop = fields.hasHopByHop || (fields.hasConnectionKeepAlive && !(keepAlive && requestVersion.minor >= 1))
        if !hasHopByHop && !chunkedDownstream && !needsConnectionField && !dropsLength && upstreamVersion == version {
            return .none
        }
        let connection: ConnectionField = !keepAlive ? .close : requestVersion.minor == 0 ? .keepAlive : .none
        return .rewrite(chunked: chunkedDownstream, dropsLength: dropsLength, connection: connection)
    }

    /// The bytes of the response head to send downstream for `view` (inspected into `fields`): the received
    /// head as it is when nothing is to change, else written from the received field lines it keeps, or (an
    /// accepted upgrade) its end-to-end fields and `Connection: upgrade`. `keepAlive` says whether the client's
    /// connection stays open after the response (cleared when the body can only end with the connection).
    /// `setting` are the route's response fields: each replaces received fields of its name (not on a `101`).
    static func downstreamHead(
        _ view: HTTP1ResponseHeadView, fields: ResponseFields, requestVersion: HTTPVersion, keepAlive: inout Bool, isUpgrade: Bool,
        setting: [ResponseHeader] = [], allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        switch responseChange(status: view.status, version: view.version, fields: fields, requestVersion: requestVersion, keepAlive: &keepAlive, isUpgrade: isUpgrade) {
        case .none where setting.isEmpty:
            return ResponseSerializer.head(statusLineOf: view, allocator: allocator)
        case .none:
            return rewrittenResponseBytes(view, requestVersion: view.version, chunked: false, dropsLength: false, connection: .none, fields: fields, setting: setting, allocator: allocator)
        case .rewrite(let chunked, let dropsLength, let connection):
            return rewrittenResponseBytes(view, requestVersion: requestVersion, chunked: chunked, dropsLength: dropsLength, connection: connection, fields: fields, setting: setting, allocator: allocator)
        case .upgrade:
            return ResponseSerializer.head(upgradedResponse(view.head, fields: fields, requestVersion: requestVersion), allocator: allocator)
        }
    }

    /// A `101` the client asked for, as sent downstream: its end-to-end fields and `Upgrade`, then
    /// `Connection: upgrade`.
    static func upgradedResponse(_ head: HTTPResponseHead, fields: ResponseFields, requestVersion: HTTPVersion) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        for (name, value) in head.headers where (!FieldName(name).isHopByHop || FieldName(name) == .upgrade) && !listedInConnection(name, fields) {
            headers.add(name: name, value: value)
        }
        headers.add(name: "connection", value: "upgrade")
        return HTTPResponseHead(version: requestVersion.minor == 0 ? .http1_0 : .http1_1, status: head.status, headers: headers)
    }

    /// A received head after a `.rewrite` change: Ferry's status line, the received field lines it keeps,
    /// copied as bytes (no `String` per field), then the fields it adds.
    private static func rewrittenResponseBytes(_ view: HTTP1ResponseHeadView, requestVersion: HTTPVersion, chunked: Bool, dropsLength: Bool,
                                       connection: ConnectionField, fields: ResponseFields, setting: [ResponseHeader], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64 + view.bytes.readableBytes)
        ResponseSerializer.statusLine(version: requestVersion.minor == 0 ? .http1_0 : .http1_1, status: view.status, into: &buffer)
        view.forEachField { name, value in
            let kind = FieldName(bytes: name)
            if kind.isHopByHop || (dropsLength && kind == .contentLength) { return }
            if !fields.connectionListed.isEmpty, kind != .contentLength, kind != .transferEncoding,
               fields.connectionListed.contains(where: { HTTP1Grammar.equalsIgnoringCase(name, $0) }) { return }
            if !setting.isEmpty, setting.contains(where: { HTTP1Grammar.equalsIgnoringCase(name, $0.name) }) { return }
            buffer.writeBytes(name)
            buffer.writeStaticString(": ")
            buffer.writeBytes(value)
            buffer.writeStaticString("\r\n")
        }
        for field in setting {
            buffer.writeString(field.name)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        if chunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
        switch connection {
        case .close: buffer.writeStaticString("connection: close\r\n")
        case .keepAlive: buffer.writeStaticString("connection: keep-alive\r\n")
        case .none: break
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }
}
