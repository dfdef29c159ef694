/// An ordered list of rules; the first rule that matches a request decides; when none does, the
/// explicit default decides. Squid-compatible guards (ports, CONNECT ports, local and metadata
/// addresses) stop an `allow` unless the allowing rule itself names that port or address.
public struct AccessPolicy: Sendable, Encodable {
    public var name: String
    public var rules: [AccessRule]
    public var defaultAction: AccessRule.Action
    public var guards: [AccessGuard]

    public init(name: String, rules: [AccessRule], defaultAction: AccessRule.Action = .deny, guards: [AccessGuard] = AccessGuard.squidDefaults) {
        self.name = name
        self.rules = rules
        self.defaultAction = defaultAction
        self.guards = guards
    }

    /// The verdict for `request`. Pure; call it before DNS with the name and again with the resolved address.
    public func evaluate(_ request: AccessRequest) -> Verdict {
        for (index, rule) in rules.enumerated() where rule.match.matches(request) {
            if rule.action == .allow, let blocking = guards.first(where: { $0.blocks(request, allowedBy: rule) }) {
                return Verdict(allowed: false, rule: index + 1, text: "guard: \(blocking.text)", reason: blocking.reason + "; a rule that names it explicitly can allow it")
            }
            return Verdict(allowed: rule.action == .allow, rule: index + 1, text: rule.text, reason: "rule \(index + 1) of policy \(name)")
        }
        if defaultAction == .allow, let blocking = guards.first(where: { $0.blocks(request, allowedBy: nil) }) {
            return Verdict(allowed: false, rule: nil, text: "guard: \(blocking.text)", reason: blocking.reason)
        }
        return Verdict(allowed: defaultAction == .allow, rule: nil, text: "default \(defaultAction.rawValue)", reason: "no rule of policy \(name) matches")
    }

    /// Whether the verdict may depend on the destination address, which is not known yet (a name not
    /// resolved): then the name must be resolved before deciding. False when a rule without address
    /// conditions decides first, so a denied name is refused without a DNS query.
    public func dependsOnAddress(_ request: AccessRequest) -> Bool {
        guard request.address == nil else { return false }
        for rule in rules {
            var withoutAddresses = rule.match
            withoutAddresses.addresses = []
            guard withoutAddresses.matches(request) else { continue }
            return !rule.match.addresses.isEmpty
        }
        return false
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case name, rules, `default`, guards }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(name, forKey: .name)
        try c.encode(rules.map(\.text), forKey: .rules)
        try c.encode(defaultAction.rawValue, forKey: .default)
        try c.encode(guards.map(\.text), forKey: .guards)
    }
}

/// What a policy decides on: the destination (name and, once resolved, address), port, method, client, user.
public struct AccessRequest: Sendable {
    public var host: HostName
    /// The address the name resolved to (nil before resolution; the host's own address for IP literals).
    public var resolved: IPAddress?
    public var port: Int
    public var method: String
    public var source: IPAddress?
    public var user: String?
    /// The Pod the source address belongs to, when the proxy watches Pods and knows it.
    public var sourceIdentity: SourceIdentity?

    public init(host: HostName, resolved: IPAddress? = nil, port: Int, method: String, source: IPAddress? = nil, user: String? = nil) {
        self.host = host
        self.resolved = resolved
        self.port = port
        self.method = method
        self.source = source
        self.user = user
    }

    /// The destination address to check IP conditions against, if known: an IPv6 address that carries an
    /// IPv4 one (mapped, compatible, NAT64, 6to4) is checked as that IPv4 address, so that no spelling of
    /// a denied address slips past a range.
    public var address: IPAddress? {
        if case .address(let a) = host { return a.unwrappingIPv4 }
        return resolved?.unwrappingIPv4
    }

    public var isConnect: Bool { method == "CONNECT" }
}

/// The decision and what made it, for the audit log and denial pages.
public struct Verdict: Sendable, Hashable, CustomStringConvertible {
    public var allowed: Bool
    /// 1-based position of the deciding rule; nil for the default.
    public var rule: Int?
    /// The deciding rule as written (or the guard, or the default).
    public var text: String
    public var reason: String

    public init(allowed: Bool, rule: Int?, text: String, reason: String) {
        self.allowed = allowed
        self.rule = rule
        self.text = text
        self.reason = reason
    }

    public var description: String {
        (allowed ? "allow" : "deny") + " by " + (rule.map { "rule \($0) (\(text))" } ?? text)
    }
}

public struct AccessRule: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable { case allow, deny }
    public var action: Action
    public var match: AccessMatch
    /// The rule as the user wrote it, for logs (`allow .example.com:443`).
    public var text: String

    public init(action: Action, match: AccessMatch, text: String) {
        self.action = action
        self.match = match
        self.text = text
    }
}

/// Conditions of a rule: every non-empty list must hold (AND); within a list any entry may (OR).
public struct AccessMatch: Sendable, Hashable {
    public var domains: [DomainMatcher]
    public var addresses: [IPRange]
    public var ports: [ClosedRange<Int>]
    /// Upper-case.
    public var methods: [String]
    public var sources: [IPRange]
    public var users: [String]
    /// The source Pod's namespace is one of these (a client whose Pod is unknown never matches).
    public var namespaces: [String] = []
    /// The source Pod carries all these labels.
    public var podLabels: [String: String] = [:]

    public init(domains: [DomainMatcher] = [], addresses: [IPRange] = [], ports: [ClosedRange<Int>] = [], methods: [String] = [], sources: [IPRange] = [], users: [String] = []) {
        self.domains = domains
        self.addresses = addresses
        self.ports = ports
        self.methods = methods
        self.sources = sources
        self.users = users
    }

