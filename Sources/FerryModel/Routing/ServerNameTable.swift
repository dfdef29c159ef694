/// Picks what serves a TLS server name (SNI): an exact name first, then a wildcard `*.parent` that matches
/// exactly one label more than `parent` (`*.example.com` serves `a.example.com`, not `a.b.example.com` nor
/// `example.com`), then the default. Names compare without case and without one trailing dot. The first
/// entry listed for a name wins.
public struct ServerNameTable<Value: Sendable>: Sendable {
    public let defaultValue: Value
    private var exact: [String: Value] = [:]
    /// Keyed by the parent domain of `*.parent`.
    private var wildcard: [String: Value] = [:]

    public init(default defaultValue: Value) {
        self.defaultValue = defaultValue
    }

    /// Whether any name was added (otherwise every connection gets the default and SNI need not be read).
    public var isEmpty: Bool { exact.isEmpty && wildcard.isEmpty }

    /// Adds `value` for `name` (`host.example.com` or `*.example.com`) unless an earlier entry holds it.
    /// Returns false when the name was already taken.
    @discardableResult
    public mutating func add(_ name: String, _ value: Value) -> Bool {
        let name = Self.normalized(name)
        if name.hasPrefix("*.") {
            let parent = String(name.dropFirst(2))
            guard wildcard[parent] == nil else { return false }
            wildcard[parent] = value
        } else {
            guard exact[name] == nil else { return false }
            exact[name] = value
        }
        return true
    }

    /// What serves `serverName` (nil: the client sent none), and the table entry that matched (nil: the default).
    public func select(_ serverName: String?) -> (value: Value, matched: String?) {
        guard let serverName, !serverName.isEmpty else { return (defaultValue, nil) }
        let name = Self.normalized(serverName)
        if let value = exact[name] { return (value, name) }
        if let dot = name.firstIndex(of: "."), dot != name.startIndex {
            let parent = String(name[name.index(after: dot)...])
            if !parent.isEmpty, let value = wildcard[parent] { return (value, "*." + parent) }
        }
        return (defaultValue, nil)
    }

    static func normalized(_ name: String) -> String {
        var name = name.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name
    }

    /// Whether `name` can be listed: a DNS name (letters, digits, `-`, labels of 1–63 characters) or `*.`
    /// followed by one; nil when it can, else what is wrong.
    public static func problem(_ name: String) -> String? {
        var rest = Substring(name.hasSuffix(".") ? String(name.dropLast()) : name)
        if rest.hasPrefix("*.") { rest = rest.dropFirst(2) }
        if rest.isEmpty { return "\"\(name)\" is not a host name" }
        if rest.utf8.count > 253 { return "\"\(name)\" is longer than 253 characters" }
        for label in rest.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count) else { return "\"\(name)\" has an empty or over-long label" }
            guard label.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || $0 == 0x2d }) else {
                return "\"\(name)\" may hold only letters, digits, '-' and '.' (a wildcard only as its whole first label, \"*.\")"
            }
        }
        return nil
    }
}

extension ServerNameTable where Value == Bool {
    /// A set of server names (exact and `*.` one label) that answers whether a host is covered.
    public init(covering names: some Sequence<String>) {
        self.init(default: false)
        for name in names { add(name, true) }
    }

    /// Whether `host` is one of the names, exactly or by a wildcard.
    public func covers(_ host: String) -> Bool { select(host).value }
}
