/// A set of domains and the ordered routes that serve them.
public struct VirtualHost: Sendable, Encodable {
    public var name: String
    public var domains: [DomainPattern]
    public var routes: [Route]

    public init(name: String, domains: [DomainPattern], routes: [Route]) {
        self.name = name
        self.domains = domains
        self.routes = routes
    }
}

/// A host pattern: exact (`shop.example.com`), one-label wildcard (`*.example.com`, Ingress semantics:
/// matches `a.example.com`, not `a.b.example.com` nor `example.com`) or `*` (any host).
public enum DomainPattern: Sendable, Hashable, Encodable, CustomStringConvertible {
    case exact(String)
    case wildcard(suffix: String)  // stored with its leading dot: ".example.com"
    case any
    /// Envoy's suffix wildcard (`*.example.com`, `*-api.example.com`): any host ending with the text after
    /// `*`, however many labels come before it (never the text alone).
    case suffix(String)
    /// Envoy's prefix wildcard (`api.*`): any host starting with the text before `*` (never the text alone).
    case prefix(String)

    /// A domain as Envoy's `virtual_hosts[].domains` writes it: `*`, `*SUFFIX`, `PREFIX*` or a name.
    public static func parseEnvoy(_ text: String) -> Result<DomainPattern, DomainPatternError> {
        let lower = text.lowercased()
        if lower == "*" { return .success(.any) }
        if lower.isEmpty { return .failure(.empty) }
        if lower.contains("/") || lower.contains(" ") { return .failure(.invalidCharacter) }
        let stars = lower.filter { $0 == "*" }.count
        if stars == 0 { return .success(.exact(lower)) }
        guard stars == 1 else { return .failure(.misplacedWildcard) }
        if lower.hasPrefix("*") { return .success(.suffix(String(lower.dropFirst()))) }
        if lower.hasSuffix("*") { return .success(.prefix(String(lower.dropLast()))) }
        return .failure(.misplacedWildcard)
    }

    /// Parses a domain as written in configuration; nil with a reason when invalid.
    public static func parse(_ text: String) -> Result<DomainPattern, DomainPatternError> {
        let lower = text.lowercased()
        if lower == "*" { return .success(.any) }
        if lower.hasPrefix("*.") {
            let suffix = String(lower.dropFirst())
            guard suffix.count > 1, !suffix.dropFirst().contains("*") else { return .failure(.misplacedWildcard) }
            return .success(.wildcard(suffix: suffix))
        }
        if lower.contains("*") { return .failure(.misplacedWildcard) }
        if lower.isEmpty { return .failure(.empty) }
        if lower.contains(":") || lower.contains("/") || lower.contains(" ") { return .failure(.invalidCharacter) }
        return .success(.exact(lower))
    }

    /// Whether `host` (already lower-cased, without port) matches.
    public func matches(_ host: Substring) -> Bool {
        switch self {
        case .any:
            return true
        case .exact(let name):
            return host == name
        case .wildcard(let suffix):
            guard host.count > suffix.count, host.hasSuffix(suffix) else { return false }
            let label = host.dropLast(suffix.count)
            return !label.contains(".")
        case .suffix(let suffix):
            return host.count > suffix.count && host.hasSuffix(suffix)
        case .prefix(let prefix):
            return host.count > prefix.count && host.hasPrefix(prefix)
        }
    }

    public var description: String {
        switch self {
        case .any: "*"
        case .exact(let name): name
        case .wildcard(let suffix): "*" + suffix
        case .suffix(let suffix): "*" + suffix
        case .prefix(let prefix): prefix + "*"
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

public enum DomainPatternError: Error, Sendable, CustomStringConvertible {
    case misplacedWildcard, empty, invalidCharacter
    public var description: String {
        switch self {
        case .misplacedWildcard: "a wildcard must be the whole first label (\"*.example.com\") or \"*\" alone"
        case .empty: "must not be empty"
        case .invalidCharacter: "a domain has no port, path or spaces (\"shop.example.com\")"
        }
    }
}
