/// Where a request path stands against `--api-prefix` (kubectl's `stripLeaveSlash`): a prefix that does
/// not start with `/api` is removed, leaving a slash; outside the prefix is 404.
public enum APIPrefix {
    /// The prefix as kubectl normalises it: with a trailing slash.
    public static func normalise(_ prefix: String) -> String {
        prefix.hasSuffix("/") ? prefix : prefix + "/"
    }

    /// Whether kubectl strips this prefix before filtering and forwarding.
    public static func isStripped(_ prefix: String) -> Bool {
        !normalise(prefix).hasPrefix("/api")
    }

    /// The path the API server (and the filter) sees, or nil for 404.
    public static func apply(_ prefix: String, to path: String) -> String? {
        let prefix = normalise(prefix)
        guard path.hasPrefix(prefix) || path + "/" == prefix else { return nil }
        if !isStripped(prefix) { return path }
        let rest = path.dropFirst(prefix.count - 1)  // leave the slash
        return rest.isEmpty ? "/" : String(rest)
    }
}
