/// Generates X-Request-Id values: random UUIDv4 text, written straight into the string's storage.
enum RequestID {
    static func make<R: RandomNumberGenerator>(using random: inout R) -> String {
        let a = random.next() & 0xffff_ffff_ffff_0fff | 0x0000_0000_0000_4000
        let b = random.next() & 0x3fff_ffff_ffff_ffff | 0x8000_0000_0000_0000
        return String(unsafeUninitializedCapacity: 36) { out in
            let hex: StaticString = "0123456789abcdef"
            let digits = hex.utf8Start
            var i = 0
            func put(_ value: UInt64, nibbles: Int, from shift: Int) {
                for n in 0..<nibbles {
                    out[i] = digits[Int((value >> UInt64(shift - 4 * n)) & 0xf)]
                    i += 1
                }
            }
            func dash() {
                out[i] = UInt8(ascii: "-")
                i += 1
            }
            put(a, nibbles: 8, from: 60); dash()
            put(a, nibbles: 4, from: 28); dash()
            put(a, nibbles: 4, from: 12); dash()
            put(b, nibbles: 4, from: 60); dash()
            put(b, nibbles: 12, from: 44)
            return 36
        }
    }
}
