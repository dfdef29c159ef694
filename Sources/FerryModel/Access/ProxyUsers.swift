/// Proxy users and their password hashes, from a users file.
///
/// Format: one user per line, `NAME:$pbkdf2-sha256$ROUNDS$SALT$HASH`, where SALT and HASH are standard
/// base64 (padding optional) and HASH is 32 bytes of PBKDF2-HMAC-SHA256 over the UTF-8 password;
/// `#` starts a comment. `ferry egress --hash-password` prints such a line.
public struct ProxyUsers: Sendable {
    public struct PasswordHash: Sendable, Hashable {
        public var rounds: Int
        public var salt: [UInt8]
        public var hash: [UInt8]

        public init(rounds: Int, salt: [UInt8], hash: [UInt8]) {
            self.rounds = rounds
            self.salt = salt
            self.hash = hash
        }

        /// `$pbkdf2-sha256$ROUNDS$SALT$HASH`
        public var text: String {
            "$pbkdf2-sha256$\(rounds)$\(Base64.encode(salt))$\(Base64.encode(hash))"
        }

        public static func parse(_ text: Substring) -> PasswordHash? {
            let parts = text.split(separator: "$", omittingEmptySubsequences: false)
            guard parts.count == 5, parts[0].isEmpty, parts[1] == "pbkdf2-sha256",
                  let rounds = Int(parts[2]), rounds >= 1000, rounds <= 10_000_000,
                  let salt = Base64.decode(parts[3]), salt.count >= 8,
                  let hash = Base64.decode(parts[4]), hash.count == 32
            else { return nil }
            return PasswordHash(rounds: rounds, salt: salt, hash: hash)
        }
    }

    public var users: [String: PasswordHash]

    public init(users: [String: PasswordHash]) {
        self.users = users
    }

    /// Parses a users file; bad lines are returned as (line number, what to fix).
    public static func parse(_ text: String) -> (ProxyUsers, [(Int, String)]) {
        var users: [String: PasswordHash] = [:]
        var problems: [(Int, String)] = []
        // Split on every line break ("\r\n" is one Character, so splitting on "\n" alone would miss it).
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                problems.append((index + 1, "expected NAME:$pbkdf2-sha256$ROUNDS$SALT$HASH"))
                continue
            }
            let name = String(line[..<colon])
            guard let hash = PasswordHash.parse(line[line.index(after: colon)...]) else {
                problems.append((index + 1, "the hash of \(name) is not $pbkdf2-sha256$ROUNDS$SALT$HASH (at least 1000 rounds, 8 bytes of salt, 32 bytes of hash); make one with ferry egress --hash-password"))
                continue
            }
            if users[name] != nil { problems.append((index + 1, "user \(name) appears twice")) }
            users[name] = hash
        }
        return (ProxyUsers(users: users), problems)
    }

    /// The user name and password of a `Basic` credential (`Proxy-Authorization: Basic dXNlcjpwdw==`).
    public static func basicCredentials(_ header: String) -> (user: String, password: String)? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic", let bytes = Base64.decode(parts[1].drop { $0 == " " }) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}

/// Standard base64 (RFC 4648 §4), padding optional when decoding.
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        if bytes.count - i == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if bytes.count - i == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var values: [UInt8] = []
        for c in text.utf8 {
            if c == UInt8(ascii: "=") { break }
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            values.append(UInt8(v))
        }
        guard values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < values.count {
            let chunk = values[i..<min(i + 4, values.count)]
            var n: UInt32 = 0
            for (j, v) in chunk.enumerated() { n |= UInt32(v) << UInt32(18 - 6 * j) }
            out.append(UInt8(n >> 16 & 0xff))
            if chunk.count > 2 { out.append(UInt8(n >> 8 & 0xff)) }
            if chunk.count > 3 { out.append(UInt8(n & 0xff)) }
            i += 4
        }
        return out
    }
}
