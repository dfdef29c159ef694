import FerryModel
import NIOHTTP1

/// Applies a route's `RequestFilter` to one request: the canonical-path check on the path as received, then
/// `kubectl proxy`'s lists on the path the route forwards (after `rewrite`), then the Origin check of upgrades.
/// Pure: returns the refusal to send, or nil to go on.
enum RequestFilterGate {
    struct Refusal {
        var reply: LocalReply
        var verdict: Verdict
    }

    /// `header` gives a field of the request by name (the Origin of an upgrade).
    static func check(_ filter: RequestFilter, receivedPath: Substring, forwardedPath: Substring, method: HTTPMethod, header: (String) -> String?, host: String, isUpgrade: Bool) -> Refusal? {
        if filter.canonicalPathsOnly, let problem = CanonicalPath.problem(receivedPath) {
            let reply = LocalReply.error(.badRequest, "the request path is not canonical: \(problem)", flags: .accessDenied)
            return Refusal(reply: reply, verdict: Verdict(allowed: false, rule: nil, text: "canonical path: \(problem)", reason: problem))
        }
        if case .reject(let reason) = filter.decide(path: String(forwardedPath), method: method.rawValue, host: host) {
            return forbidden(reason)
        }
        if isUpgrade {
            let origin = header("origin")
            if !filter.allowsUpgrade(origin: origin) { return forbidden("upgrade from Origin \(origin ?? "") is not a loopback origin") }
        }
        return nil
    }

    /// kubectl proxy's refusal: 403 with Go's `http.Error` body.
    private static func forbidden(_ reason: String) -> Refusal {
        var reply = LocalReply(status: .forbidden, body: "Forbidden\n", flags: .accessDenied, closeConnection: false)
        reply.extraHeaders = [("x-content-type-options", "nosniff")]
        return Refusal(reply: reply, verdict: Verdict(allowed: false, rule: nil, text: "request filter: \(reason)", reason: reason))
    }
}
