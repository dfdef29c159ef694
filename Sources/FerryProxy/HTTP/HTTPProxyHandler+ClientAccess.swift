import FerryModel
import NIOCore
import NIOHTTP1
import NIOSSL

/// Routes to a Kubernetes API server that is shared: who the client is (a token from the route's token file,
/// or the client certificate the listener verified) and whether the route's policy lets that client do
/// what the request asks. Runs after the request filter.
extension HTTPProxyHandler {
    /// A refusal (401 or 403) to send, or nil to go on; records the user, the request and the verdict.
    func checkClientAccess(_ route: Route, head: HTTPRequestHead, forwardedURI: String) -> LocalReply? {
        guard let ex = exchange else { return nil }
        var request: KubernetesRequest?
        if route.kubernetesAPI || route.kubernetesPolicy != nil {
            let path = RouteTable.pathWithoutQuery(Substring(forwardedURI))
            // A policy judges the path as the API server will read it: only a canonical one (also without a filter).
            if route.kubernetesPolicy != nil, let problem = CanonicalPath.problem(path) {
                ex.event.verdict = Verdict(allowed: false, rule: nil, text: "canonical path: \(problem)", reason: problem)
                return .error(.badRequest, "the request path is not canonical: \(problem)", flags: .accessDenied)
            }
            let query = forwardedURI.utf8.count > path.utf8.count ? Substring(forwardedURI).dropFirst(path.count + 1) : ""
            request = KubernetesRequest(method: head.method.rawValue, path: Substring(RequestFilter.percentDecoded(String(path))), query: query)
            ex.event.kubernetes = request
        }
        var user: ClientAuthentication.User?
        if let authentication = route.clientAuthentication {
            if authentication.clientCertificates, let name = clientCertificateName {
                user = ClientAuthentication.User(name: name)
            } else {
                user = authentication.user(forAuthorization: head.headers.first(name: "authorization"))
            }
            guard let user else {
                ex.event.verdict = Verdict(allowed: false, rule: nil, text: "authentication", reason: "no valid bearer token or client certificate")
                var reply = LocalReply(status: .unauthorized, body: "Unauthorized: send a bearer token from the proxy's token file or a client certificate\n", flags: .accessDenied, closeConnection: false)
                reply.extraHeaders = [("www-authenticate", #"Bearer realm="ferry""#)]
                return reply
            }
            ex.event.user = user.name
        }
        if let policy = route.kubernetesPolicy, let request {
            let verdict = policy.decide(request, user: user?.name ?? "", groups: user?.groups ?? [])
            ex.event.verdict = verdict
            if !verdict.allowed {
                return LocalReply(status: .forbidden, body: "Forbidden: \(verdict.reason) (no rule of the proxy's policy allows it)\n", flags: .accessDenied, closeConnection: false)
            }
        }
        return nil
    }

    /// The common name of the client certificate this connection's TLS verified, or nil.
    var clientCertificateName: String? {
        guard overTLS, let context, let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
              let certificate = tls.peerCertificate
        else { return nil }
        // NIOSSL exposes the subject's common name only in the certificate's description.
        let text = certificate.description
        guard let start = text.range(of: ";common_name=") else { return nil }
        let rest = text[start.upperBound...]
        let name = rest.prefix { $0 != ";" && $0 != ">" }
        return name.isEmpty ? nil : String(name)
    }
}
