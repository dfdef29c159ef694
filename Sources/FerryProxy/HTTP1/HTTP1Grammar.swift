/// The character classes of HTTP/1.1 (RFC 9110 §5.6.2, RFC 9112 §3, §5), as comparisons and a bitmap
/// held in constants (no lazily built table: a global array would cost a `swift_once` check per byte).
enum HTTP1Grammar {
    /// tchar (`!#$%&'*+-.^_` and backtick, `|~`, digits, letters): bits 0–63 and 64–127 of ASCII.
    private static let tokenLow: UInt64 = 0x03FF_6CFA_0000_0000
    private static let tokenHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    @inline(__always)
    static func isToken(_ c: UInt8) -> Bool {
        c < 64 ? (tokenLow >> UInt64(c)) & 1 != 0 : c < 128 ? (tokenHigh >> UInt64(c - 64)) & 1 != 0 : false
    }

    /// field-vchar, SP and HTAB: what a field value may hold (obs-text included).
    @inline(__always)
    static func isFieldValue(_ c: UInt8) -> Bool { c == 0x09 || (c >= 0x20 && c != 0x7F) }

    /// What a request-target may hold: visible ASCII and bytes above 0x7F (as llhttp and nginx accept them).
    @inline(__always)
    static func isTarget(_ c: UInt8) -> Bool { c > 0x20 && c != 0x7F }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case 0x30...0x39: Int(c - 0x30)
        case 0x41...0x46: Int(c - 0x41 + 10)
        case 0x61...0x66: Int(c - 0x61 + 10)
        default: nil
        }
    }

    /// Whether `bytes` spell `name` in any case (ASCII letters fold; other bytes must match).
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ name: String) -> Bool {
        var name = name
        return name.withUTF8 { n in
            guard bytes.count == n.count else { return false }
            for i in 0..<bytes.count {
                let x = bytes[i], y = n[i]
                if (x >= 0x41 && x <= 0x5A ? x | 0x20 : x) != (y >= 0x41 && y <= 0x5A ? y | 0x20 : y) { return false }
            }
            return true
        }
    }

    /// ASCII case-insensitive comparison of `bytes` with a lower-case literal.
    @inline(__always)
    static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        let l = lower.utf8Start
        for i in 0..<bytes.count {
            let b = bytes[i]
            // Only letters fold; other bytes must match exactly.
            if (b >= 0x41 && b <= 0x5A ? b | 0x20 : b) != l[i] { return false }
        }
        return true
    }
}
