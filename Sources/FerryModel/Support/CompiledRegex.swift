/// A regular expression compiled once per snapshot; matches are whole-string (Envoy `safe_regex` semantics).
public struct CompiledRegex: @unchecked Sendable {
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
}
