import NIOCore
import NIOHTTP1
import NIOPosix

/// A small in-process HTTP origin for `ferry demo`: answers every request with the origin's name and
/// what it received, so a user sees which upstream served them and which headers Ferry added.
public struct DemoOrigin: Sendable {
    public let name: String
    public let channel: Channel

    public static func start(name: String, group: EventLoopGroup, host: String = "127.0.0.1", port: Int = 0) throws -> DemoOrigin {
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(DemoOriginHandler(name: name))
                }
            }
            .bind(host: host, port: port)
            .wait()
        return DemoOrigin(name: name, channel: channel)
    }

    public var port: Int { channel.localAddress?.port ?? 0 }
}

final class DemoOriginHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let name: String
    private var head: HTTPRequestHead?
    private var bodyBytes = 0

    init(name: String) {
        self.name = name
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodyBytes = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            guard let head else { return }
            var text = "origin: \(name)\n\(head.method) \(head.uri) HTTP/\(head.version.major).\(head.version.minor)\n"
            for (field, value) in head.headers { text += "\(field): \(value)\n" }
            if bodyBytes > 0 { text += "(\(bodyBytes) body bytes)\n" }
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/plain; charset=utf-8")
            headers.add(name: "content-length", value: String(text.utf8.count))
            headers.add(name: "x-origin", value: name)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            self.head = nil
        }
    }
}

@available(*, unavailable)
extension DemoOriginHandler: Sendable {}
