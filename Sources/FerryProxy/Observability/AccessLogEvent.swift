import FerryModel

/// One request, as every role records it. The output formats are renderings of this one event.
public struct AccessLogEvent: Sendable {
    public var startTime: WallClock.Instant
    public var role: String = "proxy"
    public var listener: String
    public var downstream: String
    public var requestID: String = ""
    public var method: String = ""
    public var authority: String = ""
    public var path: String = ""
    public var httpVersion: String = "HTTP/1.1"
    public var route: String = ""
    public var cluster: String = ""
    public var upstream: String = ""
    public var status: Int = 0
    public var bytesReceived: Int = 0
    public var bytesSent: Int = 0
    public var durationNanos: Int64 = 0
    /// From the request being sent upstream until the response head arrived; nil when none was.
    public var upstreamNanos: Int64? = nil
    public var flags: ResponseFlags = []
    public var userAgent: String = ""
    public var forwardedFor: String = ""
    public var referer: String = ""
    public var attempts: Int = 0
    /// The access policy's decision, on listeners that have one.
    public var verdict: Verdict?
    /// The authenticated proxy user, when the listener requires one.
    public var user: String = ""
    /// On routes to a Kubernetes API server: what the request asks for.
    public var kubernetes: KubernetesRequest?
    /// The Pod behind the client address, when the forward proxy watches Pods and knows it.
    public var source: SourceIdentity?
    /// On intercept listeners: where the connection was going, and what the decision was based on.
    public var interception: Interception?

    public struct Interception: Sendable {
        /// `address:port` before the kernel redirected the connection.
        public var originalDestination: String
        /// `host` (the request's Host), `sni` (the ClientHello's server name) or `address`.
        public var decidedOn: String
    }

    public init(startTime: WallClock.Instant, listener: String, downstream: String) {
        self.startTime = startTime
        self.listener = listener
        self.downstream = downstream
    }
}

/// Why Ferry answered as it did; Envoy's short names where Envoy has one.
public struct ResponseFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// No route matched (404).
    public static let noRoute = ResponseFlags(rawValue: 1 << 0)
    /// The cluster had no endpoint (503).
    public static let noHealthyUpstream = ResponseFlags(rawValue: 1 << 1)
    /// Connecting to the upstream failed (502/503).
    public static let upstreamConnectionFailure = ResponseFlags(rawValue: 1 << 2)
    /// The upstream response did not arrive in time (504).
    public static let upstreamRequestTimeout = ResponseFlags(rawValue: 1 << 3)
    /// The upstream closed the connection before the response was complete.
    public static let upstreamConnectionTermination = ResponseFlags(rawValue: 1 << 4)
    /// The downstream closed the connection before the response was complete.
    public static let downstreamConnectionTermination = ResponseFlags(rawValue: 1 << 5)
    /// The request broke HTTP/1.1 rules (400, 414, 431).
    public static let downstreamProtocolError = ResponseFlags(rawValue: 1 << 6)
    /// The request head did not arrive in time (408).
    public static let requestHeadersTimeout = ResponseFlags(rawValue: 1 << 7)
    /// Retries were exhausted.
    public static let upstreamRetryLimitExceeded = ResponseFlags(rawValue: 1 << 8)
    /// The upstream's response broke HTTP/1.1 rules (502).
    public static let upstreamProtocolError = ResponseFlags(rawValue: 1 << 9)
    /// Ferry answered from configuration (direct_response, redirect).
    public static let localResponse = ResponseFlags(rawValue: 1 << 10)
    /// The request body was larger than allowed (413).
    public static let requestTooLarge = ResponseFlags(rawValue: 1 << 11)
    /// The client's address is not allowed on the route (403).
    public static let sourceDenied = ResponseFlags(rawValue: 1 << 12)
    /// A route's request filter refused the request (403, or 400 for a path that is not canonical).
    public static let accessDenied = ResponseFlags(rawValue: 1 << 13)

    static let names: [(ResponseFlags, String)] = [
        (.noRoute, "NR"), (.noHealthyUpstream, "UH"), (.upstreamConnectionFailure, "UF"),
        (.upstreamRequestTimeout, "UT"), (.upstreamConnectionTermination, "UC"),
        (.downstreamConnectionTermination, "DC"), (.downstreamProtocolError, "DPE"),
        (.requestHeadersTimeout, "RHT"), (.upstreamRetryLimitExceeded, "URX"),
        (.upstreamProtocolError, "UPE"), (.localResponse, "LR"), (.requestTooLarge, "RTL"),
        (.sourceDenied, "SD"), (.accessDenied, "RBAC"),
    ]

    /// Comma-separated short names, `-` when none (Envoy's rendering).
    public var text: String {
        if isEmpty { return "-" }
        return ResponseFlags.names.filter { contains($0.0) }.map(\.1).joined(separator: ",")
    }
}
