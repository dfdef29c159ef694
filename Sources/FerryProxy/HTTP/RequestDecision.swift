import FerryModel
import NIOCore
import NIOHTTP1

/// What Ferry does with a request whose head is valid: a pure function of the head, the listener, the
/// snapshot and the client (Pingora's `upstream_peer` phase is the model). No I/O, no connection state:
/// the handler performs the outcome. The forward proxy's own phases (authentication off the loop, DNS,
/// the policy on the resolved address) start from `.forwardProxy`.
struct RequestDecision {
    enum Outcome {
        /// Ferry answers itself: errors, direct responses, redirects, refusals, the last hop of Max-Forwards.
        /// (Boxed: a reply is large and rare on the forwarding path, which then copies a small enum.)
        indirect case reply(LocalReply)
        /// A route that serves files; `path` is the canonical path without its query.
        case serveFiles(StaticFiles, path: Substring)
        /// To a cluster's endpoint.
        case forward(UpstreamPlan)
        /// A forward-proxy listener: absolute-form requests and CONNECT, decided by its access policy.
        case forwardProxy(CompiledForwardProxy)
    }

    /// Where and what a routed request sends upstream.
    struct UpstreamPlan {
        var cluster: CompiledCluster
        /// The weighted target of the route the cluster was picked from.
        var targetIndex: Int
        /// The balancer's hash of the request (for hash policies), or nil.
        var hashKey: UInt64?
        /// The upstream head as bytes (the common case: no header changes), or as a head to be changed
        /// and serialized when the route rewrites fields.
        var headBytes: ByteBuffer?
        var head: HTTPRequestHead?
    }

    /// The client as the decision sees it.
    struct Client {
        var address: IPAddress?
        /// The address as text, for messages, forwarding fields and source hashing.
        var addressText: String
        /// The peer is a trusted proxy: its forwarding fields are kept and name the client.
        var trustedPeer: Bool
        var overTLS: Bool
    }

    var outcome: Outcome
    /// The route the request matched (nil: none, or decided before routing).
    var route: CompiledRoute?
    /// The body limit in force: the route's when it sets one, else the listener's (nil: none).
    var maxRequestBodyBytes: Int?
    /// The cluster picked, also when it cannot serve (for the access log).
    var cluster: CompiledCluster?
    /// For the access log: the verdict of a filter or policy, the authenticated user, the Kubernetes request
    /// (only routes with a filter or client access have one; a class, so the common decision stays small).
    final class Audit {
        var verdict: Verdict?
        var user: String?
        var kubernetes: KubernetesRequest?
    }

    var audit: Audit?

    /// The outcome a decision starts from; every path replaces it.
    private static let undecided = Outcome.reply(LocalReply(status: .notFound, body: "", flags: .noRoute, closeConnection: false))

