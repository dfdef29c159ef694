import Foundation

/// Kubernetes' MicroTime (Leases, Events): RFC 3339 in UTC with microseconds.
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

    /// `2026-12-06T00:45:15.123456Z`: the seconds as `Timestamp` reads any RFC 3339 time (an offset
    /// included), then up to six digits of fraction.
    public static func parse(_ text: String) -> Duration? {
        guard let seconds = Timestamp.seconds(text) else { return nil }
        var micros: Int64 = 0
        if let dot = text.firstIndex(of: ".") {
            let digits = String(text[text.index(after: dot)...].prefix { $0.isNumber }.prefix(6))
            micros = (Int64(digits) ?? 0) * Int64(String("1" + String(repeating: "0", count: 6 - digits.count)))!
        }
        return .seconds(seconds) + .microseconds(micros)
    }
}

/// RFC 3339 timestamps as the API server writes them, to seconds since the epoch (UTC, `Z` or an offset).
enum Timestamp {
    static func seconds(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var v: Int64 = 0
            for i in from..<(from + count) {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116, b[13] == 58, b[16] == 58,
              let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let s = num(17, 2),
              (1...12).contains(mo), (1...31).contains(d)
        else { return nil }
        var i = 19
        if i < b.count, b[i] == 46 { i += 1; while i < b.count, b[i] >= 48 && b[i] <= 57 { i += 1 } }  // fraction
        var offset: Int64 = 0
        if i < b.count, b[i] == 90 || b[i] == 122 {
            i += 1
        } else if i + 6 == b.count, b[i] == 43 || b[i] == 45, let oh = num(i + 1, 2), let om = num(i + 4, 2) {
            offset = (oh * 3600 + om * 60) * (b[i] == 43 ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        // Days from civil (Howard Hinnant's algorithm).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + h * 3600 + mi * 60 + s - offset
    }
}
