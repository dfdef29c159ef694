/// Rewrites the request path before forwarding, as nginx's `rewrite REGEX REPLACEMENT break` does:
/// when `regex` is found in the path, the whole path becomes `replacement` with `$1`…`$9` replaced by the
/// groups. The query string is kept: appended with `?`, or with `&` when the replacement has its own.
public struct PathRewrite: Sendable, Encodable {
    public var regex: CompiledRegex
    public var replacement: String

    public init(regex: CompiledRegex, replacement: String) {
        self.regex = regex
        self.replacement = replacement
    }

    /// The new request target for `target` (path and query), or nil when the regex is not found.
    public func apply(to target: Substring) -> String? {
        let path = RouteTable.pathWithoutQuery(target)
        let query = target[path.endIndex...].drop { $0 == "?" }
        guard let groups = regex.firstMatchGroups(path) else { return nil }
        var result = ""
        var chars = replacement[...]
        while let c = chars.first {
            chars = chars.dropFirst()
            if c == "$", let digit = chars.first?.wholeNumberValue, (1...9).contains(digit) {
                chars = chars.dropFirst()
                if digit < groups.count, let group = groups[digit] { result += group }
            } else {
                result.append(c)
            }
        }
        if !result.hasPrefix("/") && !result.contains("://") { result = "/" + result }
        if !query.isEmpty, !query.hasPrefix("#") {
            result += result.contains("?") ? "&" + query : "?" + query
        }
        return result
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case regex, replacement }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(regex.pattern, forKey: .regex)
        try c.encode(replacement, forKey: .replacement)
    }
}
