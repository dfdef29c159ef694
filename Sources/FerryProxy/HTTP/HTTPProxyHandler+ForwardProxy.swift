import FerryModel
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The forward-proxy side of the request path: absolute-form requests and CONNECT tunnels, decided by the
/// listener's access policy before DNS and again on the resolved address, which is then the address used.
extension HTTPProxyHandler {
    func startForwardRequest(_ head: HTTPRequestHead, summary: RequestSummary, forward: CompiledForwardProxy, snapshotVersion: Int, context: ChannelHandlerContext) {
        guard let ex = exchange else { return }
        if let destination = interceptedDestination {
            startInterceptedRequest(head, summary: summary, destination: destination, forward: forward, snapshotVersion: snapshotVersion, context: context)
            return
        }
        use(forward.route)
        let isConnect = head.method == .CONNECT
        if !isConnect, let memo = forwardMemo, let path = memo.pathAndQuery(of: head, snapshotVersion: snapshotVersion) {
            // Same destination as this connection's previous request: its decision and address still hold.
            ex.snapshotVersion = snapshotVersion
            ex.event.authority = memo.authority
            ex.event.verdict = memo.verdict
            ex.destination = memo.destination
            use(forward.cluster, snapshotVersion: snapshotVersion)
            ex.event.upstream = memo.upstreamName
            prepareUpstreamHead(target: .absolute(host: memo.host, port: memo.port, authority: memo.authority, pathAndQuery: path), head: head, summary: summary, context: context)
            connectUpstream(context: context)
            return
        }
        let target: ForwardTarget
        switch ForwardTarget.parse(method: head.method.rawValue, target: head.uri) {
        case .failure(let problem):
            if isConnect { ex.machine.requestEndsHere() }
            sendLocalReply(.error(.badRequest, problem.message, flags: .downstreamProtocolError, close: isConnect), context: context)
            return
        case .success(let t):
            target = t
        }
        ex.isConnect = isConnect
        ex.event.authority = ForwardTarget.authorityText(target)
        ex.snapshotVersion = snapshotVersion
        var request = AccessRequest(host: target.host, port: target.port, method: head.method.rawValue, source: clientIPAddress)
        if let identity = forward.identify(clientIPAddress) {
            request.sourceIdentity = identity
            ex.event.source = identity
        }
        guard let authenticator = forward.authenticator else {
            decide(request, target: target, head: head, summary: summary, forward: forward, context: context)
            return
        }
        guard let credential = head.headers.first(name: "proxy-authorization") else {
            requireAuthentication(context: context)
            return
        }
        if let user = authenticator.rememberedUser(credential) {
            var authenticated = request
            authenticated.user = user
            ex.event.user = user
            decide(authenticated, target: target, head: head, summary: summary, forward: forward, context: context)
            return
        }
        // The password hash is slow on purpose: it is checked off the event loop.
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        authenticator.verify(credential, on: context.eventLoop).assumeIsolated().whenSuccess { user in
            let handler = bound.value
            guard handler.exchange === ex, let context = handler.context else { return }
            guard let user else {
                handler.requireAuthentication(context: context)
                return
            }
            var authenticated = request
            authenticated.user = user
            ex.event.user = user
            handler.decide(authenticated, target: target, head: head, summary: summary, forward: forward, context: context)
        }
    }

    /// 407 asking for Basic credentials; a CONNECT closes (the client asks again on a new connection).
    private func requireAuthentication(context: ChannelHandlerContext) {
        let isConnect = exchange?.isConnect ?? false
        if isConnect { exchange?.machine.requestEndsHere() }
        var reply = LocalReply.error(.proxyAuthenticationRequired, "this proxy needs a user name and password (Basic)", flags: .sourceDenied, close: isConnect)
        reply.extraHeaders = [("proxy-authenticate", "Basic realm=\"ferry\"")]
        sendLocalReply(reply, context: context)
    }

