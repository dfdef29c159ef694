import FerryModel
import NIOCore
import NIOPosix

/// The first handler of a connection the kernel redirected to an intercept listener (transparent egress).
/// It reads where the connection was going, then looks at the client's first bytes without consuming them:
/// - an HTTP/1.x request: the HTTP handlers take over, and each request is decided on its Host, which must
///   name the original destination (`HTTPProxyHandler.startInterceptedRequest`);
/// - a TLS ClientHello: decided on its server name, which must resolve to the original destination; the
///   stream is then spliced to it untouched (never terminated: Ferry holds no key);
/// - anything else, or nothing within `first_bytes_timeout` (a protocol whose server speaks first): decided
///   on the address and port.
/// The listener's forward-proxy policy decides, as for a proxy request; the access-log line says what the
/// decision was based on and the original destination.
final class InterceptHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private let environment: ListenerEnvironment
    private let local: LoopLocal
    private let settings: InterceptSettings
    private let clientAddress: SocketAddress?
    private var context: ChannelHandlerContext?
    private var destination: SocketAddress?
    private var buffered: ByteBuffer?
    private var clientEnded = false
    private var decided = false
    /// A read NIO asked for after the decision: held until the splice or the HTTP handlers take over, so a
    /// client that keeps sending while the destination is checked and dialed is not read into memory.
    private var heldRead = false
    private var timeout: Scheduled<Void>?
    /// The client's Pod, once looked up (for the access log).
    private var source: SourceIdentity?
    private let startedAt = NIODeadline.now()
    private let startTime = WallClock.now()

    init(environment: ListenerEnvironment, local: LoopLocal, remoteAddress: SocketAddress?, settings: InterceptSettings) {
        self.environment = environment
        self.local = local
        self.clientAddress = remoteAddress
        self.settings = settings
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        self.context = nil
    }

    private func start(context: ChannelHandlerContext) {
        guard destination == nil, !decided else { return }
        guard let original = OriginalDestination.of(context.channel, mode: settings.mode) else {
            // Dialed directly: there is no destination to take the connection to.
            decided = true
            var event = logEvent()
            event.flags = .sourceDenied
            event.verdict = Verdict(allowed: false, rule: nil, text: "not intercepted", reason: "the connection was made to the intercept port itself, not redirected by the kernel")
            record(event)
            context.close(promise: nil)
            return
        }
        destination = original
        let milliseconds = Int64(settings.firstBytesTimeout.milliseconds)
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) { [self] in
            guard !decided, let context = self.context else { return }
            decide(.other, context: context)
        }
    }

    func read(context: ChannelHandlerContext) {
        if decided {
            heldRead = true
        } else {
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if decided {
            // Arrived while the decision or the upstream connection was pending: kept for the upstream.
            buffered = buffered.map { var b = $0; b.writeBuffer(&bytes); return b } ?? bytes
            return
        }
        if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
        let kind = FirstBytes.classify(buffered!)
        if kind != .needMore { decide(kind, context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            clientEnded = true
            // The client said all it will say: what it sent decides, and too little to tell is "other".
            if !decided {
                let kind = buffered.map(FirstBytes.classify) ?? .other
                decide(kind == .needMore ? .other : kind, context: context)
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: deciding

    private func decide(_ kind: FirstBytes, context: ChannelHandlerContext) {
        guard !decided, let destination, let ip = destination.ipValue else { return }
        decided = true
        timeout?.cancel()
        let (_, listener) = environment.resolve(environment.store.current)
        guard let forward = listener.forwardProxy else {
            context.close(promise: nil)
            return
        }
        switch kind {
        case .http:
            handOverToHTTP(destination: destination, context: context)
        case .tls(let serverName?):
            decideByName(serverName, destination: destination, address: ip, forward: forward, context: context)
        case .tls(nil):
            decideByAddress(ip, destination: destination, basis: "address (TLS without a server name)", forward: forward, context: context)
        case .other, .needMore:
            decideByAddress(ip, destination: destination, basis: "address", forward: forward, context: context)
        case .malformedTLS(let problem):
            var event = logEvent()
            event.flags = .downstreamProtocolError
            event.verdict = Verdict(allowed: false, rule: nil, text: "malformed ClientHello", reason: problem)
            event.interception = .init(originalDestination: HTTPProxyHandler.describe(destination), decidedOn: "sni")
            record(event)
            context.close(promise: nil)
        }
    }

    private func decideByAddress(_ ip: IPAddress, destination: SocketAddress, basis: String, forward: CompiledForwardProxy, context: ChannelHandlerContext) {
        var request = AccessRequest(host: .address(ip), resolved: ip, port: destination.port ?? 0, method: "CONNECT", source: clientAddress?.ipValue)
        request.sourceIdentity = forward.identify(clientAddress?.ipValue)
        source = request.sourceIdentity
        conclude(forward.settings.policy.evaluate(request), authority: HTTPProxyHandler.describe(destination), basis: basis, destination: destination, context: context)
    }

    /// A ClientHello's server name decides, once it is known to resolve to the original destination (so a
    /// client cannot name an allowed site while connecting to another).
    private func decideByName(_ name: String, destination: SocketAddress, address: IPAddress, forward: CompiledForwardProxy, context: ChannelHandlerContext) {
        let port = destination.port ?? 0
        var request = AccessRequest(host: .name(name), resolved: address, port: port, method: "CONNECT", source: clientAddress?.ipValue)
        request.sourceIdentity = forward.identify(clientAddress?.ipValue)
        source = request.sourceIdentity
        let authority = "\(name):\(port)"
        let verdict = forward.settings.policy.evaluate(request)
        guard verdict.allowed else {
            conclude(verdict, authority: authority, basis: "sni", destination: destination, context: context)
            return
        }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        NameCheck.resolves(name, to: address, port: port, hosts: forward.settings.hosts, on: context.eventLoop).assumeIsolated().whenComplete { result in
            let handler = bound.value
            guard let context = handler.context else { return }
            switch result {
            case .success(nil):
                handler.conclude(verdict, authority: authority, basis: "sni", destination: destination, context: context)
            case .success(let problem?):
                handler.conclude(Verdict(allowed: false, rule: nil, text: "server name does not match the destination", reason: problem),
                                 authority: authority, basis: "sni", destination: destination, context: context)
            case .failure(let error):
                handler.conclude(Verdict(allowed: false, rule: nil, text: "server name not resolved", reason: "\(name): \(error)"),
                                 authority: authority, basis: "sni", destination: destination, context: context)
            }
        }
    }

    /// Refused: logged and closed (no protocol of ours to answer in). Allowed: connect and splice.
    private func conclude(_ verdict: Verdict, authority: String, basis: String, destination: SocketAddress, context: ChannelHandlerContext) {
        var event = logEvent()
        event.method = "CONNECT"
        event.authority = authority
        event.verdict = verdict
        event.interception = .init(originalDestination: HTTPProxyHandler.describe(destination), decidedOn: basis)
        guard verdict.allowed else {
            event.flags = .sourceDenied
            record(event)
            context.close(promise: nil)
            return
        }
        let (_, listener) = environment.resolve(environment.store.current)
        let connectTimeout = listener.forwardProxy?.settings.connectTimeout ?? .seconds(5)
        environment.connector.connect(to: destination, options: UpstreamDialOptions(connectTimeout: connectTimeout, tcpKeepalive: nil), on: context.eventLoop) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
                try channel.syncOptions?.setOption(.recvAllocator, value: TCPProxyHandler.recvAllocator)
            }
        }
        .assumeIsolated()
        .whenComplete { [self] result in
            guard let context = self.context, context.channel.isActive else {
                if case .success(let channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let upstream):
                event.upstream = HTTPProxyHandler.describe(destination)
                event.status = 200
                splice(to: upstream, event: event, context: context)
            case .failure:
                event.flags = .upstreamConnectionFailure
                event.status = 502
                record(event)
                context.close(promise: nil)
            }
        }
    }

    private func splice(to upstream: Channel, event: AccessLogEvent, context: ChannelHandlerContext) {
        var session = TunnelSession(downstream: context.channel, upstream: upstream, early: buffered.map { [$0] } ?? [], clientEnded: clientEnded)
        buffered = nil
        session.owesRead = heldRead
        let format = environment.resolve(environment.store.current).0.config.accessLog.format
        if format != .none {
            session.log = .init(event: event, format: format, writer: environment.accessLog, startedAt: startedAt)
        }
        session.start { down, _ in down.removeHandler(context: context, promise: nil) }
    }

    /// Plain HTTP: Ferry's HTTP handlers read the requests (what arrived so far is passed to them), each
    /// decided on its Host against this destination.
    private func handOverToHTTP(destination: SocketAddress, context: ChannelHandlerContext) {
        let listener = environment.resolve(environment.store.current).1
        let setup = DownstreamPipeline.Setup(environment: environment, limits: listener.decoderLimits, http2: listener.http2, overTLS: false)
        do {
            let handler = try setup.addHTTP1(to: context.channel, verified: false)
            handler.interceptedDestination = destination
        } catch {
            context.close(promise: nil)
            return
        }
        if let bytes = buffered {
            buffered = nil
            context.fireChannelRead(NIOAny(bytes))
            context.fireChannelReadComplete()
        }
        if clientEnded { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        let channel = context.channel
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if heldRead { channel.read() }
    }

    // MARK: the access log

    private func logEvent() -> AccessLogEvent {
        var event = AccessLogEvent(startTime: startTime, listener: environment.listenerName, downstream: clientAddress.map(HTTPProxyHandler.describe) ?? "unknown")
        event.httpVersion = "-"
        event.source = source
        return event
    }

    private func record(_ event: AccessLogEvent) {
        let format = environment.resolve(environment.store.current).0.config.accessLog.format
        guard format != .none else { return }
        var event = event
        event.durationNanos = (NIODeadline.now() - startedAt).nanoseconds
        environment.accessLog.record(event, format: format)
    }
}

@available(*, unavailable)
extension InterceptHandler: Sendable {}

/// Whether a name (a Host, a ClientHello's server name) resolves to the address a connection was really
/// going to: the hosts file first, then DNS off the event loop. Squid's `host_verify_strict` check.
enum NameCheck {
    /// Succeeds with nil when `name` resolves to `address`, with why not otherwise.
    static func resolves(_ name: String, to address: IPAddress, port: Int, hosts: [String: [IPAddress]], on loop: EventLoop) -> EventLoopFuture<String?> {
        if let literal = IPAddress(parsing: name) {
            return loop.makeSucceededFuture(literal == address ? nil : "\(name) is not the original destination \(address)")
        }
        if let listed = hosts[name] {
            return loop.makeSucceededFuture(listed.contains(address) ? nil : "\(name) resolves to \(listed.map(\.description).joined(separator: ", ")) (hosts file), not to the original destination \(address)")
        }
        return NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
            let addresses = try ForwardResolver.resolveAll(name, port: port)
            return addresses.contains(address) ? nil : "\(name) resolves to \(addresses.map(\.description).joined(separator: ", ")), not to the original destination \(address)"
        }
    }
}
