import FerryModel
@testable import FerryProxy
import Testing

struct AccessLogFormatterTests {
    var event: AccessLogEvent {
        var e = AccessLogEvent(startTime: WallClock.Instant(seconds: 1796031600, nanoseconds: 123_000_000), listener: "web", downstream: "10.0.0.9:5555")
        e.requestID = "rid"
        e.method = "GET"
        e.authority = "shop.example.com"
        e.path = "/api?q=\"x\""
        e.route = "api"
        e.cluster = "api"
        e.upstream = "10.0.0.5:8080"
        e.status = 503
        e.bytesReceived = 12
        e.bytesSent = 34
        e.durationNanos = 5_678_000
        e.upstreamNanos = 4_000_000
        e.flags = [.upstreamConnectionFailure, .upstreamRetryLimitExceeded]
        e.userAgent = "curl/8"
        e.forwardedFor = ""
        e.attempts = 3
        return e
    }

    @Test func envoyDefaultFormat() {
        #expect(AccessLogFormatter.line(event, format: .envoy) ==
            "[2026-11-30T09:40:00.123Z] \"GET /api?q=\"x\" HTTP/1.1\" 503 UF,URX 12 34 5 4 \"-\" \"curl/8\" \"rid\" \"shop.example.com\" \"10.0.0.5:8080\"\n")
    }

    @Test func combinedFormat() {
        #expect(AccessLogFormatter.line(event, format: .combined) ==
            "10.0.0.9 - - [30/Nov/2026:09:40:00 +0000] \"GET /api?q=\"x\" HTTP/1.1\" 503 34 \"-\" \"curl/8\"\n")
    }

    @Test func jsonEscapesAndCarriesTheSchema() {
        let line = AccessLogFormatter.line(event, format: .json)
        #expect(line.hasPrefix("{\"time\":\"2026-11-30T09:40:00.123Z\",\"role\":\"proxy\",\"listener\":\"web\""))
        #expect(line.contains("\"path\":\"/api?q=\\\"x\\\"\""))
        #expect(line.contains("\"duration_ms\":5.678"))
        #expect(line.contains("\"upstream_ms\":4.000"))
        #expect(line.contains("\"response_flags\":\"UF,URX\""))
        #expect(line.hasSuffix("}\n"))
    }

    @Test func noneWritesNothing() {
        #expect(AccessLogFormatter.line(event, format: .none) == "")
    }

    @Test func requestIdsAreUUIDv4Text() {
        var random = SystemRandomNumberGenerator()
        let id = RequestID.make(using: &random)
        #expect(id.count == 36)
        let parts = id.split(separator: "-")
        #expect(parts.map(\.count) == [8, 4, 4, 4, 12])
        #expect(parts[2].first == "4")
    }
}

@Suite struct SquidFormatTests {
    @Test func squidNativeLines() {
        var e = AccessLogEvent(startTime: WallClock.Instant(seconds: 1_764_496_500, nanoseconds: 7_000_000), listener: "egress", downstream: "10.0.0.5:40000")
        e.method = "CONNECT"
        e.path = "api.example.com:443"
        e.status = 200
        e.bytesSent = 5120
        e.durationNanos = 12_400_000
        e.upstream = "93.184.216.34:443"
        #expect(AccessLogFormatter.line(e, format: .squid) == "1764496500.007     12 10.0.0.5 TCP_TUNNEL/200 5120 CONNECT api.example.com:443 - HIER_DIRECT/93.184.216.34 -\n")
        var denied = e
        denied.method = "GET"
        denied.path = "http://blocked.example/"
        denied.status = 403
        denied.upstream = ""
        denied.verdict = Verdict(allowed: false, rule: 1, text: "deny .blocked.example", reason: "")
        #expect(AccessLogFormatter.line(denied, format: .squid).contains(" TCP_DENIED/403 5120 GET http://blocked.example/ - HIER_NONE/- -"))
    }
}
