import FerryModel
import Yams

/// Route fields that change what is sent upstream or refuse requests: `request_headers`, `host_rewrite`,
/// `upstream_path_prefix` and `request_filter` (kubectl proxy's filter).
extension SnapshotDecoder {
    static let routePolicyFields = ["request_headers", "host_rewrite", "upstream_path_prefix", "request_filter"]

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
}