    public func matches(_ r: AccessRequest) -> Bool {
        if !domains.isEmpty {
            guard case .name(let name) = r.host, domains.contains(where: { $0.matches(name) }) else { return false }
        }
        if !addresses.isEmpty {
            guard let a = r.address, addresses.contains(where: { $0.contains(a) }) else { return false }
        }
        if !ports.isEmpty, !ports.contains(where: { $0.contains(r.port) }) { return false }
        if !methods.isEmpty, !methods.contains(r.method) { return false }
        if !sources.isEmpty {
            guard let s = r.source, sources.contains(where: { $0.contains(s) }) else { return false }
        }
        if !users.isEmpty {
            guard let u = r.user, users.contains(u) else { return false }
        }
        if !namespaces.isEmpty {
            guard let identity = r.sourceIdentity, namespaces.contains(identity.namespace) else { return false }
        }
        if !podLabels.isEmpty {
            guard let identity = r.sourceIdentity, podLabels.allSatisfy({ identity.labels[$0.key] == $0.value }) else { return false }
        }
        return true
    }
}

/// A destination-name condition.
public enum DomainMatcher: Sendable, Hashable, CustomStringConvertible {
    /// `example.com`: that name only (Squid `dstdomain` without a dot).
    case exact(String)
    /// `.example.com`: that name and every name below it (Squid `dstdomain`).
    case subtree(String)
    /// `*.example.com`: every name below it, not the name itself.
    case below(String)
    /// A regular expression matched against the whole normalised name.
    case regex(CompiledRegex)

    /// Parses a rule's domain; names are normalised like request hosts. Nil when not a domain.
    public static func parse(_ text: String) -> DomainMatcher? {
        if text.hasPrefix("~") {
            guard let regex = try? CompiledRegex(String(text.dropFirst())) else { return nil }
            return .regex(regex)
        }
        if text.hasPrefix("*.") {
            guard case .name(let n)? = HostName(normalising: String(text.dropFirst(2))) else { return nil }
            return .below(n)
        }
        if text.hasPrefix(".") {
            guard case .name(let n)? = HostName(normalising: String(text.dropFirst())) else { return nil }
            return .subtree(n)
        }
        guard case .name(let n)? = HostName(normalising: text) else { return nil }
        return .exact(n)
    }

    public func matches(_ name: String) -> Bool {
        switch self {
        case .exact(let d): return name == d
        case .subtree(let d): return name == d || (name.hasSuffix(d) && name.utf8.count > d.utf8.count && name.utf8[name.utf8.index(name.utf8.endIndex, offsetBy: -d.utf8.count - 1)] == UInt8(ascii: "."))
        case .below(let d): return name.utf8.count > d.utf8.count && name.hasSuffix("." + d)
        case .regex(let r): return r.wholeMatch(Substring(name))
        }
    }

    public var description: String {
        switch self {
        case .exact(let d): d
        case .subtree(let d): "." + d
        case .below(let d): "*." + d
        case .regex(let r): "~" + r.pattern
        }
    }
}

/// A protection that stops an `allow` unless the allowing rule names the port or address itself.
public struct AccessGuard: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// Only these ports (Squid `deny !Safe_ports`).
        case safePorts([ClosedRange<Int>])
        /// CONNECT only to these ports (Squid `deny CONNECT !SSL_ports`).
        case connectPorts([ClosedRange<Int>])
        /// Never these destinations (Squid `deny to_localhost`, `to_linklocal`, and cloud metadata).
        case deniedAddresses([IPRange])
    }
    public var kind: Kind
    public var text: String
    public var reason: String

    public static let squidSafePorts: [ClosedRange<Int>] = [80...80, 21...21, 443...443, 70...70, 210...210, 1025...65535, 280...280, 488...488, 591...591, 777...777]

    public static let squidDefaults: [AccessGuard] = [
        AccessGuard(kind: .safePorts(squidSafePorts), text: "deny !Safe_ports (80, 21, 443, 70, 210, 1025-65535, 280, 488, 591, 777)", reason: "the port is not one of Squid's Safe_ports"),
        AccessGuard(kind: .connectPorts([443...443]), text: "deny CONNECT !SSL_ports (443)", reason: "CONNECT is only allowed to SSL_ports (443)"),
        AccessGuard(kind: .deniedAddresses(["127.0.0.0/8", "0.0.0.0/32", "::1/128", "::/128"].compactMap(IPRange.init(parsing:))), text: "deny to_localhost", reason: "the destination is this machine (127.0.0.0/8, 0.0.0.0, ::1, ::)"),
        AccessGuard(kind: .deniedAddresses(["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"].compactMap(IPRange.init(parsing:))), text: "deny to_linklocal and cloud metadata", reason: "the destination is link-local or a cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200)"),
    ]

    /// Whether this guard stops `request`, given the rule that allowed it (nil: the default allowed it).
    func blocks(_ request: AccessRequest, allowedBy rule: AccessRule?) -> Bool {
        switch kind {
        case .safePorts(let ports):
            if ports.contains(where: { $0.contains(request.port) }) { return false }
            return !(rule?.match.ports.contains { $0.contains(request.port) } ?? false)
        case .connectPorts(let ports):
            guard request.isConnect, !ports.contains(where: { $0.contains(request.port) }) else { return false }
            return !(rule?.match.ports.contains { $0.contains(request.port) } ?? false)
        case .deniedAddresses(let ranges):
            guard let a = request.address, ranges.contains(where: { $0.contains(a) }) else { return false }
            return !(rule?.match.addresses.contains { $0.contains(a) } ?? false)
        }
    }
}
