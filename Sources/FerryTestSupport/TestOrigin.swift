import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// An HTTP/1.1 origin for tests, on 127.0.0.1 port 0 unless told otherwise. Paths:
/// - `/bytes/N` streams N bytes with Content-Length (written as the socket drains);
/// - `/chunked/N` streams N bytes chunked; `/until-close/N` N bytes then close (no framing);
/// - `/sink` reads the whole body and answers with its size;
/// - `/slow/MS` answers after MS milliseconds; `/hold/N` sends a head, then 1 byte every 100 ms, N times;
/// - `/stall/MS` sends a head and 1 of 2 bytes, then the other after MS milliseconds;
/// - `/status/N` answers status N; `/close` closes without answering; `/truncate/N` sends half of N bytes, then closes;
/// - `/ws` accepts a WebSocket upgrade and echoes frames;
/// - anything else: a JSON echo of the request (method, uri, headers, body size, origin name).
public final class TestOrigin: Sendable {
    public let name: String
    public let channel: Channel
    private let stats: NIOLockedValueBox<Stats>

    public struct Stats: Sendable {
        public var connections = 0
        public var requests = 0
        public var heads = 0
        public var lastHeaders: [(String, String)] = []
    }

    public var port: Int { channel.localAddress!.port! }
    public let host: String
    public var address: String { "\(host):\(port)" }
    public var connectionsAccepted: Int { stats.withLockedValue { $0.connections } }
    public var requestsServed: Int { stats.withLockedValue { $0.requests } }
    /// Request heads received (counted before the response starts).
    public var requestsStarted: Int { stats.withLockedValue { $0.heads } }
    public var lastHeaders: [(String, String)] { stats.withLockedValue { $0.lastHeaders } }

    /// Listens on `host` (a loopback address such as 127.0.0.2) and `port` (0: any free one).
    public init(name: String, group: EventLoopGroup, host: String = "127.0.0.1", port: Int = 0) throws {
        self.name = name
        self.host = host
        let stats = NIOLockedValueBox(Stats())
        self.stats = stats
        self.channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                stats.withLockedValue { $0.connections += 1 }
                let upgrader = NIOWebSocketServerUpgrader(
                    shouldUpgrade: { channel, head in
                        channel.eventLoop.makeSucceededFuture(head.uri == "/ws" ? HTTPHeaders() : nil)
                    },
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            let sync = channel.pipeline.syncOperations
                            sync.removeHandler(context: try sync.context(handlerType: TestOriginHandler.self), promise: nil)
                            try sync.addHandler(WebSocketEchoHandler())
                        }
                    })
                return channel.eventLoop.makeCompletedFuture {
                    let handler = TestOriginHandler(name: name, stats: stats)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }),
                        withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: host, port: port)
            .wait()
    }

    public func close() {
        try? channel.close().wait()
    }
}

final class TestOriginHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let name: String
    let stats: NIOLockedValueBox<TestOrigin.Stats>
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var remaining = 0
    private var chunked = false
    private var closeAfter = false
    private var context: ChannelHandlerContext?

    init(name: String, stats: NIOLockedValueBox<TestOrigin.Stats>) {
        self.name = name
        self.stats = stats
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodyBytes = 0
            stats.withLockedValue {
                $0.lastHeaders = head.headers.map { ($0.name, $0.value) }
                $0.heads += 1
            }
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            guard let head else { return }
            stats.withLockedValue { $0.requests += 1 }
            respond(head, context: context)
        }
    }

    private func respond(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let parts = head.uri.split(separator: "?")[0].split(separator: "/").map(String.init)
        let first = parts.first ?? ""
        let number = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        switch first {
        case "bytes", "chunked", "until-close":
            var headers = HTTPHeaders()
            chunked = first == "chunked"
            closeAfter = first == "until-close"
            if chunked {
                headers.add(name: "transfer-encoding", value: "chunked")
            } else if !closeAfter {
                headers.add(name: "content-length", value: String(number))
            } else {
                headers.add(name: "connection", value: "close")
            }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: closeAfter ? .http1_0 : head.version, status: .ok, headers: headers))), promise: nil)
            remaining = number
            pump(context: context)
        case "sink":
            send(status: .ok, body: "received \(bodyBytes) bytes\n", context: context)
        case "slow":
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(number))) {
                self.send(status: .ok, body: "slow \(number)ms from \(self.name)\n", context: context)
            }
        case "hold":
            var headers = HTTPHeaders()
            headers.add(name: "transfer-encoding", value: "chunked")
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
            drip(context: context, left: number > 0 ? number : 500)
        case "stall":
            // Sends the head and one byte of two, then the second byte only after N ms: a stalled stream.
            var headers = HTTPHeaders()
            headers.add(name: "content-length", value: "2")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "a")))), promise: nil)
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(number))) {
                context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "b")))), promise: nil)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            }
        case "truncate":
            // Promises N bytes, sends half, then closes: an upstream failing mid-response.
            var headers = HTTPHeaders()
            headers.add(name: "content-length", value: String(number))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: number / 2)
            buffer.writeRepeatingByte(UInt8(ascii: "x"), count: number / 2)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer)))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case "status":
            send(status: HTTPResponseStatus(statusCode: number), body: "status \(number) from \(name)\n", context: context)
        case "close":
            context.close(promise: nil)
        default:
            let headers = head.headers.map { ["name": $0.name, "value": $0.value] }
            let object: [String: Any] = ["origin": name, "method": head.method.rawValue, "uri": head.uri, "headers": headers, "body_bytes": bodyBytes]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            send(status: .ok, body: String(decoding: data, as: UTF8.self) + "\n", context: context, contentType: "application/json")
        }
    }

    private func send(status: HTTPResponseStatus, body: String, context: ChannelHandlerContext, contentType: String = "text/plain") {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.utf8.count))
        headers.add(name: "x-origin", value: name)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func drip(context: ChannelHandlerContext, left: Int) {
        guard left > 0, context.channel.isActive else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: ".")))), promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(100)) {
            self.drip(context: context, left: left - 1)
        }
    }

    /// Writes the streamed body while the socket accepts it; resumes on writability.
    private func pump(context: ChannelHandlerContext) {
        let chunk = 64 * 1024
        while remaining > 0, context.channel.isWritable {
            let n = min(chunk, remaining)
            var buffer = context.channel.allocator.buffer(capacity: n)
            buffer.writeRepeatingByte(UInt8(ascii: "x"), count: n)
            remaining -= n
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if remaining == 0 {
            let closeAfter = self.closeAfter
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if closeAfter { context.close(promise: nil) }
            }
            self.closeAfter = false
        } else {
            context.flush()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, remaining > 0 { pump(context: context) }
        context.fireChannelWritabilityChanged()
    }
}

/// Echoes WebSocket text and binary frames; answers pings; closes on close.
final class WebSocketEchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        default:
            break
        }
    }
}