    /// Decides `head` (validated into `summary`) on `listener` of `snapshot`. `requestID` is what the upstream
    /// head carries; `certificateName` is asked only when a route authenticates clients by certificate, and
    /// `certificateFacts` only when a route tells its upstream about the client certificate;
    /// `random` picks among weighted clusters. (Inlined into its one caller: the decision is then taken apart
    /// in place rather than copied out field by field.)
    @inline(__always)
    static func decide(
        _ view: HTTP1RequestHeadView, summary: RequestSummary, requestID: String, listener: CompiledListener, snapshot: CompiledSnapshot,
        client: Client, certificateName: () -> String?, certificateFacts: () -> ClientCertificateFacts, random: inout FastRandom, allocator: ByteBufferAllocator
    ) -> RequestDecision {
        // Built in place and returned from each branch (no closure captures it: that would box it). It starts
        // from a shared placeholder, so a forwarded request builds no reply it will not send.
        var decision = RequestDecision(outcome: undecided, maxRequestBodyBytes: listener.listener.http.limits.maxRequestBodyBytes)
        if summary.maxForwards == 0 {
            // The last hop an OPTIONS or TRACE may take: Ferry answers it (RFC 9110 §7.6.2).
            decision.outcome = .reply(LocalReply.lastHop(view.head))
            return decision
        }
        if let forward = listener.forwardProxy {
            decision.outcome = .forwardProxy(forward)
            return decision
        }
        if view.method == .CONNECT {
            decision.outcome = .reply(.error(.methodNotAllowed, "CONNECT is served by forward-proxy listeners, not this reverse-proxy listener", flags: .downstreamProtocolError, close: true))
            return decision
        }

        // One canonical path, before routing, filters, rewrites and the upstream request.
        var uri = view.uri
        let canonical = RequestPath.canonicalize(view.uri, listener.pathNormalization)
        switch canonical.outcome {
        case .unchanged:
            break
        case .normalized(let canonical):
            uri = canonical
        case .rejected(let problem):
            decision.outcome = .reply(.error(.badRequest, "the request path is not canonical: \(problem)", flags: .downstreamProtocolError, close: true))
            return decision
        }
        let host = summary.host ?? ""
        // Path parameters (`;x=y`) do not make a path escape a route written without them.
        let matchPath = canonical.hasParameters ? RequestPath.withoutParameters(RouteTable.pathWithoutQuery(Substring(uri))).map { Substring($0) } ?? Substring(uri) : Substring(uri)
        let match = listener.routes.match(authority: Substring(host), path: matchPath, method: view.method.rawValue, header: { view.value(of: $0) })
        let compiledRoute = match.map { listener.compiledRoutes[$0.virtualHost][$0.route] }
        // A route may set its own body limit (`Int.max`: none); an over-long body is refused before anything else.
        if let routeMax = compiledRoute?.route.maxRequestBodyBytes { decision.maxRequestBodyBytes = routeMax == Int.max ? nil : routeMax }
        if let max = decision.maxRequestBodyBytes, let length = summary.contentLength, length > max {
            decision.outcome = .reply(.error(.payloadTooLarge, "request body larger than \(max) bytes", flags: .requestTooLarge, close: true))
            return decision
        }
        guard let compiledRoute else {
            decision.outcome = .reply(.error(.notFound, "no route for \(host)\(RouteTable.pathWithoutQuery(Substring(uri)))", flags: .noRoute))
            return decision
        }
        let route = compiledRoute.route
        decision.route = compiledRoute
        if !route.allowedSources.isEmpty {
            // Behind trusted proxies the client is the one their X-Forwarded-For names.
            let source = client.trustedPeer ? listener.forwardedTrust.clientAddress(forwardedFor: summary.forwardedFor, peer: client.address) : client.address
            if !route.allowsSource(source) {
                decision.outcome = .reply(.error(.forbidden, "client address \(source?.description ?? client.addressText) is not allowed by route \(route.name)", flags: .sourceDenied))
                return decision
            }
        }

        // The path this route forwards (rewritten), which is also what a request filter judges.
        var forwardedURI = uri
        if let rewrite = route.rewrite, let target = rewrite.apply(to: Substring(uri)) { forwardedURI = target }
        if let filter = route.requestFilter, let refusal = RequestFilterGate.check(
            filter, receivedPath: RouteTable.pathWithoutQuery(Substring(view.uri)), forwardedPath: RouteTable.pathWithoutQuery(Substring(forwardedURI)),
            method: view.method, header: { view.value(of: $0) }, host: host, isUpgrade: summary.isUpgrade) {
            decision.audit = Audit()
            decision.audit!.verdict = refusal.verdict
            decision.outcome = .reply(refusal.reply)
            return decision
        }
        if route.kubernetesAPI || route.clientAuthentication != nil || route.kubernetesPolicy != nil {
            let access = ClientAccessGate.check(route, method: view.method, header: { view.value(of: $0) }, forwardedURI: forwardedURI, certificateName: certificateName)
            let audit = Audit()
            audit.verdict = access.verdict
            audit.user = access.user
            audit.kubernetes = access.kubernetes
            decision.audit = audit
            if let refusal = access.refusal {
                decision.outcome = .reply(refusal)
                return decision
            }
        }

        switch route.action {
        case .directResponse(let status, let body):
            decision.outcome = .reply(LocalReply(status: HTTPResponseStatus(statusCode: status), body: body, flags: .localResponse, closeConnection: false))
            return decision
        case .redirect(let redirect):
            let location = redirect.location(requestHost: host, requestPathAndQuery: uri)
            var answer = LocalReply(status: HTTPResponseStatus(statusCode: redirect.status), body: "", flags: .localResponse, closeConnection: false)
            answer.extraHeaders = [("location", location)]
            decision.outcome = .reply(answer)
            return decision
        case .staticFiles(let files):
            decision.outcome = .serveFiles(files, path: RouteTable.pathWithoutQuery(Substring(uri)))
            return decision
        case .forward(let targets):
            guard let targetIndex = WeightedPick.pickIndex(targets, using: &random), let cluster = snapshot.clusters[targets[targetIndex].name] else {
                decision.outcome = .reply(.error(.serviceUnavailable, "no cluster", flags: .noHealthyUpstream))
                return decision
            }
            decision.cluster = cluster
            guard !cluster.addresses.isEmpty else {
                decision.outcome = .reply(.error(.serviceUnavailable, "cluster \(cluster.cluster.name) has no endpoints", flags: .noHealthyUpstream))
                return decision
            }
            var plan = UpstreamPlan(cluster: cluster, targetIndex: targetIndex)
            plan.hashKey = cluster.balancer.hashKey(header: { view.value(of: $0) }, sourceAddress: client.addressText, requestURI: uri)
            let info = HeaderRewriter.ForwardingInfo(clientAddress: client.addressText, requestID: requestID, scheme: client.overTLS ? "https" : "http", trusted: client.trustedPeer,
                                                     hostWhenMissing: summary.host == nil ? cluster.authority : "")
            let target = route.upstreamPathPrefix.map { HeaderRewriter.joinPath($0, forwardedURI) } ?? forwardedURI
            if route.requestHeaders.isEmpty && route.hostRewrite == nil && route.clientCertificateHeaders == .none {
                // The common case: the head's bytes are written in one pass, no header list built.
                var bytes = allocator.buffer(capacity: 512 + target.utf8.count)
                RequestSerializer.requestLine(method: view.method, target: target, into: &bytes)
                HeaderRewriter.upstreamRequestFields(view, summary: summary, info: info, into: &bytes)
                RequestSerializer.endOfHead(into: &bytes)
                plan.headBytes = bytes
            } else {
                var upstreamHead = HeaderRewriter.upstreamRequest(view.head, summary: summary, info: info)
                upstreamHead.uri = target
                if route.clientCertificateHeaders != .none {
                    // What the client sent under these names is never passed on.
                    for name in ClientCertificateHeaders.fieldNames { upstreamHead.headers.remove(name: name) }
                    for field in certificateFacts().fields(route.clientCertificateHeaders) { upstreamHead.headers.add(name: field.name, value: field.value) }
                }
                HeaderRewriter.apply(route.requestHeaders, host: route.hostRewrite, to: &upstreamHead.headers)
                plan.head = upstreamHead
            }
            decision.outcome = .forward(plan)
            return decision
        }
    }
}
