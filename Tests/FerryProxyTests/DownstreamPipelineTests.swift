@testable import FerryProxy
import FerryModel
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Foundation
import Testing

/// The downstream pipeline on an EmbeddedChannel: exact bytes in, exact bytes and log events out.
/// Routes here answer locally, so no upstream is involved.
final class PipelineFixture {
    let channel = EmbeddedChannel()
    let accessLog = AccessLogWriter(fd: -1)

    static let defaultRoutes = [
        Route(name: "health", match: RouteMatch(path: .exact("/healthz")), action: .directResponse(status: 200, body: "ok\n")),
        Route(name: "moved", match: RouteMatch(path: .prefix("/old")), action: .redirect(Redirect(path: "/new", status: 308))),
        Route(name: "echo-post", match: RouteMatch(path: .exact("/submit"), methods: ["POST"]), action: .directResponse(status: 202, body: "accepted\n")),
    ]

    init(limits: HTTPLimits = HTTPLimits(), virtualHosts: [VirtualHost]? = nil, configure: (inout HTTPConnectionManager) -> Void = { _ in }) throws {
        var http = HTTPConnectionManager(limits: limits, virtualHosts: virtualHosts ?? [VirtualHost(name: "all", domains: [.any], routes: Self.defaultRoutes)])
        configure(&http)
        let config = ConfigSnapshot(
            listeners: [Listener(name: "web", address: HostPort(host: "127.0.0.1", port: 0), http: http)],
            clusters: [])
        let metrics = ProxyMetrics()
        let compiled = try CompiledSnapshot(config, metrics: metrics)
        let environment = ListenerEnvironment(
            listenerName: "web", store: SnapshotStore(compiled), metrics: metrics, accessLog: accessLog,
            loops: try LoopLocals(group: channel.embeddedEventLoop, clockFromLoop: true), boundSnapshot: compiled)
        try DownstreamPipeline.configure(channel, environment: environment, limits: compiled.listeners["web"]!.decoderLimits)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
    }

    /// Sends `text` and returns everything written back.
    func exchange(_ text: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: text))
        channel.embeddedEventLoop.run()
        var out = ""
        while let data = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { out += String(buffer: buffer) }
        }
        return out
    }

    var isOpen: Bool { channel.isActive }
    var logLines: [String] { accessLog.bufferedText().split(separator: "\n").map(String.init) }
}

struct DownstreamPipelineTests {
    @Test func aDirectResponseIsWrittenExactlyAndTheConnectionStaysOpen() throws {
        let f = try PipelineFixture()
        let out = try f.exchange("GET /healthz HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: abc\r\n\r\n")
        #expect(out == "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 3\r\nx-request-id: abc\r\nserver: ferry\r\n\r\nok\n")
        #expect(f.isOpen)
        #expect(f.logLines.count == 1)
        #expect(f.logLines.first?.contains("\"route\":\"health\"") == true)
        #expect(f.logLines.first?.contains("\"response_flags\":\"LR\"") == true)
    }

    @Test func noRouteIs404WithTheNRFlag() throws {
        let f = try PipelineFixture()
        let out = try f.exchange("GET /nothing HTTP/1.1\r\nHost: a.test\r\n\r\n")
        #expect(out.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(out.hasSuffix("404 Not Found: no route for a.test/nothing\n"))
        #expect(f.isOpen)
        #expect(f.logLines.first?.contains("\"response_flags\":\"NR\"") == true)
    }

    @Test func aRedirectCarriesItsLocation() throws {
        let f = try PipelineFixture()
        let out = try f.exchange("GET /old/page?x=1 HTTP/1.1\r\nHost: a.test:8080\r\n\r\n")
        #expect(out.hasPrefix("HTTP/1.1 308 Permanent Redirect\r\n"))
        #expect(out.contains("location: http://a.test:8080/new\r\n"))
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let f = try PipelineFixture()
        let out = try f.exchange("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nPOST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /missing HTTP/1.1\r\nHost: a\r\n\r\n")
        let statuses = out.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n").filter { $0.hasPrefix("HTTP/1.1 ") }
        #expect(statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 202 Accepted", "HTTP/1.1 404 Not Found"], "\(out)")
        #expect(f.isOpen)
    }

