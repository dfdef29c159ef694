/// Changes to the request fields sent upstream (Envoy `request_headers_to_remove` / `_to_add`): fields named
/// in `remove` are dropped, then each field of `set` replaces any received field of that name.
public struct HeaderChanges: Sendable, Hashable, Encodable {
    /// Lower-case names; a name ending in `*` removes every field that starts with the rest (`impersonate-*`).
    public var remove: [String]
    public var set: [Field]

    public struct Field: Sendable, Hashable {
        /// Lower-case name.
        public var name: String
        public var value: String
        /// A credential: shown as `(redacted)` in the configuration dump. Credential fields
        /// (`authorization`, `proxy-authorization`, `cookie`) always are.
        public var secret: Bool

        public init(name: String, value: String, secret: Bool = false) {
            self.name = name.lowercased()
            self.value = value
            self.secret = secret || ["authorization", "proxy-authorization", "cookie"].contains(self.name)
        }
    }

    public init(remove: [String] = [], set: [Field] = []) {
        self.remove = remove.map { $0.lowercased() }
        self.set = set
    }

    public var isEmpty: Bool { remove.isEmpty && set.isEmpty }

    /// Whether `name` is an HTTP field name (an RFC 9110 token).
    public static func isFieldName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7a) || "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    /// Whether a received field called `name` is dropped (it is removed or replaced).
    public func drops(_ name: String) -> Bool {
        let lower = name.lowercased()
        for r in remove {
            if r.hasSuffix("*") ? lower.hasPrefix(r.dropLast()) : lower == r { return true }
        }
        return set.contains { $0.name == lower }
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case remove, set }
        var c = encoder.container(keyedBy: K.self)
        if !remove.isEmpty { try c.encode(remove, forKey: .remove) }
        if !set.isEmpty {
            var fields: [String: String] = [:]
            for f in set { fields[f.name] = f.secret ? "(redacted)" : f.value }
            try c.encode(fields, forKey: .set)
        }
    }
}