    /// The policy's decision for an (authenticated) request, then the way to the destination.
    private func decide(_ request: AccessRequest, target: ForwardTarget, head: HTTPRequestHead, summary: RequestSummary, forward: CompiledForwardProxy, context: ChannelHandlerContext) {
        guard let ex = exchange else { return }
        // Decided on the name alone when no rule needs the address: a denied name costs no DNS query.
        if !forward.settings.policy.dependsOnAddress(request) {
            let verdict = forward.settings.policy.evaluate(request)
            ex.event.verdict = verdict
            guard verdict.allowed else {
                deny(verdict, policy: forward.settings.policy.name, context: context)
                return
            }
        }
        // Parts of the request that arrive meanwhile are held, as while an upstream connection is made.
        if let parent = forward.settings.upstreamProxy(for: target.host), let parentAddress = forward.parentAddresses[parent] {
            // Behind a parent proxy the name is not resolved here: the parent resolves it, so only rules
            // on names (and on IP literals) can decide.
            let verdict = forward.settings.policy.evaluate(request)
            ex.event.verdict = verdict
            guard verdict.allowed else {
                deny(verdict, policy: forward.settings.policy.name, context: context)
                return
            }
            ex.parentProxy = (parentAddress, ForwardTarget.authorityText(target, forConnect: true))
            ex.destination = parentAddress
            use(forward.cluster, snapshotVersion: ex.snapshotVersion)
            ex.event.upstream = "\(parent) (parent proxy)"
            prepareUpstreamHead(target: target, head: head, summary: summary, context: context)
            connectUpstream(context: context)
            return
        }
        switch target.host {
        case .address(let address):
            proceed(to: address, request: request, target: target, head: head, summary: summary, forward: forward, context: context)
        case .name(let name):
            if let address = forward.settings.hosts[name]?.first {
                proceed(to: address, request: request, target: target, head: head, summary: summary, forward: forward, context: context)
                return
            }
            // DNS runs on NIO's blocking-work pool, never on the event loop.
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let port = target.port
            NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) {
                try ForwardResolver.resolve(name, port: port)
            }.assumeIsolated().whenComplete { result in
                let handler = bound.value
                guard handler.exchange === ex, handler.isWaiting, let context = handler.context else { return }
                switch result {
                case .success(let address):
                    handler.proceed(to: address, request: request, target: target, head: head, summary: summary, forward: forward, context: context)
                case .failure(let error):
                    handler.sendLocalReply(.error(.badGateway, "cannot resolve \(name): \(error)", flags: .upstreamConnectionFailure, close: ex.isConnect), context: context)
                }
            }
        }
    }

    /// Checks the resolved address against the policy again, then connects to exactly that address.
    private func proceed(to address: IPAddress, request: AccessRequest, target: ForwardTarget, head: HTTPRequestHead, summary: RequestSummary, forward: CompiledForwardProxy, context: ChannelHandlerContext) {
        guard let ex = exchange else { return }
        var resolved = request
        resolved.resolved = address
        let verdict = forward.settings.policy.evaluate(resolved)
        ex.event.verdict = verdict
        guard verdict.allowed else {
            deny(verdict, policy: forward.settings.policy.name, context: context)
            return
        }
        guard let socketAddress = try? SocketAddress(ipAddress: address.description, port: target.port) else {
            sendLocalReply(.error(.badGateway, "cannot use address \(address)", flags: .upstreamConnectionFailure, close: ex.isConnect), context: context)
            return
        }
        ex.destination = socketAddress
        use(forward.cluster, snapshotVersion: ex.snapshotVersion)
        ex.event.upstream = HTTPProxyHandler.describe(socketAddress)
        // Not remembered when Pods are watched: the Pod behind the client address may change.
        if case .absolute(let host, let port, let authority, _) = target, forward.authenticator == nil, forward.settings.sourceIdentities == nil, let prefix = ForwardMemo.prefix(of: head.uri) {
            forwardMemo = ForwardMemo(snapshotVersion: ex.snapshotVersion, prefix: prefix, method: head.method, host: host, port: port,
                                      authority: authority, verdict: verdict, destination: socketAddress, upstreamName: ex.event.upstream)
        }
        prepareUpstreamHead(target: target, head: head, summary: summary, context: context)
        connectUpstream(context: context)
    }

    /// For an absolute-form request: the head sent upstream (origin-form target, Host from the URL).
    func prepareUpstreamHead(target: ForwardTarget, head: HTTPRequestHead, summary: RequestSummary, context: ChannelHandlerContext) {
        guard let ex = exchange, case .absolute(_, _, let authority, let pathAndQuery) = target else { return }
        // Serialized here, in the same pass that picks the fields.
        var bytes = context.channel.allocator.buffer(capacity: 256 + pathAndQuery.utf8.count)
        RequestSerializer.requestLine(method: head.method, target: pathAndQuery, into: &bytes)
        HeaderRewriter.forwardProxyFields(head, summary: summary, clientAddress: clientIP, host: authority, trusted: ex.trustedPeer) { name, value in
            WireFormat.field(name, value, into: &bytes)
        }
        RequestSerializer.endOfHead(into: &bytes)
        ex.upstreamHeadBytes = bytes
        if summary.expectsContinue {
            context.write(wrapOutboundOut(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
            markDirty(downstream: true)
        }
    }

    /// 403 naming the deciding rule; a denied CONNECT closes at once, without reading what follows it.
    func deny(_ verdict: Verdict, policy: String, context: ChannelHandlerContext) {
        let isConnect = exchange?.isConnect ?? false
        if isConnect { exchange?.machine.requestEndsHere() }
        let decided = verdict.rule.map { "rule \($0) (\(verdict.text))" } ?? verdict.text
        sendLocalReply(.error(.forbidden, "denied by \(decided) of policy \(policy): \(verdict.reason)", flags: .sourceDenied, close: isConnect), context: context)
    }

    /// The upstream connection of a CONNECT is up: answer 200, then glue the two connections.
    func establishTunnel(to upstreamChannel: Channel, context: ChannelHandlerContext) {
        exchange!.event.status = 200
        exchange!.machine.responseHeadSent(keepAlive: false)
        context.write(wrapOutboundOut(ByteBuffer(staticString: "HTTP/1.1 200 Connection established\r\n\r\n")), promise: nil)
        glue(to: upstreamChannel, upstreamHTTP: nil, context: context)
    }
}

extension ForwardTarget {
    /// `host:port` for the access log; with `forConnect`, always with the port (for a parent's CONNECT).
    static func authorityText(_ target: ForwardTarget, forConnect: Bool = false) -> String {
        switch target {
        case .connect(let host, let port): "\(host):\(port)"
        case .absolute(let host, let port, let authority, _): forConnect ? "\(host):\(port)" : authority
        }
    }
}

/// Name resolution for the forward proxy (blocking; called on NIO's thread pool).
enum ForwardResolver {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The first address of `name`, IPv4 preferred.
    static func resolve(_ name: String, port: Int) throws -> IPAddress {
        let candidates = try resolveAll(name, port: port)
        guard let chosen = candidates.first(where: { if case .v4 = $0 { true } else { false } }) ?? candidates.first else {
            throw Failure(description: "no address")
        }
        return chosen
    }

    /// Every address of `name`, in the resolver's order.
    static func resolveAll(_ name: String, port: Int) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw Failure(description: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(first) }
        var candidates: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let raw = info.pointee.ai_addr {
                let address: SocketAddress? = switch Int32(raw.pointee.sa_family) {
                case AF_INET: raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee) }
                case AF_INET6: raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee) }
                default: nil
                }
                if let ip = address?.ipAddress, let parsed = IPAddress(parsing: ip) { candidates.append(parsed) }
            }
            cursor = info.pointee.ai_next
        }
        return candidates
    }
}

