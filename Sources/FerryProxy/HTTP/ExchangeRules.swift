import FerryModel
import NIOCore
import NIOHTTP1

/// Pure decisions of an HTTP exchange: when a request may be tried again, and how often deadlines are checked.
enum ExchangeRules {
    enum RetryReason: Equatable {
        /// The upstream closed before a response head.
        case reset
        /// The response status is one the route retries on.
        case status
    }

    /// Methods that may be repeated without changing the outcome (RFC 9110 §9.2.2).
    static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: return true
        default: return false
        }
    }

    /// Whether an attempt that may have reached the upstream can be tried again. Only idempotent,
    /// body-less, complete requests are replayed (Ferry keeps no copy of a streamed body); a reused
    /// pooled connection that closed under the request is always worth one more try for those.
    static func mayRetry(
        _ reason: RetryReason,
        policy: RetryPolicy,
        attempts: Int,
        method: HTTPMethod,
        framing: HeaderRewriter.Framing,
        requestComplete: Bool,
        reusedConnection: Bool,
        isUpgrade: Bool
    ) -> Bool {
        guard !isUpgrade, requestComplete, framing == .none, isIdempotent(method) else { return false }
        guard attempts <= max(policy.attempts, reason == .reset && reusedConnection ? 1 : 0) else { return false }
        switch reason {
        case .reset: return reusedConnection || policy.retries(.reset)
        case .status: return true
        }
    }

    /// How often a connection checks its deadlines: a quarter of the shortest one, within 10 ms to 5 s.
    static func watchdogTick(_ listener: Listener) -> TimeAmount {
        var shortest = min(listener.http.timeouts.idle, listener.http.timeouts.requestHeaders)
        for vhost in listener.http.virtualHosts {
            for route in vhost.routes {
                shortest = min(shortest, route.timeout)
                if let idle = route.streamIdleTimeout { shortest = min(shortest, idle) }
            }
        }
        let quarter = shortest.milliseconds / 4
        return .milliseconds(min(max(quarter, 10), 5000))
    }
}
