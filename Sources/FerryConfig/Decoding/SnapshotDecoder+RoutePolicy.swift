import FerryModel
import Yams

/// Route fields that change what is sent upstream or refuse requests: `request_headers`, `host_rewrite`,
/// `upstream_path_prefix` and `request_filter` (kubectl proxy's filter).
extension SnapshotDecoder {
    static let routePolicyFields = ["request_headers", "host_rewrite", "upstream_path_prefix", "request_filter", "kubernetes_api", "client_authentication", "kubernetes_policy", "response_headers", "client_certificate_headers"]

    func applyRoutePolicy(_ f: Fields, to route: inout Route) {
        if let h = f["request_headers"], let hf = h.fields(allowed: ["remove", "set"]) {
            var changes = HeaderChanges()
            for item in hf["remove"]?.items("field names") ?? [] {
                if let name = item.string() { changes.remove.append(name.lowercased()) }
            }
            if let set = hf["set"] {
                if case .mapping(let mapping) = set.node {
                    for (keyNode, valueNode) in mapping {
                        guard let name = keyNode.scalar?.string, let value = set.child(name, valueNode).string() else { continue }
                        changes.set.append(HeaderChanges.Field(name: name, value: value))
                    }
                } else {
                    set.error("expected a mapping of field name to value, e.g. {authorization: \"Bearer …\"}")
                }
            }
            route.requestHeaders = changes
        }
        if let host = f["host_rewrite"]?.string() { route.hostRewrite = host }
        if let p = f["upstream_path_prefix"], let prefix = p.string() {
            if prefix.hasPrefix("/") { route.upstreamPathPrefix = prefix } else { p.error("a path prefix starts with /, got \"\(prefix)\"") }
        }
        if let node = f["request_filter"] { route.requestFilter = requestFilter(node) }
        if let b = f["kubernetes_api"]?.bool() { route.kubernetesAPI = b }
        if let node = f["client_authentication"] { route.clientAuthentication = clientAuthentication(node) }
        if let node = f["kubernetes_policy"] { route.kubernetesPolicy = kubernetesPolicy(node) }
        if let node = f["response_headers"] {
            if case .mapping(let mapping) = node.node {
                for (keyNode, valueNode) in mapping {
                    guard let name = keyNode.scalar?.string, let value = node.child(name, valueNode).string() else { continue }
                    if !HeaderChanges.isFieldName(name) || ["connection", "transfer-encoding", "content-length", "upgrade", "keep-alive"].contains(name.lowercased()) {
                        node.error("\"\(name)\" cannot be set on responses: a field name that is not hop-by-hop or framing is expected")
                    } else if value.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 }) {
                        node.error("the value of \(name) holds a control character")
                    } else {
                        route.responseHeaders.append(ResponseHeader(name: name, value: value))
                    }
                }
            } else {
                node.error("expected a mapping of field name to value, e.g. {strict-transport-security: \"max-age=31536000\"}")
            }
        }
        if let node = f["client_certificate_headers"], let text = node.string() {
            if let headers = ClientCertificateHeaders(rawValue: text) {
                route.clientCertificateHeaders = headers
            } else {
                node.error("unknown value \"\(text)\"; expected one of: \(ClientCertificateHeaders.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if f["forward"] == nil {
            for key in SnapshotDecoder.routePolicyFields where f[key] != nil { f[key]!.error("\(key) only applies to forward routes") }
        }
    }

    /// kubectl proxy's four lists (comma-separated expressions; kubectl's defaults where a list is left out)
    /// and Ferry's two stricter checks (both on unless turned off).
    func requestFilter(_ node: ConfigNode) -> RequestFilter? {
        let lists = ["accept_paths", "reject_paths", "accept_hosts", "reject_methods"]
        guard let f = node.fields(allowed: lists + ["canonical_paths_only", "loopback_origins_only_for_upgrades"]) else { return nil }
        var texts: [String: String] = [:]
        for key in lists {
            if let n = f[key] {
                guard let text = n.node.scalar?.string else {
                    n.error("expected comma-separated regular expressions, e.g. \"^/api/.*/pods/.*/exec\"")
                    return nil
                }
                texts[key] = text
            }
        }
        do {
            var filter = try RequestFilter(
                acceptPaths: texts["accept_paths"] ?? RequestFilter.defaultAcceptPaths,
                rejectPaths: texts["reject_paths"] ?? RequestFilter.defaultRejectPaths,
                acceptHosts: texts["accept_hosts"] ?? RequestFilter.defaultAcceptHosts,
                rejectMethods: texts["reject_methods"] ?? RequestFilter.defaultRejectMethods)
            if let b = f["canonical_paths_only"]?.bool() { filter.canonicalPathsOnly = b }
            if let b = f["loopback_origins_only_for_upgrades"]?.bool() { filter.loopbackOriginsOnlyForUpgrades = b }
            return filter
        } catch {
            // The message names kubectl's flag (`--accept-paths: …`); here the field is `accept_paths`.
            var message = "\(error)"
            if message.hasPrefix("--"), let colon = message.firstIndex(of: ":") {
                message = message[message.index(message.startIndex, offsetBy: 2)..<colon].replacingOccurrences(of: "-", with: "_") + message[colon...]
            }
            node.error(message)
            return nil
        }
    }

    /// `{tokens_file: FILE, client_certificates: true}`: the token file in kube-apiserver's format.
    func clientAuthentication(_ node: ConfigNode) -> ClientAuthentication? {
        guard let f = node.fields(allowed: ["tokens_file", "client_certificates"]) else { return nil }
        var authentication = ClientAuthentication(clientCertificates: f["client_certificates"]?.bool() ?? false)
        if let fileNode = f["tokens_file"], let path = fileNode.string() {
            let resolved = relativeToConfig(path)
            guard let text = FileReading.readText(resolved) else {
                fileNode.error("cannot read \(path)")
                return nil
            }
            let (tokens, problems) = ClientAuthentication.parseTokens(text)
            for problem in problems { fileNode.error("\(path): \(problem)") }
            if tokens.isEmpty && problems.isEmpty { fileNode.error("\(path) lists no tokens") }
            authentication.tokens = tokens
            authentication.tokensFile = resolved
        }
        if f["tokens_file"] == nil && !authentication.clientCertificates {
            node.error("client_authentication needs tokens_file, client_certificates: true, or both")
        }
        return authentication
    }

    /// A list of rules: `{users, verbs, resources, namespaces, non_resource_urls}`; `users` is required.
    func kubernetesPolicy(_ node: ConfigNode) -> KubernetesPolicy? {
        guard let items = node.items("rules, e.g. {users: [alice], verbs: [get, list, watch], resources: [pods]}") else { return nil }
        var rules: [KubernetesPolicy.Rule] = []
        for item in items {
            guard let f = item.fields(allowed: ["users", "verbs", "resources", "namespaces", "non_resource_urls"]) else { continue }
            func strings(_ key: String) -> [String]? {
                f[key].map { ($0.items(key) ?? []).compactMap { $0.string() } }
            }
            guard let users = f.required("users", "who the rule is for: user names, group:NAME or *").map({ _ in strings("users") ?? [] }) else { continue }
            var rule = KubernetesPolicy.Rule(users: users)
            if let v = strings("verbs") { rule.verbs = v }
            if let r = strings("resources") { rule.resources = r }
            if let n = strings("namespaces") { rule.namespaces = n }
            if let u = strings("non_resource_urls") { rule.nonResourceURLs = u }
            rules.append(rule)
        }
        return KubernetesPolicy(rules: rules)
    }
}