    @Test func connectionCloseIsHonoured() throws {
        let f = try PipelineFixture()
        let out = try f.exchange("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(out.contains("connection: close\r\n"))
        #expect(!f.isOpen)
    }

    @Test func http10ClosesAfterTheResponse() throws {
        let f = try PipelineFixture()
        let out = try f.exchange("GET /healthz HTTP/1.0\r\n\r\n")
        #expect(out.hasPrefix("HTTP/1.0 200 OK\r\n"))
        #expect(!f.isOpen)
    }

    /// Ambiguous or malformed framing (RFC 9112 §2.2, §5.1, §5.2, §6.1, §6.3, §7.1): 400 and the connection closed.
    @Test(arguments: [
        ("CL with TE", "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("differing duplicate CL", "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        ("bare CR", "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Bad: a\rb\r\n\r\n"),
        ("obs-fold", "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n  b\r\n\r\n"),
        ("space before colon", "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Space : b\r\n\r\n"),
        ("TE not ending in chunked", "POST /submit HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
        ("TE in HTTP/1.0", "POST /submit HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("missing Host", "GET /healthz HTTP/1.1\r\n\r\n"),
        ("two Hosts", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("invalid CL", "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello"),
        ("garbage", "HELLO\r\n\r\n"),
    ])
    func ambiguousFramingIsRejected(name: String, request: String) throws {
        let f = try PipelineFixture()
        let out = try f.exchange(request + "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(out.hasPrefix("HTTP/1.1 400 Bad Request\r\n") || out.hasPrefix("HTTP/1.0 400 Bad Request\r\n"), "\(name): \(out)")
        #expect(!out.contains("200 OK"), "\(name): the request behind it must not be served")
        #expect(!f.isOpen, "\(name)")
    }

    /// A chunk-size error after the head: the local answer went out at the head, so the connection is
    /// closed and the request behind the bad chunk is never served.
    @Test func anInvalidChunkSizeClosesTheConnection() throws {
        let f = try PipelineFixture()
        let out = try f.exchange("POST /submit HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(!out.contains("200 OK"))
        #expect(!f.isOpen)
        #expect(f.logLines.contains { $0.contains("DPE") })
    }

    @Test func aLongRequestLineIs414() throws {
        let f = try PipelineFixture()
        let out = try f.exchange("GET /healthz?\(String(repeating: "a", count: 17 * 1024)) HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(out.hasPrefix("HTTP/1.1 414 URI Too Long\r\n"))
        #expect(!f.isOpen)
    }

    @Test func tooManyHeaderFieldsIs431() throws {
        let f = try PipelineFixture()
        let fields = (0..<101).map { "X-F\($0): v\r\n" }.joined()
        let out = try f.exchange("GET /healthz HTTP/1.1\r\nHost: a\r\n\(fields)\r\n")
        #expect(out.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(!f.isOpen)
    }

    @Test func aLargeHeaderBlockIs431() throws {
        let f = try PipelineFixture()
        let big = (0..<10).map { "X-Big\($0): \(String(repeating: "b", count: 7000))\r\n" }.joined()
        let out = try f.exchange("GET /healthz HTTP/1.1\r\nHost: a\r\n\(big)\r\n")
        #expect(out.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(!f.isOpen)
    }

    @Test func aBodyOverTheLimitIs413() throws {
        var limits = HTTPLimits()
        limits.maxRequestBodyBytes = 4
        let f = try PipelineFixture(limits: limits)
        let out = try f.exchange("POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789")
        #expect(out.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"))
    }
}
