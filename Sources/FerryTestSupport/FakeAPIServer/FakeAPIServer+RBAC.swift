import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// RBAC as the API server applies it, for tests that run a role with exactly its ServiceAccount's
/// permissions: once `enforce(_:)` is given the grants of the rendered Roles and ClusterRoles, every
/// request with the bearer token (the ServiceAccount's; basic credentials stay the cluster admin, for
/// kubectl) is authorized by verb (get, list, watch, create, update, patch, delete), API group, resource
/// (with subresource), namespace and resource name, and refused with `403 Forbidden` otherwise. The fake
/// records what was refused and which grants were used, so a test can name a missing permission and an
/// unused one (over-privilege).
extension FakeAPIServer {
    /// One rule of a Role (`namespace` set: that namespace only) or a ClusterRole bound cluster-wide.
    public struct Grant: Sendable, Hashable {
        public var apiGroups: [String]
        public var resources: [String]
        public var verbs: [String]
        public var resourceNames: [String]
        public var namespace: String?

        public init(apiGroups: [String], resources: [String], verbs: [String], resourceNames: [String] = [], namespace: String? = nil) {
            self.apiGroups = apiGroups
            self.resources = resources
            self.verbs = verbs
            self.resourceNames = resourceNames
            self.namespace = namespace
        }

        /// Each `group/resource verb` this rule grants (for the unused-permission report).
        public var permissions: Set<String> {
            Set(apiGroups.flatMap { g in resources.flatMap { r in verbs.map { "\(g)/\(r) \($0)" } } })
        }
    }

    /// What one request asks: `verb group/resource` in a namespace, on a name.
    public struct Attributes: Sendable, Hashable, CustomStringConvertible {
        public var verb: String
        public var group: String
        public var resource: String
        public var namespace: String?
        public var name: String?
        public var description: String { "\(verb) \(group)/\(resource)" + (namespace.map { " in \($0)" } ?? "") + (name.map { " \($0)" } ?? "") }
    }

    /// From now on, every request needs a grant; `user` names the ServiceAccount in refusals.
    public func enforce(_ grants: [Grant], user: String) {
        state.withLockedValue { s in
            s.rbac = (grants, user)
            s.usedPermissions = []
            s.refused = []
        }
    }

    /// The requests refused so far.
    public var refused: [Attributes] { state.withLockedValue { $0.refused } }

    /// `group/resource verb` of every grant some request used.
    public var usedPermissions: Set<String> { state.withLockedValue { $0.usedPermissions } }

    /// The request's attributes; nil for discovery and other non-resource paths.
    static func attributes(method: HTTPMethod, parts: [String], query: [String: String]) -> Attributes? {
        var rest: ArraySlice<String>
        let group: String
        if parts.count >= 3, parts[0] == "api" {
            group = ""
            rest = parts[2...]
        } else if parts.count >= 4, parts[0] == "apis" {
            group = parts[1]
            rest = parts[3...]
        } else {
            return nil
        }
        var namespace: String?
        if rest.count >= 3, rest.first == "namespaces" {
            namespace = rest[rest.startIndex + 1]
            rest = rest.dropFirst(2)
        }
        guard let resource = rest.first else { return nil }
        let name = rest.count >= 2 ? rest[rest.startIndex + 1] : nil
        let subresource = rest.count >= 3 ? rest[rest.startIndex + 2] : nil
        let verb: String
        switch method {
        case .GET: verb = name != nil ? "get" : (query["watch"] == "true" || query["watch"] == "1" ? "watch" : "list")
        case .POST: verb = "create"
        case .PUT: verb = "update"
        case .PATCH: verb = "patch"
        case .DELETE: verb = name != nil ? "delete" : "deletecollection"
        default: verb = method.rawValue.lowercased()
        }
        return Attributes(verb: verb, group: group, resource: subresource.map { "\(resource)/\($0)" } ?? resource, namespace: namespace, name: name)
    }

    /// Whether the request is allowed (always, without `enforce`); records what was used or refused.
    static func authorize(_ state: NIOLockedValueBox<State>, method: HTTPMethod, parts: [String], query: [String: String]) -> (allowed: Bool, message: String) {
        guard let asked = attributes(method: method, parts: parts, query: query) else { return (true, "") }
        return state.withLockedValue { s in
            guard let (grants, user) = s.rbac else { return (true, "") }
            let granting = grants.filter { grant in
                (grant.apiGroups.contains(asked.group) || grant.apiGroups.contains("*"))
                    && (grant.resources.contains(asked.resource) || grant.resources.contains("*"))
                    && (grant.verbs.contains(asked.verb) || grant.verbs.contains("*"))
                    && (grant.resourceNames.isEmpty || asked.name.map { grant.resourceNames.contains($0) } == true)
                    && (grant.namespace == nil || grant.namespace == asked.namespace)
            }
            guard !granting.isEmpty else {
                s.refused.append(asked)
                let scope = asked.namespace.map { " in the namespace \"\($0)\"" } ?? " at the cluster scope"
                return (false, "\(asked.resource)\(asked.name.map { " \"\($0)\"" } ?? "") is forbidden: User \"\(user)\" cannot \(asked.verb) resource \"\(asked.resource)\" in API group \"\(asked.group)\"\(scope)")
            }
            s.usedPermissions.insert("\(asked.group)/\(asked.resource) \(asked.verb)")
            return (true, "")
        }
    }
}
