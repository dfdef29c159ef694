/// Who may do what through a shared API proxy: rules that each allow some users (or groups) some verbs on
/// some resources in some namespaces, like RBAC roles, evaluated on the request as Ferry reads it. Purely
/// additive, as RBAC: a request is allowed when a rule allows it, refused otherwise.
public struct KubernetesPolicy: Sendable, Hashable, Encodable {
    public var rules: [Rule]

    public struct Rule: Sendable, Hashable, Encodable {
        /// User names, `group:NAME`, or `*` (anyone, also an unauthenticated client).
        public var users: [String]
        /// Verbs (`get`, `list`, `watch`, `create`, …) or `*`.
        public var verbs: [String]
        /// `pods`, `pods/exec`, `deployments.apps`, `pods/*` or `*`.
        public var resources: [String]
        /// Namespaces or `*`; a cluster-scoped request (nodes) matches only `*`.
        public var namespaces: [String]
        /// Non-resource paths (`/version`, `/healthz*` with a trailing `*` as a prefix); discovery is allowed
        /// to anyone a rule names, so clients such as kubectl can start.
        public var nonResourceURLs: [String]

        public init(users: [String], verbs: [String] = ["*"], resources: [String] = ["*"], namespaces: [String] = ["*"], nonResourceURLs: [String] = []) {
            self.users = users
            self.verbs = verbs
            self.resources = resources
            self.namespaces = namespaces
            self.nonResourceURLs = nonResourceURLs
        }

        enum CodingKeys: String, CodingKey {
            case users, verbs, resources, namespaces, nonResourceURLs = "non_resource_urls"
        }

        func names(_ user: String, groups: [String]) -> Bool {
            users.contains { $0 == "*" || (!user.isEmpty && $0 == user) || ($0.hasPrefix("group:") && groups.contains(String($0.dropFirst(6)))) }
        }

        func allows(_ request: KubernetesRequest) -> Bool {
            guard verbs.contains("*") || verbs.contains(request.verb) else {
                // Discovery needs no verb of its own: `get` on it is allowed to anyone named.
                return request.nonResourcePath.map(Rule.isDiscovery) ?? false && request.verb == "get"
            }
            if let path = request.nonResourcePath {
                return Rule.isDiscovery(path) || nonResourceURLs.contains { $0 == "*" || $0 == path || ($0.hasSuffix("*") && path.hasPrefix($0.dropLast())) }
            }
            let resourceOK = resources.contains { r in
                r == "*" || r == request.resourceName || (r.hasSuffix("/*") && request.resourceName.hasPrefix(r.dropLast(1)))
            }
            let namespaceOK = namespaces.contains("*") || (!request.namespace.isEmpty && namespaces.contains(request.namespace))
            return resourceOK && namespaceOK
        }

        static func isDiscovery(_ path: String) -> Bool {
            path == "/api" || path == "/apis" || path == "/version" || path.hasPrefix("/api/") || path.hasPrefix("/apis/") || path.hasPrefix("/openapi/")
        }
    }

    public init(rules: [Rule]) {
        self.rules = rules
    }

    /// The verdict for `user` (with `groups`; "" when the client did not authenticate).
    public func decide(_ request: KubernetesRequest, user: String, groups: [String] = []) -> Verdict {
        for (index, rule) in rules.enumerated() where rule.names(user, groups: groups) && rule.allows(request) {
            return Verdict(allowed: true, rule: index + 1, text: rule.summary, reason: "allowed by rule \(index + 1)")
        }
        let who = user.isEmpty ? "an unauthenticated client" : user
        let what = request.nonResourcePath ?? (request.resourceName + (request.namespace.isEmpty ? "" : " in namespace \(request.namespace)"))
        return Verdict(allowed: false, rule: nil, text: "no rule allows it", reason: "\(who) may not \(request.verb) \(what)")
    }
}

extension KubernetesPolicy.Rule {
    /// `alice: get,list pods in default,dev` for logs.
    public var summary: String {
        var text = "\(users.joined(separator: ",")): \(verbs.joined(separator: ",")) \(resources.joined(separator: ","))"
        if namespaces != ["*"] { text += " in \(namespaces.joined(separator: ","))" }
        if !nonResourceURLs.isEmpty { text += " and \(nonResourceURLs.joined(separator: ","))" }
        return text
    }
}
