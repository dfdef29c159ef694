/// The character classes of HTTP/1.1 (RFC 9110 §5.6.2, RFC 9112 §3, §5), as one lookup table.
enum HTTP1Grammar {
    static let tokenBit: UInt8 = 1
    /// field-vchar, SP and HTAB: what a field value may hold (obs-text included).
    static let fieldValueBit: UInt8 = 2
    /// What a request-target may hold: visible ASCII and bytes above 0x7F (as llhttp and nginx accept them).
    static let targetBit: UInt8 = 4
    static let hexBit: UInt8 = 8

    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 256)
        for b in 0..<256 {
            var bits: UInt8 = 0
            let c = UInt8(b)
            let isDigit = c >= 0x30 && c <= 0x39
            let isAlpha = (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            if isDigit || isAlpha || "!#$%&'*+-.^_`|~".utf8.contains(c) { bits |= tokenBit }
            if c == 0x09 || c == 0x20 || (c >= 0x21 && c <= 0x7E) || c >= 0x80 { bits |= fieldValueBit }
            if (c >= 0x21 && c <= 0x7E) || c >= 0x80 { bits |= targetBit }
            if isDigit || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66) { bits |= hexBit }
            t[b] = bits
        }
        return t
    }()

    @inline(__always)
    static func isToken(_ c: UInt8) -> Bool { table.withUnsafeBufferPointer { $0[Int(c)] & tokenBit != 0 } }

    @inline(__always)
    static func isFieldValue(_ c: UInt8) -> Bool { table.withUnsafeBufferPointer { $0[Int(c)] & fieldValueBit != 0 } }

    @inline(__always)
    static func isTarget(_ c: UInt8) -> Bool { table.withUnsafeBufferPointer { $0[Int(c)] & targetBit != 0 } }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case 0x30...0x39: Int(c - 0x30)
        case 0x41...0x46: Int(c - 0x41 + 10)
        case 0x61...0x66: Int(c - 0x61 + 10)
        default: nil
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
