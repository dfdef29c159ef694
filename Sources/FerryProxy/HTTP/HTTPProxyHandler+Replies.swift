import FerryModel
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOPosix

/// How `HTTPProxyHandler` answers and ends an exchange: Ferry's own replies, the response's body and end
/// (chunk framing, a small head coalesced with the first body bytes), logging and counting, the next
/// pipelined request or the close, and the deadlines the loop's sweep checks.
extension HTTPProxyHandler {
    // MARK: replies and completion

    func sendLocalReply(_ reply: LocalReply, context: ChannelHandlerContext) {
        let ex = exchange!
        // A gRPC client reads a gRPC status, not an error page.
        let reply = ex.isGRPC && reply.status.code >= 400 ? GRPC.reply(for: reply) : reply
        dropUpstream()
        if state == .idle { state = .exchange }
        ex.event.flags.formUnion(reply.flags)
        ex.event.status = Int(reply.status.code)
        ex.event.bytesSent = reply.bodyLength
        let next = ex.machine.answeredLocally(close: reply.closeConnection)
        let keepAlive = ex.machine.keepAlive && !draining
        if !keepAlive { ex.machine.closeAfterExchange() }
        let head = reply.head(version: ex.version, keepAlive: keepAlive, requestID: ex.event.requestID.isEmpty ? nil : ex.event.requestID)
        var bytes = ResponseSerializer.head(head, allocator: context.channel.allocator)
        if ex.method != .HEAD {
            if var buffer = reply.bodyBuffer { bytes.writeBuffer(&buffer) } else { bytes.writeString(reply.body) }
        }
        context.write(wrapOutboundOut(bytes), promise: nil)
        ex.downstreamChunked = false
        writeResponseEnd(nil, context: context)
        switch next {
        case .finish:
            finishExchange(context: context)
        case .readRestOfRequest:
            markDirty(downstream: true)
            resumeReadingIfHeld()
        }
    }

    /// The response cannot be completed: log and close the connection.
    func closeAfterFailure(flags: ResponseFlags, context: ChannelHandlerContext) {
        exchange?.event.flags.formUnion(flags)
        complete()
        state = .closing
        writeHeldHead(context: context)
        context.flush()
        context.close(promise: nil)
    }

    /// Both directions of the exchange are done: log it, then wait for the next request or close.
    func finishExchange(context: ChannelHandlerContext, now: NIODeadline? = nil) {
        guard let ex = exchange, ex.machine.isComplete else { return }
        let keepAlive = ex.machine.keepAlive && !draining
        let now = now ?? self.now
        complete(now: now)
        if keepAlive {
            state = .idle
            idleSince = now
            firstByteAt = nil
            markDirty(downstream: true)
            processPipelined(context: context)
            if state == .idle, pipelined.isEmpty, let status = deferredError {
                replyToDeferredError(status, context: context)
                return
            }
            resumeReadingIfHeld()
        } else {
            // The close was chained to the write of the response end (see `writeResponseEnd`).
            state = .closing
        }
    }

    /// Starts the requests that arrived pipelined behind the one just finished, in order.
    func processPipelined(context: ChannelHandlerContext) {
        while state == .idle, !pipelined.isEmpty {
            let part = pipelined.removeFirst()
            guard case .head = part else { continue }
            process(part, context: context)
            while state != .idle, state != .closing, let next = pipelined.first, !isHead(next) {
                pipelined.removeFirst()
                process(next, context: context)
            }
        }
    }

