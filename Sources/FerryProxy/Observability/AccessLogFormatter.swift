import FerryModel

/// Renders an `AccessLogEvent` as one line in the configured format.
public enum AccessLogFormatter {
    public static func render(_ e: AccessLogEvent, format: AccessLogSettings.Format, into out: inout [UInt8]) {
        switch format {
        case .json: json(e, into: &out)
        case .envoy: envoy(e, into: &out)
        case .combined: combined(e, into: &out)
        case .squid: squid(e, into: &out)
        case .none: return
        }
        out.append(UInt8(ascii: "\n"))
    }

    public static func line(_ e: AccessLogEvent, format: AccessLogSettings.Format) -> String {
        var out: [UInt8] = []
        render(e, format: format, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func json(_ e: AccessLogEvent, into out: inout [UInt8]) {
        var w = JSONLineWriter(out: out)
        w.field("time", string: e.startTime.iso8601)
        w.field("role", string: e.role)
        w.field("listener", string: e.listener)
        w.field("downstream", string: e.downstream)
        w.field("request_id", string: e.requestID)
        w.field("method", string: e.method)
        w.field("authority", string: e.authority)
        w.field("path", string: e.path)
        w.field("protocol", string: e.httpVersion)
        w.field("route", string: e.route)
        w.field("cluster", string: e.cluster)
        w.field("upstream", string: e.upstream)
        w.field("status", int: e.status)
        w.field("bytes_received", int: e.bytesReceived)
        w.field("bytes_sent", int: e.bytesSent)
        w.field("duration_ms", millis: e.durationNanos)
        if let u = e.upstreamNanos { w.field("upstream_ms", millis: u) }
        w.field("attempts", int: e.attempts)
        w.field("response_flags", string: e.flags.text)
        w.field("user_agent", string: e.userAgent)
        if !e.user.isEmpty { w.field("user", string: e.user) }
        if let k = e.kubernetes {
            w.field("k8s_verb", string: k.verb)
            if let path = k.nonResourcePath {
                w.field("k8s_path", string: path)
            } else {
                w.field("k8s_resource", string: k.resourceName)
                if !k.namespace.isEmpty { w.field("k8s_namespace", string: k.namespace) }
                if !k.name.isEmpty { w.field("k8s_name", string: k.name) }
            }
        }
        if let v = e.verdict {
            w.field("verdict", string: v.allowed ? "allow" : "deny")
            w.field("rule", string: v.rule.map { "\($0): \(v.text)" } ?? v.text)
            if !v.allowed { w.field("reason", string: v.reason) }
        }
        if let source = e.source {
            w.field("source_namespace", string: source.namespace)
            w.field("source_pod", string: source.pod)
        }
        if let i = e.interception {
            w.field("original_destination", string: i.originalDestination)
            w.field("decided_on", string: i.decidedOn)
        }
        w.close()
        out = w.out
    }

    /// Envoy's default format:
    /// `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS%
    /// %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%"
    /// "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"`
    static func envoy(_ e: AccessLogEvent, into out: inout [UInt8]) {
        func dash(_ s: String) -> String { s.isEmpty ? "-" : s }
        let upstreamTime = e.upstreamNanos.map { String($0 / 1_000_000) } ?? "-"
        let line = "[\(e.startTime.iso8601)] \"\(dash(e.method)) \(dash(e.path)) \(e.httpVersion)\" \(e.status) \(e.flags.text) "
            + "\(e.bytesReceived) \(e.bytesSent) \(e.durationNanos / 1_000_000) \(upstreamTime) \"\(dash(e.forwardedFor))\" "
            + "\"\(dash(e.userAgent))\" \"\(dash(e.requestID))\" \"\(dash(e.authority))\" \"\(dash(e.upstream))\""
        out.append(contentsOf: line.utf8)
    }

    /// NCSA combined: `%h - - [%t] "%r" %>s %b "%{Referer}i" "%{User-agent}i"`.
    static func combined(_ e: AccessLogEvent, into out: inout [UInt8]) {
        func dash(_ s: String) -> String { s.isEmpty ? "-" : s }
        let host = e.downstream.lastIndex(of: ":").map { String(e.downstream[..<$0]) } ?? e.downstream
        let bytes = e.bytesSent == 0 ? "-" : String(e.bytesSent)
        let line = "\(host) - - [\(e.startTime.commonLogTime)] \"\(e.method) \(e.path) \(e.httpVersion)\" \(e.status) \(bytes) "
            + "\"\(dash(e.referer))\" \"\(dash(e.userAgent))\""
        out.append(contentsOf: line.utf8)
    }
}

extension AccessLogFormatter {
    /// Squid's native `access.log` line (`logformat squid`):
    /// `%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt`, e.g.
    /// `1764496500.123     12 10.0.0.5 TCP_TUNNEL/200 5120 CONNECT api.example.com:443 - HIER_DIRECT/93.184.216.34 -`.
    static func squid(_ e: AccessLogEvent, into out: inout [UInt8]) {
        let client = e.downstream.lastIndex(of: ":").map { String(e.downstream[..<$0]) } ?? e.downstream
        let millis = e.durationNanos / 1_000_000
        let elapsed = String(millis)
        let padded = String(repeating: " ", count: max(0, 6 - elapsed.count)) + elapsed
        let code: String
        if e.verdict?.allowed == false {
            code = "TCP_DENIED"
        } else if e.method == "CONNECT" && e.status == 200 {
            code = "TCP_TUNNEL"
        } else if e.upstream.isEmpty {
            code = "NONE_NONE"
        } else {
            code = "TCP_MISS"
        }
        let status = e.status < 100 ? String(repeating: "0", count: 3 - String(e.status).count) + String(e.status) : String(e.status)
        let upstreamHost = e.upstream.lastIndex(of: ":").map { String(e.upstream[..<$0]) } ?? e.upstream
        let hierarchy = e.upstream.isEmpty ? "HIER_NONE/-" : "HIER_DIRECT/\(upstreamHost)"
        let line = "\(e.startTime.seconds).\(pad3(e.startTime.nanoseconds / 1_000_000)) \(padded) \(client) \(code)/\(status) \(e.bytesSent) \(e.method) \(e.path) \(e.user.isEmpty ? "-" : e.user) \(hierarchy) -"
        out.append(contentsOf: line.utf8)
    }

    private static func pad3(_ n: Int) -> String {
        n < 10 ? "00\(n)" : n < 100 ? "0\(n)" : "\(n)"
    }
}

/// Writes one JSON object field by field, escaping strings per RFC 8259.
struct JSONLineWriter {
    var out: [UInt8]
    private var first = true

    init(out: [UInt8]) {
        self.out = out
        self.out.append(UInt8(ascii: "{"))
    }

    private mutating func key(_ k: String) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: k.utf8)
        out.append(contentsOf: "\":".utf8)
    }

    mutating func field(_ k: String, string v: String) {
        key(k)
        JSONLineWriter.appendQuoted(v, to: &out)
    }

    mutating func field(_ k: String, int v: Int) {
        key(k)
        out.append(contentsOf: String(v).utf8)
    }

    /// Nanoseconds rendered as milliseconds with three decimals.
    mutating func field(_ k: String, millis nanos: Int64) {
        key(k)
        let micros = max(0, nanos / 1000)
        let fraction = micros % 1000
        out.append(contentsOf: "\(micros / 1000).".utf8)
        if fraction < 100 { out.append(UInt8(ascii: "0")) }
        if fraction < 10 { out.append(UInt8(ascii: "0")) }
        out.append(contentsOf: String(fraction).utf8)
    }

    mutating func close() {
        out.append(UInt8(ascii: "}"))
    }

    static func appendQuoted(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
            case UInt8(ascii: "\r"): out.append(contentsOf: "\\r".utf8)
            case UInt8(ascii: "\t"): out.append(contentsOf: "\\t".utf8)
            case 0..<0x20, 0x7f:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xf)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
