/// An IPv4 or IPv6 address as a number, for range checks. Parsing accepts the canonical spellings only
/// (dotted quad; RFC 4291 text with `::` and an embedded dotted quad); anything else is not an address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6(high: UInt64, low: UInt64)

    public var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }

    public init?(parsing text: Substring) {
        if text.contains(":") {
            guard let value = IPAddress.parseV6(text) else { return nil }
            self = .v6(high: value.0, low: value.1)
        } else {
            guard let value = IPAddress.parseV4(text) else { return nil }
            self = .v4(value)
        }
    }

    public init?(parsing text: String) {
        self.init(parsing: Substring(text))
    }

    /// `::ffff:a.b.c.d` as the IPv4 address it carries; other addresses unchanged.
    public var unmappingIPv4: IPAddress {
        if case .v6(let high, let low) = self, high == 0, low >> 32 == 0xffff {
            return .v4(UInt32(truncatingIfNeeded: low))
        }
        return self
    }

    /// The IPv4 address an IPv6 address carries, for access and deny checks: IPv4-mapped
    /// (`::ffff:0:0/96`), IPv4-compatible (`::a.b.c.d`, not `::` or `::1`), NAT64 (`64:ff9b::/96`) and 6to4
    /// (`2002::/16`, the address in bits 16–47) all reach that IPv4 address. Other addresses unchanged.
    public var unwrappingIPv4: IPAddress {
        guard case .v6(let high, let low) = self else { return self }
        let low32 = UInt32(truncatingIfNeeded: low)
        if high == 0, low >> 32 == 0xffff { return .v4(low32) }
        if high == 0, low >> 32 == 0, low > 1 { return .v4(low32) }
        if high == 0x0064_ff9b_0000_0000, low >> 32 == 0 { return .v4(low32) }
        if high >> 48 == 0x2002 { return .v4(UInt32(truncatingIfNeeded: high >> 16)) }
        return self
    }

    public var description: String {
        switch self {
        case .v4(let v):
            return "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
        case .v6(let high, let low):
            let groups = (0..<8).map { i -> UInt16 in
                let word = i < 4 ? high : low
                return UInt16(truncatingIfNeeded: word >> (UInt64(3 - i % 4) * 16))
            }
            // RFC 5952: the longest run of two or more zero groups (the first on a tie) becomes "::".
            var best = (start: -1, length: 0)
            var i = 0
            while i < 8 {
                if groups[i] == 0 {
                    var j = i
                    while j < 8 && groups[j] == 0 { j += 1 }
                    if j - i > best.length { best = (i, j - i) }
                    i = j
                } else {
                    i += 1
                }
            }
            let hex = groups.map { String($0, radix: 16) }
            guard best.length >= 2 else { return hex.joined(separator: ":") }
            let head = hex[..<best.start].joined(separator: ":")
            let tail = hex[(best.start + best.length)...].joined(separator: ":")
            return head + "::" + tail
        }
    }

    static func parseV4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  let octet = UInt32(part), octet <= 255, part == "0" || !part.hasPrefix("0")
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    static func parseV6(_ text: Substring) -> (UInt64, UInt64)? {
        var text = text
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }  // zone index
        let halves = text.split(separator: "::", omittingEmptySubsequences: false).map(String.init)
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, piece) in pieces.enumerated() {
                if i == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseV4(piece) else { return nil }
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xffff))
                } else {
                    guard (1...4).contains(piece.count), let g = UInt16(piece, radix: 16) else { return nil }
                    result.append(g)
                }
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        var all: [UInt16]
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count <= 7 else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard head.count == 8 else { return nil }
            all = head
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<4 { high = high << 16 | UInt64(all[i]) }
        for i in 4..<8 { low = low << 16 | UInt64(all[i]) }
        return (high, low)
    }
}

/// An address block in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is a block of one.
public struct IPRange: Hashable, Sendable, CustomStringConvertible, Encodable {
    public let base: IPAddress
    public let prefixLength: Int

    /// Parses CIDR text; nil when it is not an address with an optional `/length` in range.
    public init?(parsing text: String) {
        let trimmed = text.trimmingSpaces
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parsing: parts[0]) else { return nil }
        let maxLength = if case .v4 = address { 32 } else { 128 }
        var length = maxLength
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let l = Int(parts[1]), l <= maxLength else { return nil }
            length = l
        }
        self.prefixLength = length
        self.base = IPRange.masked(address, length)
    }

    public func contains(_ address: IPAddress) -> Bool {
        let address = address.unmappingIPv4
        switch (base, address) {
        case (.v4, .v4), (.v6, .v6): return IPRange.masked(address, prefixLength) == base
        default: return false
        }
    }

    static func masked(_ address: IPAddress, _ length: Int) -> IPAddress {
        switch address {
        case .v4(let v):
            let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)
            return .v4(v & mask)
        case .v6(let high, let low):
            let highMask: UInt64 = length == 0 ? 0 : length >= 64 ? ~0 : ~UInt64(0) << UInt64(64 - length)
            let lowMask: UInt64 = length <= 64 ? 0 : length == 128 ? ~0 : ~UInt64(0) << UInt64(128 - length)
            return .v6(high: high & highMask, low: low & lowMask)
        }
    }

    public var description: String { "\(base)/\(prefixLength)" }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
