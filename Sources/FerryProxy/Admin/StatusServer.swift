import FerryModel
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 listener whose every answer is computed by `respond` on the event loop: the admin
/// listener, and the health and metrics ports of roles without a data plane (service-proxy).
public enum StatusServer {
    /// `(status, content type, body)` for a request head.
    public typealias Responder = @Sendable (HTTPRequestHead) -> (HTTPResponseStatus, String, String)

    public static func bind(_ address: HostPort, group: EventLoopGroup, respond: @escaping Responder) throws -> Channel {
        try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(StatusHandler(respond: respond))
                }
            }
            .bind(host: address.host, port: address.port)
            .wait()
    }
}

/// Answers each request with its responder's result; small bodies only.
final class StatusHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let respond: StatusServer.Responder
    private var head: HTTPRequestHead?

    init(respond: @escaping StatusServer.Responder) {
        self.respond = respond
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let (status, contentType, body) = respond(head)
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: contentType)
            headers.add(name: "content-length", value: String(body.utf8.count))
            if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            }
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}

@available(*, unavailable)
extension StatusHandler: Sendable {}
