import FerryModel
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

    /// The IP address as a number, read from the socket address itself (no text to parse): what access
    /// lists, policies and trusted-proxy checks compare. Nil for a Unix socket.
    var ipValue: IPAddress? {
        switch self {
        case .v4(let v4):
            return .v4(UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            var bytes = v6.address.sin6_addr
            return withUnsafeBytes(of: &bytes) { raw in
                var high: UInt64 = 0, low: UInt64 = 0
                for i in 0..<8 { high = high << 8 | UInt64(raw[i]) }
                for i in 8..<16 { low = low << 8 | UInt64(raw[i]) }
                return .v6(high: high, low: low)
            }
        case .unixDomainSocket:
            return nil
        }
    }
}
