/// Renders and parses durations the way configuration writes them: `250ms`, `15s`, `2m`, `1h`.
public struct DurationText: Encodable, CustomStringConvertible, Sendable {
    public var duration: Duration

    public init(_ duration: Duration) {
        self.duration = duration
    }

    public var description: String {
        let ms = duration.milliseconds
        if ms % 3_600_000 == 0, ms > 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0, ms > 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// Parses `<number><unit>` with unit `ms`, `s`, `m` or `h`; nil when malformed.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (unit, factor) in units where text.hasSuffix(unit) {
            let number = text.dropLast(unit.count)
            // "ms" also ends in "s": make sure "5ms" is not read as "5m" + "s".
            if unit == "s", number.hasSuffix("m") { continue }
            guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(number) else {
                return nil
            }
            return .milliseconds(value * factor)
        }
        return nil
    }
}

extension Duration {
    /// Whole milliseconds in this duration.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
