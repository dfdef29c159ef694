import NIOCore

extension SocketAddress {
    /// The IP address as text, as `ipAddress` gives it, but an IPv4 address is written here digit by digit:
    /// `ipAddress` goes through `inet_ntop`, whose IPv4 path formats with `sprintf` — a cost on every
    /// accepted connection.
    var ipText: String? {
        guard case .v4(let v4) = self else { return ipAddress }
        let value = UInt32(bigEndian: v4.address.sin_addr.s_addr)
        return String(unsafeUninitializedCapacity: 15) { out in
            var n = 0
            for shift in stride(from: 24, through: 0, by: -8) {
                let octet = Int((value >> UInt32(shift)) & 0xFF)
                if octet >= 100 { out[n] = UInt8(48 + octet / 100); n += 1 }
                if octet >= 10 { out[n] = UInt8(48 + octet / 10 % 10); n += 1 }
                out[n] = UInt8(48 + octet % 10); n += 1
                if shift > 0 { out[n] = UInt8(ascii: "."); n += 1 }
            }
            return n
        }
    }
}
