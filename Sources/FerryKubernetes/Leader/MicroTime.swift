import Foundation

/// Kubernetes' MicroTime: RFC 3339 in UTC with microseconds.
public enum MicroTime {
    /// Now, as a duration since the Unix epoch.
    public static var now: Duration {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return .seconds(spec.tv_sec) + .nanoseconds(spec.tv_nsec)
    }

    public static func format(_ sinceEpoch: Duration) -> String {
        let (seconds, attoseconds) = sinceEpoch.components
        let micros = attoseconds / 1_000_000_000_000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let fraction = String(micros)
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))."
            + String(repeating: "0", count: max(0, 6 - fraction.count)) + fraction + "Z"
    }

    /// `2026-12-06T00:45:15.123456Z` (or without a fraction, or with an offset of Z only).
    public static func parse(_ text: String) -> Duration? {
        let main = text.prefix(19)
        let fields = main.split(whereSeparator: { "-T:".contains($0) }).compactMap { Int32($0) }
        guard fields.count == 6, text.hasSuffix("Z") else { return nil }
        var parts = tm()
        parts.tm_year = fields[0] - 1900
        parts.tm_mon = fields[1] - 1
        parts.tm_mday = fields[2]
        parts.tm_hour = fields[3]
        parts.tm_min = fields[4]
        parts.tm_sec = fields[5]
        let seconds = timegm(&parts)
        var micros: Int64 = 0
        if let dot = text.firstIndex(of: ".") {
            let digits = text[text.index(after: dot)...].prefix { $0.isNumber }.prefix(6)
            micros = (Int64(digits) ?? 0) * Int64(pow(10.0, Double(6 - digits.count)))
        }
        return .seconds(Int64(seconds)) + .microseconds(micros)
    }
}
