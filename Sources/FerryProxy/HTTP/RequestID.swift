/// Generates X-Request-Id values: random UUIDv4 text, no Foundation.
enum RequestID {
    static func make<R: RandomNumberGenerator>(using random: inout R) -> String {
        let a = random.next() & 0xffff_ffff_ffff_0fff | 0x0000_0000_0000_4000
        let b = random.next() & 0x3fff_ffff_ffff_ffff | 0x8000_0000_0000_0000
        var bytes = [UInt8](repeating: 0, count: 36)
        let hex = Array("0123456789abcdef".utf8)
        var i = 0
        func put(_ value: UInt64, nibbles: Int, shift: Int) {
            for n in 0..<nibbles {
                bytes[i] = hex[Int((value >> UInt64(shift - 4 * n)) & 0xf)]
                i += 1
            }
        }
        put(a, nibbles: 8, shift: 60); bytes[i] = 45; i += 1
        put(a, nibbles: 4, shift: 28); bytes[i] = 45; i += 1
        put(a, nibbles: 4, shift: 12); bytes[i] = 45; i += 1
        put(b, nibbles: 4, shift: 60); bytes[i] = 45; i += 1
        put(b, nibbles: 12, shift: 44)
        return String(decoding: bytes, as: UTF8.self)
    }
}
