/// A request's destination host, normalised the way an access rule must see it: an IP literal in any
/// unambiguous spelling a resolver accepts becomes the address (parts with leading zeros, octal to some
/// and decimal to others, are refused); a name is lower-cased, loses one trailing dot (an empty label is
/// refused) and is
/// converted to its ASCII (punycode) form, so that no spelling slips past a rule.
public enum HostName: Hashable, Sendable, CustomStringConvertible {
    case name(String)
    case address(IPAddress)

    /// Nil when `text` is empty or cannot be a host (spaces, control characters, `@`, `/`...).
    public init?(normalising text: String) {
        var host = Substring(text)
        if host.hasPrefix("["), host.hasSuffix("]") {
            guard let v6 = IPAddress(parsing: host.dropFirst().dropLast()), case .v6 = v6 else { return nil }
            self = .address(v6.unmappingIPv4)
            return
        }
        // One trailing dot is the root (`example.com.`); more leave an empty label, which is no host.
        if host.hasSuffix(".") { host = host.dropLast() }
        guard !host.isEmpty else { return nil }
        if let address = IPAddress(parsingLoosely: host) {
            // `0177.0.0.1` is 127.0.0.1 to inet_aton and 177.0.0.1 to others: a part with a leading zero
            // has no one meaning, so it is no host.
            if IPAddress.hasLeadingZeroPart(host) { return nil }
            self = .address(address.unmappingIPv4)
            return
        }
        if host.contains(":") { return nil }
        // A name ending in a number is an address that did not parse (WHATWG URL rule), never a name.
        if let last = host.split(separator: ".").last, IPAddress.looseNumber(last) != nil || last.allSatisfy(\.isNumber) { return nil }
        var labels: [String] = []
        for label in host.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { return nil }
            if label.unicodeScalars.allSatisfy(\.isASCII) {
                let lower = label.lowercased()
                guard lower.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x5f }) else { return nil }
                labels.append(lower)
            } else {
                guard let encoded = Punycode.encode(String(label).lowercased()) else { return nil }
                labels.append("xn--" + encoded)
            }
        }
        self = .name(labels.joined(separator: "."))
    }

    public var description: String {
        switch self {
        case .name(let n): n
        case .address(.v6(let h, let l)): "[\(IPAddress.v6(high: h, low: l))]"
        case .address(let a): a.description
        }
    }
}

extension IPAddress {
    /// IPv4 as `inet_aton` reads it — `127.0.0.1`, `127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`,
    /// `0x7f.1` — or any IPv6 text. Nil for anything else (including names that merely start with digits).
    public init?(parsingLoosely text: Substring) {
        if text.contains(":") {
            self.init(parsing: text)
            return
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var numbers: [UInt64] = []
        for part in parts {
            guard let n = IPAddress.looseNumber(part) else { return nil }
            numbers.append(n)
        }
        // The last part fills all remaining bytes (a.b.c.d, a.b.16bits, a.24bits, 32bits).
        var value: UInt64 = 0
        for (i, n) in numbers.enumerated() {
            if i < numbers.count - 1 {
                guard n <= 0xff else { return nil }
                value |= n << UInt64(8 * (3 - i))
            } else {
                let bits = 8 * (4 - i)
                guard n < (UInt64(1) << UInt64(bits)) else { return nil }
                value |= n
            }
        }
        self = .v4(UInt32(value))
    }

    /// Whether a dotted numeric text has a decimal part with a leading zero (`010`, `0177`): octal to
    /// inet_aton, decimal to other parsers.
    static func hasLeadingZeroPart(_ text: Substring) -> Bool {
        text.split(separator: ".", omittingEmptySubsequences: false).contains { part in
            part.utf8.count > 1 && part.utf8.first == UInt8(ascii: "0") && part.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        }
    }

    /// One inet_aton part: decimal, `0x` hexadecimal or leading-zero octal.
    static func looseNumber(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.count <= 34 else { return nil }
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            let digits = text.dropFirst(2)
            if digits.isEmpty { return 0 }
            return UInt64(digits, radix: 16)
        }
        if text.count > 1, text.hasPrefix("0") {
            return UInt64(text.dropFirst(), radix: 8)
        }
        guard text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(text)
    }
}

/// RFC 3492 Punycode, encoding only (for turning an internationalised label into its `xn--` form).
enum Punycode {
    static func encode(_ input: String) -> String? {
        let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700
        let scalars = input.unicodeScalars.map { Int($0.value) }
        var output = scalars.filter { $0 < 0x80 }.map { Character(Unicode.Scalar(UInt8($0))) }.map(String.init).joined()
        let basicCount = output.count
        var handled = basicCount
        if basicCount > 0 { output += "-" }
        var n = 0x80, delta = 0, bias = 72
        func adapt(_ d: Int, _ count: Int, _ first: Bool) -> Int {
            var d = first ? d / damp : d / 2
            d += d / count
            var k = 0
            while d > ((base - tMin) * tMax) / 2 {
                d /= base - tMin
                k += base
            }
            return k + (base - tMin + 1) * d / (d + skew)
        }
        func digit(_ d: Int) -> Character {
            Character(Unicode.Scalar(UInt8(d < 26 ? d + 97 : d + 22)))
        }
        while handled < scalars.count {
            guard let m = scalars.filter({ $0 >= n }).min() else { return nil }
            guard (m - n) <= (Int.max - delta) / (handled + 1) else { return nil }
            delta += (m - n) * (handled + 1)
            n = m
            for c in scalars {
                if c < n { delta += 1 }
                if c == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, handled + 1, handled == basicCount)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return output
    }
}
