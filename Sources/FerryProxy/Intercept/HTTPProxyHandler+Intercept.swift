import FerryModel
import NIOCore
import NIOHTTP1

/// Plain HTTP on an intercept listener: each request goes to the connection's original destination, decided
/// by the listener's forward-proxy policy on its Host — which must name that destination (a Host that
/// resolves elsewhere is refused with 409 Conflict, as Squid's `host_verify_strict`: no reaching one site by
/// claiming another) — or on the address when there is no Host.
extension HTTPProxyHandler {
    func startInterceptedRequest(_ head: HTTPRequestHead, summary: RequestSummary, destination: SocketAddress, forward: CompiledForwardProxy, snapshotVersion: Int, context: ChannelHandlerContext) {
        guard let ex = exchange, let address = destination.ipValue, let port = destination.port else { return }
        use(forward.route)
        ex.snapshotVersion = snapshotVersion
        if let memo = interceptMemo, memo.snapshotVersion == snapshotVersion, memo.method == head.method, memo.host == summary.host {
            // The same Host and method as this connection's previous request: its decision and check still hold.
            ex.event.interception = memo.interception
            ex.event.authority = memo.authority
            ex.event.verdict = memo.verdict
            proceedIntercepted(to: destination, target: .absolute(host: memo.targetHost, port: port, authority: memo.authority, pathAndQuery: head.uri),
                               head: head, summary: summary, forward: forward, context: context)
            return
        }
        let original = HTTPProxyHandler.describe(destination)
        let target: ForwardTarget?
        switch ForwardTarget.intercepted(host: summary.host, uri: head.uri, originalPort: port) {
        case .failure(let problem):
            ex.event.interception = .init(originalDestination: original, decidedOn: "host")
            // A malformed target or Host is a bad request; a Host naming another port, a conflict (as Squid answers).
            sendLocalReply(.error(problem.conflictsWithDestination ? .conflict : .badRequest, problem.message, flags: .downstreamProtocolError, close: head.method == .CONNECT), context: context)
            return
        case .success(let t):
            target = t
        }
        ex.event.interception = .init(originalDestination: original, decidedOn: target == nil ? "address" : "host")
        ex.event.authority = summary.host ?? original
        var request = AccessRequest(host: target?.host ?? .address(address), resolved: address, port: port, method: head.method.rawValue, source: clientIPAddress)
        if let identity = forward.identify(clientIPAddress) {
            request.sourceIdentity = identity
            ex.event.source = identity
        }
        let verdict = forward.settings.policy.evaluate(request)
        ex.event.verdict = verdict
        guard verdict.allowed else {
            deny(verdict, policy: forward.settings.policy.name, context: context)
            return
        }
        let pathTarget = target ?? .absolute(host: .address(address), port: port, authority: original, pathAndQuery: head.uri)
        guard case .name(let name) = pathTarget.host else {
            // An address in Host (or none): it must be the destination itself.
            if case .address(let literal) = pathTarget.host, literal != address {
                refuseMismatch("\(literal) is not the original destination \(address)", context: context)
                return
            }
            proceedIntercepted(to: destination, target: pathTarget, head: head, summary: summary, forward: forward, context: context)
            return
        }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        NameCheck.resolves(name, to: address, port: port, hosts: forward.settings.hosts, on: context.eventLoop).assumeIsolated().whenComplete { result in
            let handler = bound.value
            guard handler.exchange === ex, handler.isWaiting, let context = handler.context else { return }
            switch result {
            case .success(nil):
                handler.proceedIntercepted(to: destination, target: pathTarget, head: head, summary: summary, forward: forward, context: context)
            case .success(let problem?):
                handler.refuseMismatch(problem, context: context)
            case .failure(let error):
                handler.refuseMismatch("\(name) cannot be resolved to check it: \(error)", context: context)
            }
        }
    }

    /// 409 Conflict (Squid's ERR_CONFLICT_HOST): the Host does not name where the connection was going.
    private func refuseMismatch(_ problem: String, context: ChannelHandlerContext) {
        exchange?.event.verdict = Verdict(allowed: false, rule: nil, text: "Host does not match the destination", reason: problem)
        sendLocalReply(.error(.conflict, "the Host field does not match where this connection was going: \(problem)", flags: .sourceDenied, close: false), context: context)
    }

    private func proceedIntercepted(to destination: SocketAddress, target: ForwardTarget, head: HTTPRequestHead, summary: RequestSummary, forward: CompiledForwardProxy, context: ChannelHandlerContext) {
        guard let ex = exchange else { return }
        if let verdict = ex.event.verdict, let interception = ex.event.interception, forward.authenticator == nil, forward.settings.sourceIdentities == nil {
            interceptMemo = InterceptMemo(snapshotVersion: ex.snapshotVersion, method: head.method, host: summary.host, targetHost: target.host,
                                          authority: ex.event.authority, verdict: verdict, interception: interception)
        }
        ex.destination = destination
        use(forward.cluster, snapshotVersion: ex.snapshotVersion)
        ex.event.upstream = HTTPProxyHandler.describe(destination)
        prepareUpstreamHead(target: target, head: head, summary: summary, context: context)
        connectUpstream(context: context)
    }
}

/// The last Host an intercepted keep-alive connection was allowed to reach, so that its next request with the
/// same Host and method in the same snapshot skips the policy and the name check (as `ForwardMemo` does for
/// the forward proxy). The destination is the connection's own and cannot change.
struct InterceptMemo {
    let snapshotVersion: Int
    let method: HTTPMethod
    let host: String?
    let targetHost: HostName
    let authority: String
    let verdict: Verdict
    let interception: AccessLogEvent.Interception
}
