import FerryModel
import Yams

/// Reads the subset of Envoy's static bootstrap (v3) that sidecars and edge proxies are commonly written
/// in, into Ferry's model: `static_resources.listeners` with an `http_connection_manager` (a `route_config`
/// of virtual hosts with prefix, path and regex routes to clusters or direct responses, the `router` filter,
/// a stdout access log) and `static_resources.clusters` of type STATIC, STRICT_DNS or LOGICAL_DNS with
/// `connect_timeout`, `lb_policy` and `load_assignment`. Anything outside the subset is refused with its
/// field path ("…: not supported"), so a user moving from Envoy knows exactly what changed.
struct EnvoyBootstrapDecoder {
    let context: DecodingContext

    static let hcmType = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    static let routerType = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
    static let stdoutLoggerType = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"

    /// A mapping's fields; a field outside `supported` is reported as not supported (Ferry reads the subset
    /// only, and says so rather than ignoring it). `ignored` fields are accepted and have no effect.
    func fields(_ node: ConfigNode, _ supported: [String], ignored: [String] = []) -> Fields? {
        guard case .mapping(let mapping) = node.node else {
            node.error("expected a mapping")
            return nil
        }
        var values: [String: ConfigNode] = [:]
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.scalar?.string else { continue }
            let child = node.child(key, valueNode)
            if ignored.contains(key) { continue }
            guard supported.contains(key) else {
                ConfigNode(node: keyNode, path: child.path, context: context)
                    .error("not supported (Ferry reads this part of Envoy's bootstrap: \(supported.joined(separator: ", ")))")
                continue
            }
            values[key] = child
        }
        return Fields(owner: node, values: values)
    }

    func snapshot(_ root: ConfigNode, file: String, version: Int) -> ConfigSnapshot? {
        guard let f = fields(root, ["static_resources", "admin"], ignored: ["node", "layered_runtime"]) else { return nil }
        var admin: AdminSettings? = nil  // Envoy: no admin listener unless configured
        if let adminNode = f["admin"], let af = fields(adminNode, ["address"], ignored: ["access_log_path", "access_log", "profile_path"]),
           let address = af.required("address", "where the admin listener listens").flatMap(socketAddress) {
            admin = AdminSettings(address: address)
        }
        guard let resources = f.required("static_resources", "the listeners and clusters"),
              let rf = fields(resources, ["listeners", "clusters"]) else { return nil }
        let clusterNodes = rf["clusters"]?.items("clusters") ?? []
        let clusters = clusterNodes.compactMap(cluster)
        var accessLog = AccessLogSettings()
        accessLog.format = .none
        let listenerNodes = rf.required("listeners", "a list of listeners")?.items("listeners") ?? []
        var listeners: [Listener] = []
        for node in listenerNodes {
            guard let (listener, logs) = listener(node) else { continue }
            listeners.append(listener)
            if logs { accessLog.format = .envoy }
        }
        let decoder = SnapshotDecoder(context: context)
        decoder.validateNames(clusters.map(\.name), nodes: clusterNodes, what: "cluster")
        decoder.validateNames(listeners.map(\.name), nodes: listenerNodes, what: "listener")
        decoder.validateAddresses(listeners, nodes: listenerNodes, admin: admin, adminNode: f["admin"])
        decoder.validateClusterReferences(listeners, listenerNodes: listenerNodes, clusters: Set(clusters.map(\.name)))
        return ConfigSnapshot(version: version, source: file, admin: admin, accessLog: accessLog, listeners: listeners, clusters: clusters)
    }

    /// `{socket_address: {address, port_value}}`.
    func socketAddress(_ node: ConfigNode) -> HostPort? {
        guard let f = fields(node, ["socket_address"]), let socket = f.required("socket_address", "{address, port_value}"),
              let sf = fields(socket, ["address", "port_value", "protocol"]),
              let host = sf.required("address", "an IP address or host name")?.string(),
              let port = sf.required("port_value", "a port from 0 to 65535")?.int(in: 0...65535) else { return nil }
        if let proto = sf["protocol"], let text = proto.string(), text != "TCP" { proto.error("\(text): not supported (TCP only)") }
        return HostPort(host: host, port: port)
    }

    // MARK: listeners

    /// A listener and whether it asks for a stdout access log.
    func listener(_ node: ConfigNode) -> (Listener, Bool)? {
        guard let f = fields(node, ["name", "address", "filter_chains"], ignored: ["traffic_direction"]) else { return nil }
        let name = f.required("name", "a unique name")?.string()
        let address = f.required("address", "{socket_address: {address, port_value}}").flatMap(socketAddress)
        guard let chains = f.required("filter_chains", "one filter chain with an http_connection_manager")?.items("filter chains") else { return nil }
        guard chains.count == 1 else {
            (chains.count > 1 ? chains[1] : node).error("not supported: Ferry reads exactly one filter chain per listener (no filter_chain_match)")
            return nil
        }
        guard let cf = fields(chains[0], ["filters"]), let filters = cf.required("filters", "the http_connection_manager")?.items("filters") else { return nil }
        guard filters.count == 1 else {
            chains[0].error("not supported: Ferry reads exactly one network filter, the http_connection_manager")
            return nil
        }
        guard let (http, logs) = connectionManager(filters[0]), let name, let address else { return nil }
        return (Listener(name: name, address: address, http: http), logs)
    }

    func connectionManager(_ node: ConfigNode) -> (HTTPConnectionManager, Bool)? {
        guard let f = fields(node, ["name", "typed_config"]) else { return nil }
        if let nameNode = f["name"], let name = nameNode.string(), name != "envoy.filters.network.http_connection_manager" {
            nameNode.error("\(name): not supported (Ferry reads envoy.filters.network.http_connection_manager only)")
            return nil
        }
        guard let config = f.required("typed_config", "the HttpConnectionManager"),
              let hf = fields(config, ["@type", "stat_prefix", "codec_type", "route_config", "http_filters", "access_log"]) else { return nil }
        if let typeNode = hf.required("@type", Self.hcmType), let type = typeNode.string(), type != Self.hcmType {
            typeNode.error("\(type): not supported (expected \(Self.hcmType))")
        }
        _ = hf.required("stat_prefix", "a name for the listener's statistics (required by Envoy)")?.string()
        var http = HTTPConnectionManager(virtualHosts: [])
        if let codec = hf["codec_type"], let text = codec.string() {
            switch text {
            case "AUTO", "HTTP1": break
            case "HTTP2": http.http2.priorKnowledge = true
            default: codec.error("\(text): not supported (AUTO, HTTP1 or HTTP2)")
            }
        }
        var logs = false
        for logger in hf["access_log"]?.items("access loggers") ?? [] {
            guard let lf = fields(logger, ["name", "typed_config"]) else { continue }
            if let typed = lf["typed_config"], let tf = fields(typed, ["@type"]), let type = tf["@type"]?.string(), type != Self.stdoutLoggerType {
                tf["@type"]!.error("\(type): not supported (the stdout access logger only)")
            }
            logs = true
        }
        let filters = hf.required("http_filters", "the router filter, last")?.items("HTTP filters") ?? []
        for (index, filter) in filters.enumerated() {
            guard let ff = fields(filter, ["name", "typed_config"]) else { continue }
            let name = ff["name"]?.string() ?? ""
            guard name == "envoy.filters.http.router", index == filters.count - 1 else {
                ff["name"]?.error("\(name): not supported (Ferry reads the router filter only)")
                continue
            }
            // Envoy since 1.22 needs the router's typed_config; so does Ferry, to refuse what Envoy refuses.
            guard let typed = ff.required("typed_config", "{\"@type\": \(Self.routerType)}"), let tf = fields(typed, ["@type"]),
                  let typeNode = tf.required("@type", Self.routerType), let type = typeNode.string() else { continue }
            if type != Self.routerType { typeNode.error("\(type): not supported (expected \(Self.routerType))") }
        }
        guard let routeConfig = hf.required("route_config", "the virtual hosts (rds and scoped_routes are not read)"),
              let rf = fields(routeConfig, ["name", "virtual_hosts"]) else { return nil }
        let vhostNodes = rf.required("virtual_hosts", "a list of virtual hosts")?.items("virtual hosts") ?? []
        var seen: [String: String] = [:]
        for vhostNode in vhostNodes {
            guard let vhost = virtualHost(vhostNode, seen: &seen) else { continue }
            http.virtualHosts.append(vhost)
        }
        return (http, logs)
    }

    func virtualHost(_ node: ConfigNode, seen: inout [String: String]) -> VirtualHost? {
        guard let f = fields(node, ["name", "domains", "routes"]) else { return nil }
        let name = f.required("name", "a name")?.string()
        var domains: [DomainPattern] = []
        for item in f.required("domains", "at least one domain")?.items("domains") ?? [] {
            guard let text = item.string() else { continue }
            switch DomainPattern.parseEnvoy(text) {
            case .success(let pattern):
                // Envoy refuses a domain served by two virtual hosts.
                if let other = seen[pattern.description] {
                    item.error("domain \"\(text)\" is already served by virtual host \(other)")
                } else {
                    seen[pattern.description] = name ?? "?"
                    domains.append(pattern)
                }
            case .failure(let problem):
                item.error("\(problem)")
            }
        }
        let routes = (f["routes"]?.items("routes") ?? []).enumerated().compactMap { index, route in self.route(route, name: "\(name ?? "vhost")/\(index)") }
        guard let name else { return nil }
        return VirtualHost(name: name, domains: domains, routes: routes)
    }

    func route(_ node: ConfigNode, name: String) -> Route? {
        guard let f = fields(node, ["name", "match", "route", "direct_response"]) else { return nil }
        guard let matchNode = f.required("match", "prefix, path or safe_regex"),
              let mf = fields(matchNode, ["prefix", "path", "safe_regex", "case_sensitive"]) else { return nil }
        let caseSensitive = mf["case_sensitive"]?.bool() ?? true
        var path: PathMatch?
        let kinds = ["prefix", "path", "safe_regex"].filter { mf[$0] != nil }
        if kinds.count != 1 { matchNode.error("exactly one of prefix, path or safe_regex") }
        do {
            if let p = mf["prefix"]?.string() {
                path = caseSensitive ? .stringPrefix(p) : .regexPrefix(try CompiledRegex("(?i)" + Self.literal(p)))
            } else if let p = mf["path"]?.string() {
                path = caseSensitive ? .exact(p) : .regex(try CompiledRegex("(?i)" + Self.literal(p)))
            } else if let regexNode = mf["safe_regex"], let rf = fields(regexNode, ["regex"], ignored: ["google_re2"]),
                      let text = rf.required("regex", "an RE2 expression matched against the whole path")?.string() {
                path = .regex(try CompiledRegex((caseSensitive ? "" : "(?i)") + text))
            }
        } catch {
            matchNode.error("the expression cannot be compiled: \(error)")
            return nil
        }
        let routeName = f["name"]?.string() ?? name
        let action: RouteAction
        var timeout = Duration.seconds(15)  // Envoy's route timeout
        var rewrite: PathRewrite?
        var hostRewrite: String?
        if let routeNode = f["route"] {
            guard f["direct_response"] == nil else { node.error("a route has route or direct_response, not both"); return nil }
            guard let rf = fields(routeNode, ["cluster", "timeout", "prefix_rewrite", "host_rewrite_literal"]),
                  let cluster = rf.required("cluster", "the cluster to send to (cluster_header and weighted_clusters are not read)")?.string() else { return nil }
            action = .forward([WeightedCluster(name: cluster)])
            if let t = rf["timeout"], let d = duration(t) {
                timeout = d == .zero ? .seconds(365 * 24 * 3600) : d  // 0s: no timeout
            }
            if let rewriteNode = rf["prefix_rewrite"], let p = rewriteNode.string() {
                // The matched prefix is replaced and the rest of the path kept.
                if case .stringPrefix(let prefix)? = path, !p.contains("$"), let regex = try? CompiledRegex("^" + Self.literal(prefix) + "(.*)$") {
                    rewrite = PathRewrite(regex: regex, replacement: p + "$1")
                } else {
                    rewriteNode.error("not supported here: prefix_rewrite needs a case-sensitive prefix match and a replacement without \"$\"")
                }
            }
            hostRewrite = rf["host_rewrite_literal"]?.string()
        } else if let directNode = f["direct_response"] {
            guard let df = fields(directNode, ["status", "body"]), let status = df.required("status", "an HTTP status")?.int(in: 200...599) else { return nil }
            var body = ""
            if let bodyNode = df["body"], let bf = fields(bodyNode, ["inline_string"]), let text = bf.required("inline_string", "the body text")?.string() { body = text }
            action = .directResponse(status: status, body: body)
        } else {
            node.error("missing route or direct_response (redirect and filter actions are not read)")
            return nil
        }
        guard let path else { return nil }
        var route = Route(name: routeName, match: RouteMatch(path: path), action: action, timeout: timeout, rewrite: rewrite)
        route.hostRewrite = hostRewrite
        return route
    }

    // MARK: clusters

    func cluster(_ node: ConfigNode) -> Cluster? {
        guard let f = fields(node, ["name", "connect_timeout", "type", "lb_policy", "load_assignment", "dns_lookup_family"],
                             ignored: ["dns_refresh_rate", "respect_dns_ttl"]) else { return nil }
        let name = f.required("name", "a unique name")?.string()
        var connectTimeout = Duration.seconds(5)
        if let t = f["connect_timeout"], let d = duration(t) {
            if d == .zero { t.error("must be greater than 0") } else { connectTimeout = d }
        }
        let type = f["type"]?.string() ?? "STATIC"
        guard ["STATIC", "STRICT_DNS", "LOGICAL_DNS"].contains(type) else {
            f["type"]!.error("\(type): not supported (STATIC, STRICT_DNS or LOGICAL_DNS)")
            return nil
        }
        var balancing = LoadBalancingPolicy.roundRobin
        if let lb = f["lb_policy"], let text = lb.string() {
            switch text {
            case "ROUND_ROBIN": balancing = .roundRobin
            case "LEAST_REQUEST": balancing = .leastRequest
            case "RANDOM": balancing = .random
            default: lb.error("\(text): not supported (ROUND_ROBIN, LEAST_REQUEST or RANDOM)")
            }
        }
        if let family = f["dns_lookup_family"], let text = family.string(), !["AUTO", "V4_ONLY", "V4_PREFERRED", "V6_ONLY", "ALL"].contains(text) {
            family.error("\(text): not a dns_lookup_family")
        }
        var endpoints: [HostPort] = []
        if let assignment = f.required("load_assignment", "the endpoints"), let af = fields(assignment, ["cluster_name", "endpoints"]) {
            _ = af.required("cluster_name", "the cluster's name (required by Envoy)")?.string()
            for locality in af["endpoints"]?.items("locality endpoints") ?? [] {
                guard let lf = fields(locality, ["lb_endpoints"]) else { continue }
                for lbEndpoint in lf["lb_endpoints"]?.items("endpoints") ?? [] {
                    guard let ef = fields(lbEndpoint, ["endpoint", "load_balancing_weight"]), let endpoint = ef.required("endpoint", "{address}"),
                          let epf = fields(endpoint, ["address"]), let address = epf.required("address", "{socket_address}").flatMap(socketAddress) else { continue }
                    if let weight = ef["load_balancing_weight"], weight.int(in: 1...1_000_000) != 1 {
                        weight.error("not supported: endpoint weights other than 1")
                    }
                    endpoints.append(address)
                }
            }
            // Envoy: LOGICAL_DNS takes exactly one endpoint.
            if type == "LOGICAL_DNS", endpoints.count != 1 {
                assignment.error("LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint")
            }
        }
        guard let name else { return nil }
        return Cluster(name: name, endpoints: endpoints, loadBalancing: balancing, connectTimeout: connectTimeout)
    }

    /// Envoy's durations: `5s`, `0.25s`, `1.5s`, and Ferry's own (`250ms`).
    func duration(_ node: ConfigNode) -> Duration? {
        guard let text = node.string() else { return nil }
        if text.hasSuffix("s"), !text.hasSuffix("ms"), let seconds = Double(text.dropLast()), seconds >= 0 {
            return .milliseconds(Int64((seconds * 1000).rounded()))
        }
        if let d = DurationText.parse(text) { return d }
        node.error("expected a duration such as 5s or 0.25s")
        return nil
    }

    /// `text` as a regular expression matching itself.
    static func literal(_ text: String) -> String {
        var out = ""
        for ch in text {
            if "\\^$.|?*+()[]{}/-".contains(ch) { out.append("\\") }
            out.append(ch)
        }
        return out
    }
}