/// The last absolute-form destination a connection was allowed to reach, so that a keep-alive client asking
/// for the same `scheme://authority` with the same method in the same snapshot skips parsing, the policy
/// and address work. Not kept when the listener authenticates users (credentials may change per request).
/// (A class: it is consulted on every request of the connection, and a struct would be copied each time.)
final class ForwardMemo {
    let snapshotVersion: Int
    /// `http://host:port` exactly as received.
    let prefix: String
    let method: HTTPMethod
    let host: HostName
    let port: Int
    let authority: String
    let verdict: Verdict
    let destination: SocketAddress
    let upstreamName: String

    init(snapshotVersion: Int, prefix: String, method: HTTPMethod, host: HostName, port: Int, authority: String, verdict: Verdict, destination: SocketAddress, upstreamName: String) {
        self.snapshotVersion = snapshotVersion
        self.prefix = prefix
        self.method = method
        self.host = host
        self.port = port
        self.authority = authority
        self.verdict = verdict
        self.destination = destination
        self.upstreamName = upstreamName
    }

    /// The text before the path of an absolute-form target (`http://host:port`), or nil.
    static func prefix(of uri: String) -> String? {
        guard uri.hasPrefix("http://") else { return nil }
        let rest = uri.utf8.dropFirst(7)
        let end = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? rest.endIndex
        return String(uri[..<end])
    }

    /// The origin-form target of `head` when it goes to this memo's destination, or nil. Compared and
    /// sliced as UTF-8 bytes: this runs for every request of a keep-alive forward-proxy connection.
    func pathAndQuery(of head: HTTPRequestHead, snapshotVersion: Int) -> String? {
        guard snapshotVersion == self.snapshotVersion, head.method == method else { return nil }
        let uri = head.uri.utf8
        let prefixBytes = prefix.utf8
        guard uri.count >= prefixBytes.count, uri.starts(with: prefixBytes) else { return nil }
        var rest = uri.dropFirst(prefixBytes.count)
        if let first = rest.first, first != UInt8(ascii: "/"), first != UInt8(ascii: "?"), first != UInt8(ascii: "#") { return nil }
        if let hash = rest.firstIndex(of: UInt8(ascii: "#")) { rest = rest[..<hash] }
        if rest.isEmpty, method == .OPTIONS { return "*" }
        if rest.isEmpty || rest.first == UInt8(ascii: "?") { return "/" + String(Substring(rest)) }
        return String(Substring(rest))
    }
}
