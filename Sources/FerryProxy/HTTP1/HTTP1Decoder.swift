import NIOCore
import NIOHTTP1

/// One direction of `HTTP1Parser` in NIO's part types: requests (downstream) or responses (upstream).
protocol HTTP1DirectionParser {
    associatedtype Part
    var state: HTTP1Parser.State { get }
    mutating func parse(_ buffer: inout ByteBuffer, emit: (Part) -> Void) throws
    /// The connection's input ended: a last part (the end of a body read until the close), an error if a
    /// message was under way, or nil.
    func inputEnded(unread: Int) -> Result<Part, HTTP1ParseError>?
}

extension HTTP1RequestParser: HTTP1DirectionParser {
    func inputEnded(unread: Int) -> Result<HTTP1RequestPart, HTTP1ParseError>? {
        endOfInput(unread: unread).map { .failure($0) }
    }
}

extension HTTP1ResponseParser: HTTP1DirectionParser {
    func inputEnded(unread: Int) -> Result<HTTP1ResponsePart, HTTP1ParseError>? {
        endOfInput(unread: unread)
    }
}

/// The handler a decoder hands its parts to directly, instead of through the pipeline: no `NIOAny` box
/// per part (a request part does not fit its inline storage) and no walk through handler contexts.
protocol HTTP1PartSink<Part>: AnyObject {
    associatedtype Part
    func decoded(_ part: Part)
}

/// Received bytes → message parts through Ferry's `HTTP1Parser`, in place of NIO's
/// `ByteToMessageHandler(HTTPRequestDecoder)` / `HTTPResponseDecoder`: one scan of the bytes, Ferry's limits
/// and framing rules applied while scanning. Bytes the parser cannot use yet (a head in pieces) are kept;
/// what follows a CONNECT, an Upgrade request or a 101 is kept unread and passed on as bytes when the
/// handler is removed (the tunnel's glue receives it).
final class HTTP1Decoder<Parser: HTTP1DirectionParser>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Parser.Part

    private var parser: Parser
    /// Where parts go: the next handler, set when the pipeline is built (`DownstreamPipeline`, the upstream
    /// dial). Without one they travel the pipeline.
    var sink: (any HTTP1PartSink<Parser.Part>)?
    /// Received bytes not yet parsed (nil when everything received was used).
    private var unread: ByteBuffer?
    /// Parts are being handed on: a handler after this one may close the channel meanwhile, and the end of
    /// the input is then dealt with once the parser is done.
    private var isParsing = false
    private var inactiveWhileParsing = false
    /// Removed (to make a tunnel) by a handler the parts were handed to: the removal completes once the
    /// parser is done, so the bytes behind the part that ended HTTP go on to the glue.
    private var removalWhileParsing: ChannelHandlerContext.RemovalToken?

    init(_ parser: Parser) {
        self.parser = parser
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var kept = unread {
            unread = nil
            kept.writeBuffer(&buffer)
            buffer = kept
        }
        switch parser.state {
        case .failed:
            return
        case .stopped:
            unread = buffer
            return
        default:
            break
        }
        isParsing = true
        do {
            if let sink {
                try parser.parse(&buffer) { part in sink.decoded(part) }
            } else {
                try parser.parse(&buffer) { part in context.fireChannelRead(wrapInboundOut(part)) }
            }
        } catch {
            buffer.clear()
            context.fireErrorCaught(error)
        }
        isParsing = false
        if buffer.readableBytes > 0 {
            // Compact a large read of which little is left, so one small remainder does not pin it.
            if buffer.readerIndex > 4096, buffer.readableBytes < buffer.readerIndex / 4 { buffer.discardReadBytes() }
            unread = buffer
        }
        if let token = removalWhileParsing {
            removalWhileParsing = nil
            leavePipeline(context: context, removalToken: token)
            return
        }
        if inactiveWhileParsing {
            inactiveWhileParsing = false
            inputEnded(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if isParsing {
            inactiveWhileParsing = true
        } else {
            inputEnded(context: context)
        }
    }

    private func inputEnded(context: ChannelHandlerContext) {
        switch parser.inputEnded(unread: unread?.readableBytes ?? 0) {
        case .success(let part):
            if let sink { sink.decoded(part) } else { context.fireChannelRead(wrapInboundOut(part)) }
        case .failure(let error): context.fireErrorCaught(error)
        case nil: break
        }
        context.fireChannelInactive()
    }

    /// Taken off the pipeline to make a tunnel: the bytes that followed the upgrade belong to the new
    /// protocol, and go on to the glue. (A channel that closes does not come here.) Removed by a handler it
    /// is handing a part to — a 101 or a CONNECT answered in the same read — it leaves once the parser is done.
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        sink = nil
        if isParsing {
            removalWhileParsing = removalToken
        } else {
            leavePipeline(context: context, removalToken: removalToken)
        }
    }

    /// Passes the unread bytes on, followed by a read-complete so the glue flushes them at once (a
    /// ClientHello sent right behind a CONNECT waits for no further read), then leaves.
    private func leavePipeline(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if let unread, unread.readableBytes > 0, parser.state == .stopped {
            self.unread = nil
            context.fireChannelRead(NIOAny(unread))
            context.fireChannelReadComplete()
        }
        if inactiveWhileParsing {
            // The channel closed while the parts were handed on: the glue still learns of it.
            inactiveWhileParsing = false
            context.fireChannelInactive()
        }
        context.leavePipeline(removalToken: removalToken)
    }
}

/// A downstream connection's decoder.
typealias HTTP1RequestDecoder = HTTP1Decoder<HTTP1RequestParser>
/// An upstream connection's decoder.
typealias HTTP1ResponseDecoder = HTTP1Decoder<HTTP1ResponseParser>

extension HTTP1Decoder where Parser == HTTP1RequestParser {
    convenience init(limits: HTTP1Parser.Limits) {
        self.init(HTTP1RequestParser(limits: limits))
    }
}

extension HTTP1Decoder where Parser == HTTP1ResponseParser {
    /// Ferry's limits on what an upstream sends (NIO's decoder's, which they replace): a head (status line
    /// and fields) up to 80 KiB, chunk-size lines up to 4 KiB.
    static let upstreamLimits = HTTP1Parser.Limits(maxRequestLineBytes: 80 * 1024, maxHeadBytes: 80 * 1024, maxFieldCount: 20_000, maxChunkLineBytes: 4096)

    convenience init() {
        self.init(HTTP1ResponseParser(limits: Self.upstreamLimits))
    }

    /// The methods of the requests sent on this connection (`UpstreamConnection` adds each), which frame
    /// their responses.
    var methods: HTTP1Parser.MethodQueue { parser.methods }
}

@available(*, unavailable)
extension HTTP1Decoder: Sendable {}
