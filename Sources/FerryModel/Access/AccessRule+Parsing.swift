extension AccessRule {
    /// Parses the short form of `ferry egress --allow/--deny`: `TARGET[:PORTS] [CLAUSES]`, where TARGET is a
    /// domain (`example.com`, `.example.com`, `*.example.com`, `~regex`), an address or CIDR (IPv6 in
    /// brackets when ports follow: `[fd00::/8]:443`) or `*`, and PORTS is `443`, `8000-8999` or `80,443`.
    /// Clauses say what the YAML form says, each a comma-separated list:
    /// `at CIDRS` (the name must resolve into these addresses), `methods GET,HEAD`, `from CIDRS` (client
    /// addresses), `for alice,bob` (authenticated users), `namespaces shop,web` and `pods app=web,tier=front`
    /// (the client's Pod, when Pods are watched).
    /// Returns a message saying what to fix when the text is not a rule.
    public static func parse(_ action: Action, _ text: String) -> Result<AccessRule, AccessRuleError> {
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        guard let first = words.first else { return .failure(AccessRuleError(text, "empty rule")) }
        var clauses: [String: [String]] = [:]
        var current: String?
        for word in words.dropFirst() {
            if ["at", "methods", "from", "for", "namespaces", "pods"].contains(word) {
                guard clauses[String(word)] == nil else { return .failure(AccessRuleError(text, "\"\(word)\" appears twice")) }
                current = String(word)
                clauses[String(word)] = []
                continue
            }
            guard let key = current else {
                return .failure(AccessRuleError(text, "after the target come clauses: at CIDRS, methods M,M, from CIDRS, for USERS, namespaces NS,NS, pods KEY=VALUE,..."))
            }
            clauses[key]!.append(contentsOf: word.split(separator: ",").map(String.init))
        }
        for (key, values) in clauses where values.isEmpty {
            return .failure(AccessRuleError(text, "\"\(key)\" needs a comma-separated list, as: \(Self.clauseExample[key] ?? key)"))
        }
        switch parseTarget(action, first, whole: text) {
        case .failure(let e): return .failure(e)
        case .success(var rule):
            rule.match.users = clauses["for"] ?? []
            for value in clauses["at"] ?? [] {
                guard let range = IPRange(parsing: value) else { return .failure(AccessRuleError(text, "\"\(value)\" after \"at\" is not an address or CIDR")) }
                rule.match.addresses.append(range)
            }
            for value in clauses["from"] ?? [] {
                guard let range = IPRange(parsing: value) else { return .failure(AccessRuleError(text, "\"\(value)\" after \"from\" is not an address or CIDR")) }
                rule.match.sources.append(range)
            }
            rule.match.namespaces = clauses["namespaces"] ?? []
            for value in clauses["pods"] ?? [] {
                let parts = value.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty else { return .failure(AccessRuleError(text, "\"\(value)\" after \"pods\" is not a label KEY=VALUE")) }
                rule.match.podLabels[String(parts[0])] = String(parts[1])
            }
            for value in clauses["methods"] ?? [] {
                let method = value.uppercased()
                guard method.utf8.allSatisfy({ ($0 >= 65 && $0 <= 90) || $0 == 45 }) else { return .failure(AccessRuleError(text, "\"\(value)\" is not a method")) }
                rule.match.methods.append(method)
            }
            return .success(rule)
        }
    }

    static let clauseExample = ["at": "registry.internal:443 at 10.20.0.0/16", "methods": ".example.com methods GET,HEAD",
                                "from": ".example.com from 10.1.0.0/16", "for": ".example.com for alice,bob",
                                "namespaces": ".example.com namespaces shop,web", "pods": ".example.com pods app=web"]

    static func parseTarget(_ action: Action, _ ruleText: Substring, whole text: String) -> Result<AccessRule, AccessRuleError> {
        var target = ruleText
        var portText: Substring?
        if target.hasPrefix("[") {
            guard let close = target.firstIndex(of: "]") else { return .failure(AccessRuleError(text, "an IPv6 target in brackets needs \"]\"")) }
            let rest = target[target.index(after: close)...]
            target = target[target.index(after: target.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return .failure(AccessRuleError(text, "expected :PORTS after \"]\"")) }
                portText = rest.dropFirst()
            }
        } else if !target.hasPrefix("~"), let colon = target.lastIndex(of: ":"), !target[..<colon].contains(":") {
            portText = target[target.index(after: colon)...]
            target = target[..<colon]
        }
        var match = AccessMatch()
        if let portText {
            guard let ports = parsePorts(portText) else { return .failure(AccessRuleError(text, "ports are 1-65535, as 443, 8000-8999 or 80,443")) }
            match.ports = ports
        }
        if target == "*" || target.isEmpty {
            if target.isEmpty && portText == nil { return .failure(AccessRuleError(text, "empty rule")) }
        } else if let range = IPRange(parsing: String(target)) {
            match.addresses = [range]
        } else if let loose = IPAddress(parsingLoosely: target) {
            match.addresses = [IPRange(parsing: loose.unmappingIPv4.description)!]
        } else if let domain = DomainMatcher.parse(String(target)) {
            match.domains = [domain]
        } else {
            return .failure(AccessRuleError(text, "expected a domain (example.com, .example.com, *.example.com, ~regex), an address or CIDR, or *"))
        }
        return .success(AccessRule(action: action, match: match, text: "\(action.rawValue) \(text)"))
    }

    /// `443`, `8000-8999`, `80,443,8080-8090`.
    public static func parsePorts(_ text: Substring) -> [ClosedRange<Int>]? {
        var result: [ClosedRange<Int>] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds.last!),
                  (1...65535).contains(low), (1...65535).contains(high), low <= high
            else { return nil }
            result.append(low...high)
        }
        return result.isEmpty ? nil : result
    }
}

public struct AccessRuleError: Error, Sendable, CustomStringConvertible {
    public var text: String
    public var problem: String
    public init(_ text: String, _ problem: String) {
        self.text = text
        self.problem = problem
    }
    public var description: String { "\"\(text)\": \(problem)" }
}
