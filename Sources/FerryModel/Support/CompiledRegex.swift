/// A regular expression compiled once per snapshot; matches are whole-string (Envoy `safe_regex` semantics)
/// unless a caller asks for a search.
public struct CompiledRegex: @unchecked Sendable, Hashable {
    public static func == (a: CompiledRegex, b: CompiledRegex) -> Bool { a.pattern == b.pattern }
    public func hash(into hasher: inout Hasher) { hasher.combine(pattern) }

    // Regex is immutable once built and its matching does not mutate shared state, so sharing
    // it between event loops is safe; the standard library does not yet mark it Sendable.
    private let regex: Regex<AnyRegexOutput>
    public let pattern: String

    public init(_ pattern: String) throws {
        self.regex = try Regex(pattern)
        self.pattern = pattern
    }

    public func wholeMatch(_ text: Substring) -> Bool {
        (try? regex.wholeMatch(in: text)) != nil
    }

    /// Whether the expression matches at the start of `text` (not necessarily all of it).
    public func matchesPrefix(_ text: Substring) -> Bool {
        (try? regex.prefixMatch(in: text)) != nil
    }

    /// The first match anywhere in `text` as its groups (index 0: the whole match; nil: a group that took no
    /// part), or nil when there is none.
    public func firstMatchGroups(_ text: Substring) -> [Substring?]? {
        guard let match = try? regex.firstMatch(in: text) else { return nil }
        return match.output.map { $0.substring }
    }
}
