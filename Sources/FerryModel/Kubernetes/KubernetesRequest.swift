/// What a request to the Kubernetes API asks for, read from its method, path and query the way the API
/// server's request-info resolver reads it: verb, API group, resource and subresource, namespace and name,
/// or a non-resource URL (`/version`, `/healthz`).
public struct KubernetesRequest: Sendable, Hashable {
    public var verb: String
    /// "" for the core group (`/api/v1`).
    public var apiGroup: String = ""
    public var resource: String = ""
    public var subresource: String = ""
    public var namespace: String = ""
    public var name: String = ""
    /// Set for paths outside `/api` and `/apis/GROUP/VERSION` resources (discovery, `/version`, `/healthz`).
    public var nonResourcePath: String?

    /// `pods`, `pods/exec`, `deployments.apps`, `deployments.apps/scale`: how rules name it.
    public var resourceName: String {
        let base = apiGroup.isEmpty ? resource : "\(resource).\(apiGroup)"
        return subresource.isEmpty ? base : "\(base)/\(subresource)"
    }

    /// Subresources that open a stream into a container; Kubernetes authorizes them as `create` whatever the
    /// method (a WebSocket exec is a GET).
    static let connectSubresources: Set<String> = ["exec", "attach", "portforward"]

    public init(method: String, path: Substring, query: Substring) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let upper = method.uppercased()
        let watching = query.split(separator: "&").contains { $0 == "watch=true" || $0 == "watch=1" }
        var rest: ArraySlice<String>
        if parts.first == "api", parts.count >= 2 {
            rest = parts.dropFirst(2)
        } else if parts.first == "apis", parts.count >= 3 {
            apiGroup = parts[1]
            rest = parts.dropFirst(3)
        } else {
            verb = KubernetesRequest.nonResourceVerb(upper)
            nonResourcePath = "/" + parts.joined(separator: "/")
            return
        }
        if rest.isEmpty {
            // `/api/v1`, `/apis/apps/v1`: discovery.
            verb = KubernetesRequest.nonResourceVerb(upper)
            nonResourcePath = "/" + parts.joined(separator: "/")
            return
        }
        var legacyWatch = false
        if rest.first == "watch" {
            legacyWatch = true
            rest = rest.dropFirst()
        }
        if rest.first == "namespaces", rest.count >= 3 {
            namespace = rest[rest.startIndex + 1]
            rest = rest.dropFirst(2)
        } else if rest.first == "namespaces", rest.count == 2 {
            namespace = rest[rest.startIndex + 1]
        }
        let items = Array(rest)
        resource = items.first ?? ""
        if items.count >= 2 { name = items[1] }
        // As the API server reads it, only the segment after the name is the subresource (`nodes/proxy`,
        // whatever path follows it).
        if items.count >= 3 { subresource = items[2] }
        switch upper {
        case "GET", "HEAD": verb = name.isEmpty ? (watching || legacyWatch ? "watch" : "list") : (watching || legacyWatch ? "watch" : "get")
        case "POST": verb = "create"
        case "PUT": verb = "update"
        case "PATCH": verb = "patch"
        case "DELETE": verb = name.isEmpty ? "deletecollection" : "delete"
        default: verb = upper.lowercased()
        }
        if KubernetesRequest.connectSubresources.contains(subresource) { verb = "create" }
    }

    static func nonResourceVerb(_ method: String) -> String {
        switch method {
        case "GET", "HEAD": "get"
        case "POST": "post"
        case "PUT": "put"
        case "PATCH": "patch"
        case "DELETE": "delete"
        default: method.lowercased()
        }
    }
}
