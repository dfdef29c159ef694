import NIOCore
import NIOHTTP1

/// The Ferry end of one HTTP/1.1 connection to an upstream endpoint. While leased it passes response parts
/// to its owner (the downstream `HTTPProxyHandler`); while idle in the pool it only watches for a close.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler, HTTP1PartSink {
    typealias InboundIn = HTTP1ResponsePart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let address: SocketAddress
    /// Where this connection goes back in the pool: its address and the TLS context it was made with.
    let poolKey: UpstreamPool.Key
    private weak var pool: UpstreamPool?
    /// The handler nearest the socket that request bytes go through (`UpstreamRequestWriter`).
    private let writer: UpstreamRequestWriter
    /// The methods of the requests sent, which the response decoder frames responses by (a HEAD response
    /// has no body).
    private let methods: HTTP1Parser.MethodQueue
    private var context: ChannelHandlerContext?
    /// The downstream handler using this connection now.
    var owner: HTTPProxyHandler?
    var isIdleInPool = false
    /// Its pool's bucket for `poolKey`, once it has been returned to the pool.
    var poolBucket: UpstreamPool.Bucket?
    var idleSince: NIODeadline = .uptimeNanoseconds(0)
    private var pendingRead = false

    init(address: SocketAddress, tls: ObjectIdentifier? = nil, via: String? = nil, writer: UpstreamRequestWriter, decoder: HTTP1ResponseDecoder, pool: UpstreamPool) {
        self.address = address
        self.writer = writer
        self.methods = decoder.methods
        self.poolKey = UpstreamPool.Key(address: address, tls: tls, via: via)
        self.pool = pool
    }

    /// Set when the channel goes inactive; cheaper to read than asking the channel.
    private(set) var isClosed = false
    var isWritable: Bool { context?.channel.isWritable ?? false }
    var channel: Channel? { context?.channel }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        isClosed = true
    }

    // MARK: writes from the owner

    /// A request head serialized by Ferry: the response decoder is told the method first (it frames a
    /// HEAD response by it), then the bytes go out.
    func writeHead(_ bytes: ByteBuffer, method: HTTPMethod) {
        methods.append(method)
        writer.writeBytes(bytes)
    }

    /// Request bytes after the head (body, chunk framing).
    func writeBytes(_ bytes: ByteBuffer) {
        writer.writeBytes(bytes)
    }

    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    func flush() {
        context?.flush()
    }

    func close() {
        owner = nil
        context?.close(promise: nil)
    }

    /// The downstream became writable again: resume reading the response.
    func resumeReading() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    // MARK: channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received(unwrapInboundIn(data), context: context)
    }

    /// A part from the decoder, handed over directly (`HTTP1PartSink`).
    func decoded(_ part: HTTP1ResponsePart) {
        guard let context else { return }
        received(part, context: context)
    }

    private func received(_ part: HTTP1ResponsePart, context: ChannelHandlerContext) {
        if let owner {
            owner.upstreamReceived(part, from: self)
        } else {
            // Bytes from an idle upstream: it is not speaking HTTP the way we expect. Drop it.
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        pool?.remove(self)
        if let owner {
            self.owner = nil
            owner.upstreamClosed(self)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let owner {
            self.owner = nil
            owner.upstreamFailed(self, error: error)
        }
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            owner?.upstreamBecameWritable()
        }
    }

    func read(context: ChannelHandlerContext) {
        if let owner, !owner.downstreamWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}
