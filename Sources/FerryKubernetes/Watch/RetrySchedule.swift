/// How long a list or watch waits before trying again, as client-go's reflector does
/// (`wait.NewExponentialBackoffManager(800ms, 30s, 2m, 2.0, 1.0)`): the wait doubles from 800 ms up to
/// 30 s, each with up to as much again of random jitter, and starts over after two minutes without a
/// failure. A `Retry-After` from the server (429, 5xx) is waited for as given instead (capped at the
/// maximum).
public struct RetrySchedule: Sendable {
    public var initial: Duration = .milliseconds(800)
    public var maximum: Duration = .seconds(30)
    public var resetAfter: Duration = .seconds(120)
    public var factor = 2.0
    public var jitter = 1.0

    private var current: Duration?
    private var lastFailure: Duration?

    public init() {}

    /// The wait after a failure at `now` (time since any fixed origin).
    public mutating func delay(now: Duration, retryAfter: Duration? = nil, using random: inout some RandomNumberGenerator) -> Duration {
        defer { lastFailure = now }
        if let last = lastFailure, now - last > resetAfter { current = nil }
        let base: Duration
        if let current { base = min(maximum, current * factor) } else { base = initial }
        current = base
        if let retryAfter { return min(maximum, max(.zero, retryAfter)) }
        return base + base * (jitter * Double.random(in: 0..<1, using: &random))
    }

    /// A success: the next failure waits the initial time again.
    public mutating func succeeded() {
        current = nil
        lastFailure = nil
    }
}
