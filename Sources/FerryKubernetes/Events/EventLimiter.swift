/// Which Kubernetes Events to send, as client-go's event correlator limits them: an Event identical to one
/// sent in the last `repeatWindow` (same object, type, reason and message) is not sent again, and each
/// object has a token bucket of `burst` Events refilled one per `refill` (client-go's spam filter: 25, one
/// per 5 minutes). A value: the I/O side asks before each write.
public struct EventLimiter: Sendable {
    public var burst = 25.0
    public var refill: Duration = .seconds(300)
    public var repeatWindow: Duration = .seconds(600)

    private var buckets: [String: (tokens: Double, at: Duration)] = [:]
    private var sent: [String: Duration] = [:]

    public init() {}

    /// Whether to send this Event at `now` (taking a token when it is).
    public mutating func admit(object: String, type: String, reason: String, message: String, now: Duration) -> Bool {
        let signature = "\(object)\u{0}\(type)\u{0}\(reason)\u{0}\(message)"
        if let last = sent[signature], now - last < repeatWindow { return false }
        var bucket = buckets[object] ?? (burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) / refill)
        bucket.at = now
        guard bucket.tokens >= 1 else {
            buckets[object] = bucket
            return false
        }
        bucket.tokens -= 1
        buckets[object] = bucket
        sent[signature] = now
        if sent.count > 4096 { sent = sent.filter { now - $0.value < repeatWindow } }
        return true
    }
}
