import FerryModel
import NIOCore
import NIOHTTP1
import NIOSSL
import X509

/// Routes to a Kubernetes API server that is shared: who the client is (a token from the route's token file,
/// or the client certificate the listener verified) and whether the route's policy lets that client do
/// what the request asks. Runs after the request filter. Pure, like `RequestFilterGate`.
enum ClientAccessGate {
    struct Outcome {
        /// A refusal (400, 401 or 403) to send, or nil to go on.
        var refusal: LocalReply?
        /// For the access log.
        var verdict: Verdict?
        var user: String?
        var kubernetes: KubernetesRequest?
    }

    /// `header` gives a field of the request by name (Authorization); `certificateName` is the common name of
    /// the client certificate the listener verified, asked only when the route accepts certificates.
    static func check(_ route: Route, method: HTTPMethod, header: (String) -> String?, forwardedURI: String, certificateName: () -> String?) -> Outcome {
        var outcome = Outcome()
        var request: KubernetesRequest?
        if route.kubernetesAPI || route.kubernetesPolicy != nil {
            let path = RouteTable.pathWithoutQuery(Substring(forwardedURI))
            // A policy judges the path as the API server will read it: only a canonical one (also without a filter).
            if route.kubernetesPolicy != nil, let problem = CanonicalPath.problem(path) {
                outcome.verdict = Verdict(allowed: false, rule: nil, text: "canonical path: \(problem)", reason: problem)
                outcome.refusal = .error(.badRequest, "the request path is not canonical: \(problem)", flags: .accessDenied)
                return outcome
            }
            let query = forwardedURI.utf8.count > path.utf8.count ? Substring(forwardedURI).dropFirst(path.count + 1) : ""
            request = KubernetesRequest(method: method.rawValue, path: Substring(RequestFilter.percentDecoded(String(path))), query: query)
            outcome.kubernetes = request
        }
        var user: ClientAuthentication.User?
        if let authentication = route.clientAuthentication {
            if authentication.clientCertificates, let name = certificateName() {
                user = ClientAuthentication.User(name: name)
            } else {
                user = authentication.user(forAuthorization: header("authorization"))
            }
            guard let user else {
                outcome.verdict = Verdict(allowed: false, rule: nil, text: "authentication", reason: "no valid bearer token or client certificate")
                var reply = LocalReply(status: .unauthorized, body: "Unauthorized: send a bearer token from the proxy's token file or a client certificate\n", flags: .accessDenied, closeConnection: false)
                reply.extraHeaders = [("www-authenticate", #"Bearer realm="ferry""#)]
                outcome.refusal = reply
                return outcome
            }
            outcome.user = user.name
        }
        if let policy = route.kubernetesPolicy, let request {
            let verdict = policy.decide(request, user: user?.name ?? "", groups: user?.groups ?? [])
            outcome.verdict = verdict
            if !verdict.allowed {
                outcome.refusal = LocalReply(status: .forbidden, body: "Forbidden: \(verdict.reason) (no rule of the proxy's policy allows it)\n", flags: .accessDenied, closeConnection: false)
            }
        }
        return outcome
    }
}

extension HTTPProxyHandler {
    /// The certificate the client presented on this connection's TLS, verified or not.
    private var presentedCertificate: NIOSSLCertificate? {
        // An HTTP/2 stream's TLS is its connection's, the parent channel.
        guard overTLS, let context,
              let tls = try? ((overHTTP2 ? context.channel.parent?.pipeline : nil) ?? context.pipeline).syncOperations.handler(type: NIOSSLServerHandler.self)
        else { return nil }
        return tls.peerCertificate
    }

    /// The client certificate as the `ssl-client-*` fields describe it (nginx's `$ssl_client_verify`,
    /// `$ssl_client_s_dn`, `$ssl_client_i_dn`, `$ssl_client_escaped_cert`). A certificate accepted without
    /// verification (`optional_no_ca`) is `FAILED:`, so an upstream that trusts `SUCCESS` trusts only
    /// certificates that chain to the configured CA.
    var clientCertificateFacts: ClientCertificateFacts {
        // Over plain HTTP there is no TLS to speak of: no field is sent (nginx's variables are empty there).
        guard overTLS else { return ClientCertificateFacts(verify: "") }
        guard let presented = presentedCertificate else { return .none }
        guard let der = try? presented.toDERBytes(), let certificate = try? Certificate(derEncoded: der) else {
            return ClientCertificateFacts(verify: "FAILED:the certificate cannot be read")
        }
        return ClientCertificateFacts(
            verify: clientCertificatesVerified ? "SUCCESS" : "FAILED:not verified (optional_no_ca)",
            subjectDN: certificate.subject.description, issuerDN: certificate.issuer.description,
            pem: (try? certificate.serializeAsPEM().pemString) ?? "")
    }

    /// `clientCertificateFacts`, parsed on the connection's first request that needs them.
    var cachedCertificateFacts: ClientCertificateFacts {
        if let facts = certificateFactsRead { return facts }
        let facts = clientCertificateFacts
        certificateFactsRead = facts
        return facts
    }

    /// The common name of the client certificate this connection's TLS verified, or nil.
    var clientCertificateName: String? {
        guard clientCertificatesVerified, let certificate = presentedCertificate else { return nil }
        // NIOSSL exposes the subject's common name only in the certificate's description.
        let text = certificate.description
        guard let start = text.range(of: ";common_name=") else { return nil }
        let rest = text[start.upperBound...]
        let name = rest.prefix { $0 != ";" && $0 != ">" }
        return name.isEmpty ? nil : String(name)
    }
}