    /// Writes the end of the response; when the connection is not kept alive, closes it once that write is done.
    func writeResponseEnd(_ trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        writeHeldHead(context: context)
        let last = exchange!.downstreamChunked ? WireFormat.lastChunk(trailers: trailers, allocator: context.channel.allocator) : nil
        if exchange!.machine.keepAlive && !draining {
            if let last { context.write(wrapOutboundOut(last), promise: nil) }
            markDirty(downstream: true)
        } else {
            exchange!.machine.closeAfterExchange()
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(last ?? context.channel.allocator.buffer(capacity: 0)), promise: promise)
            // Closed on a later tick, so the caller's bookkeeping of this exchange finishes first.
            promise.futureResult.assumeIsolated().whenComplete { _ in
                context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
            }
        }
    }

    /// A response body part, chunk-framed when the response to the client is chunked.
    func writeBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard buffer.readableBytes > 0 else { return }
        if heldResponseHead != nil {
            guard buffer.readableBytes <= Self.coalescedBodyLimit else {
                writeHeldHead(context: context)
                return writeBody(buffer, context: context)
            }
            // Small first body bytes are copied behind the head: one write for both. (The held copy is
            // dropped first, so the buffer is not shared and grows in place.)
            var head = heldResponseHead!
            heldResponseHead = nil
            if exchange!.downstreamChunked { WireFormat.writeChunkHeader(length: buffer.readableBytes, into: &head) }
            head.writeImmutableBuffer(buffer)
            if exchange!.downstreamChunked { head.writeStaticString("\r\n") }
            context.write(wrapOutboundOut(head), promise: nil)
            return
        }
        if exchange!.downstreamChunked {
            context.write(wrapOutboundOut(WireFormat.chunkHeader(length: buffer.readableBytes, allocator: context.channel.allocator)), promise: nil)
            context.write(wrapOutboundOut(buffer), promise: nil)
            context.write(wrapOutboundOut(WireFormat.crlf), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }

    /// Body bytes up to this size are copied behind a held response head rather than written on their own.
    static let coalescedBodyLimit = 4096

    /// Writes the response head held for coalescing, if any, ahead of whatever is written next.
    func writeHeldHead(context: ChannelHandlerContext) {
        guard let head = heldResponseHead else { return }
        heldResponseHead = nil
        context.write(wrapOutboundOut(head), promise: nil)
    }

    /// When the current request started, while its first upstream attempt is under way: a clock read
    /// saved on the keep-alive path (a later attempt reads the clock).
    var firstAttemptStart: NIODeadline? {
        guard let ex = exchange, ex.machine.attempts <= 1 else { return nil }
        return ex.startedAt
    }

    /// The exchange is over: count it and (unless a tunnel logs it when it closes) write its access-log line.
    func complete(logging: Bool = true, now: NIODeadline? = nil) {
        guard let ex = exchange else { return }
        let now = now ?? self.now
        finishedOnEndpoint()
        ex.event.durationNanos = (now - ex.startedAt).nanoseconds
        if logging && ex.accessLogFormat != .none { environment.accessLog.record(ex.event, format: ex.accessLogFormat) }
        if let stats = ex.route?.stats {
            stats.count(target: ex.event.cluster.isEmpty ? nil : ex.targetIndex, status: ex.event.status)
        } else {
            ex.listenerStats?.countLocalReply(status: ex.event.status)
        }
        ex.listenerStats?.duration.record(Duration.nanoseconds(ex.event.durationNanos))
        exchange = nil
    }

    // MARK: deadlines

    func quiesce() {
        guard let context else { return }
        userInboundEventTriggered(context: context, event: ChannelShouldQuiesceEvent())
    }

    func closeNow() {
        context?.close(promise: nil)
    }

    /// Enforces the idle, request-header and upstream-response deadlines (called by the loop's sweep).
    func checkDeadlines(now: NIODeadline) {
        guard let context, countedConnection else { return }
        let (_, listener) = currentListener()
        let timeouts = listener.listener.http.timeouts
        switch state {
        case .idle where pipelined.isEmpty:
            if let first = firstByteAt {
                if now - first >= TimeAmount.nanoseconds(Int64(timeouts.requestHeaders.milliseconds) * 1_000_000) {
                    exchange = makeBareExchange(startedAt: first)
                    exchange!.machine.requestEndsHere()
                    sendLocalReply(.error(.requestTimeout, "the request head did not arrive within \(DurationText(timeouts.requestHeaders))", flags: .requestHeadersTimeout, close: true), context: context)
                    return
                }
            } else if now - idleSince >= TimeAmount.nanoseconds(Int64(timeouts.idle.milliseconds) * 1_000_000) {
                state = .closing
                context.close(promise: nil)
                return
            }
        case .exchange:
            guard let ex = exchange, ex.machine.phase != .answered else { return }
            switch ex.machine.deadline(now: now) {
            case .none:
                break
            case .responseTimeout(let close):
                let seconds = ex.route.map { DurationText($0.route.timeout).description } ?? ""
                sendLocalReply(.error(.gatewayTimeout, "upstream \(ex.event.upstream) did not respond within \(seconds)", flags: .upstreamRequestTimeout, close: close), context: context)
            case .idleTimeout(let responseStarted):
                // Nothing moved either way for the route's stream idle timeout.
                dropUpstream()
                if responseStarted {
                    closeAfterFailure(flags: .upstreamRequestTimeout, context: context)
                } else {
                    let seconds = ex.route.flatMap { $0.route.streamIdleTimeout.map { DurationText($0).description } } ?? ""
                    sendLocalReply(.error(.gatewayTimeout, "nothing moved between client and upstream \(ex.event.upstream) for \(seconds)", flags: .upstreamRequestTimeout, close: true), context: context)
                }
            }
        default:
            break
        }
    }
}
