#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time for logs, formatted without Foundation.
public enum WallClock {
    public struct Instant: Sendable, Hashable {
        public var seconds: Int
        public var nanoseconds: Int

        /// The epoch, for events that are not logged.
        public static let zero = Instant(seconds: 0, nanoseconds: 0)

        public init(seconds: Int, nanoseconds: Int) {
            self.seconds = seconds
            self.nanoseconds = nanoseconds
        }

        /// `2026-11-30T09:55:00.123Z`
        public var iso8601: String {
            let t = broken()
            return "\(pad(t.year, 4))-\(pad(t.month, 2))-\(pad(t.day, 2))T\(pad(t.hour, 2)):\(pad(t.minute, 2)):\(pad(t.second, 2)).\(pad(nanoseconds / 1_000_000, 3))Z"
        }

        /// `30/Nov/2026:09:55:00 +0000` (Common Log Format).
        public var commonLogTime: String {
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            let t = broken()
            return "\(pad(t.day, 2))/\(months[t.month - 1])/\(t.year):\(pad(t.hour, 2)):\(pad(t.minute, 2)):\(pad(t.second, 2)) +0000"
        }

        private func broken() -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
            var time = time_t(seconds)
            var parts = tm()
            gmtime_r(&time, &parts)
            return (Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        }

        private func pad(_ value: Int, _ width: Int) -> String {
            let s = String(value)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
    }

    public static func now() -> Instant {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Instant(seconds: Int(ts.tv_sec), nanoseconds: Int(ts.tv_nsec))
    }
}
