import FerryModel

/// Walks the YAML tree and builds the model, one decoder function per noun of the configuration.
struct SnapshotDecoder {
    let context: DecodingContext

    func snapshot(_ root: ConfigNode, file: String, version: Int) -> ConfigSnapshot? {
        guard let f = root.fields(allowed: ["admin", "access_log", "drain_timeout", "listeners", "clusters", "policies"]) else { return nil }
        var admin: AdminSettings? = AdminSettings()
        if let node = f["admin"] {
            admin = adminSettings(node)
        }
        var accessLog = AccessLogSettings()
        if let node = f["access_log"], let af = node.fields(allowed: ["format"]), let formatNode = af["format"], let text = formatNode.string() {
            if let format = AccessLogSettings.Format(rawValue: text) {
                accessLog.format = format
            } else {
                formatNode.error("unknown format \"\(text)\"; expected one of: \(AccessLogSettings.Format.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        let drain = f["drain_timeout"]?.duration() ?? .seconds(25)
        let clusterNodes = f.required("clusters", "a list of clusters (name, endpoints)")?.items("clusters") ?? []
        let clusters = clusterNodes.compactMap(cluster)
        let policies = f["policies"].map(self.policies) ?? [:]
        let listenerNodes = f.required("listeners", "a list of listeners (name, address, http)")?.items("listeners") ?? []
        let listeners = listenerNodes.compactMap { listener($0, policies: policies) }
        validateNames(clusters.map(\.name), nodes: clusterNodes, what: "cluster")
        validateNames(listeners.map(\.name), nodes: listenerNodes, what: "listener")
        validateAddresses(listeners, nodes: listenerNodes, admin: admin, adminNode: f["admin"])
        validateClusterReferences(listeners, listenerNodes: listenerNodes, clusters: Set(clusters.map(\.name)))
        return ConfigSnapshot(
            version: version, source: file, admin: admin, accessLog: accessLog, drainTimeout: drain,
            listeners: listeners, clusters: clusters
        )
    }

    func adminSettings(_ node: ConfigNode) -> AdminSettings? {
        guard let f = node.fields(allowed: ["address", "enabled"]) else { return AdminSettings() }
        if let enabled = f["enabled"]?.bool(), !enabled { return nil }
        return AdminSettings(address: f["address"]?.hostPort() ?? AdminSettings().address)
    }

    // MARK: listeners

    func listener(_ node: ConfigNode, policies: [String: AccessPolicy]) -> Listener? {
        guard let f = node.fields(allowed: ["name", "address", "unix_socket", "tls", "http", "forward_proxy", "tcp_proxy", "udp_proxy", "intercept"]) else { return nil }
        if let interceptNode = f["intercept"], f["forward_proxy"] == nil {
            interceptNode.error("intercept takes kernel-redirected connections for a forward proxy: the listener needs forward_proxy (its policy decides them)")
        }
        let tls = f["tls"].flatMap(downstreamTLS)
        let name = f.required("name", "a unique name for metrics and logs")?.string()
        // A Unix socket listener has a path instead of an address.
        let unixSocket = f["unix_socket"]?.string()
        if f["unix_socket"] != nil, f["address"] != nil { f["unix_socket"]!.error("a listener has an address or a unix_socket, not both") }
        let address = unixSocket != nil ? HostPort(host: "", port: 0) : f.required("address", "where to listen, as host:port (\"0.0.0.0:8080\"), or unix_socket: PATH")?.hostPort()
        if let tcpNode = f["tcp_proxy"] {
            // An L4 listener: every connection goes to the cluster; there are no HTTP settings.
            if f["http"] != nil || f["forward_proxy"] != nil { tcpNode.error("a tcp_proxy listener has no http or forward_proxy") }
            guard let tf = tcpNode.fields(allowed: ["cluster"]), let cluster = tf.required("cluster", "the cluster whose endpoints take the connections")?.string(),
                  let name, let address else { return nil }
            var listener = Listener(name: name, address: address, unixSocket: unixSocket, http: HTTPConnectionManager(virtualHosts: []))
            listener.tcpProxy = TCPProxySettings(cluster: cluster)
            listener.tls = tls
            return listener
        }
        if let udpNode = f["udp_proxy"] {
            if f["http"] != nil || f["forward_proxy"] != nil || f["tcp_proxy"] != nil || f["unix_socket"] != nil {
                udpNode.error("a udp_proxy listener has an address and nothing else (no http, forward_proxy, tcp_proxy or unix_socket)")
            }
            guard let uf = udpNode.fields(allowed: ["cluster", "idle_timeout", "max_sessions"]),
                  let cluster = uf.required("cluster", "the cluster whose endpoints take the datagrams")?.string(), let name, let address else { return nil }
            var settings = UDPProxySettings(cluster: cluster)
            if let idle = uf["idle_timeout"]?.duration() { settings.idleTimeout = idle }
            if let max = uf["max_sessions"]?.int(in: 1...10_000_000) { settings.maxSessions = max }
            var listener = Listener(name: name, address: address, http: HTTPConnectionManager(virtualHosts: []))
            listener.udpProxy = settings
            return listener
        }
        if let forwardNode = f["forward_proxy"] {
            // A forward proxy: `http` is optional (limits, timeouts) and has no virtual hosts.
            let forward = forwardProxy(forwardNode, policies: policies)
            var http = HTTPConnectionManager(virtualHosts: [])
            if let httpNode = f["http"] {
                guard let decoded = connectionManager(httpNode, forwardProxy: true) else { return nil }
                http = decoded
            }
            guard let name, let address, let forward else { return nil }
            http.forwardProxy = forward
            var listener = Listener(name: name, address: address, unixSocket: unixSocket, http: http)
            listener.tls = tls
            if let interceptNode = f["intercept"] {
                listener.intercept = intercept(interceptNode)
                if tls != nil { interceptNode.error("an intercept listener never terminates TLS: it reads the ClientHello's server name and passes the stream on; remove tls") }
                if unixSocket != nil { interceptNode.error("an intercept listener listens on an address (the kernel redirects TCP to it), not a unix_socket") }
            }
            return listener
        }
        let http = f.required("http", "the HTTP settings and virtual_hosts (or forward_proxy for a forward proxy)").flatMap { connectionManager($0) }
        guard let name, let address, let http else { return nil }
        var listener = Listener(name: name, address: address, unixSocket: unixSocket, http: http)
        listener.tls = tls
        return listener
    }

    /// `intercept: {mode: redirect | tproxy, first_bytes_timeout: 1s}` (`{}` or `true` for the defaults).
    func intercept(_ node: ConfigNode) -> InterceptSettings? {
        if node.node.scalar?.string == "true" { return InterceptSettings() }
        guard let f = node.fields(allowed: ["mode", "first_bytes_timeout"]) else { return nil }
        var settings = InterceptSettings()
        if let modeNode = f["mode"], let text = modeNode.string() {
            if let mode = InterceptSettings.Mode(rawValue: text) {
                settings.mode = mode
            } else {
                modeNode.error("unknown mode \"\(text)\"; expected one of: \(InterceptSettings.Mode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if let timeout = f["first_bytes_timeout"]?.duration() { settings.firstBytesTimeout = timeout }
        return settings
    }

    /// `tls:` on a listener (see `SnapshotDecoder+TLS.swift`).
    func downstreamTLS(_ node: ConfigNode) -> DownstreamTLS? {
        DownstreamTLSDecoding(decoder: self).decode(node)
    }

    func connectionManager(_ node: ConfigNode, forwardProxy: Bool = false) -> HTTPConnectionManager? {
        guard let f = node.fields(allowed: ["limits", "timeouts", "virtual_hosts", "normalize_path", "forwarded", "upgrade_protocols", "http2"]) else { return nil }
        var limits = HTTPLimits()
        if let lf = f["limits"]?.fields(allowed: ["max_request_line", "max_header_bytes", "max_headers", "max_requests_per_connection", "max_request_body", "max_connections", "max_chunk_line"]) {
            if let v = lf["max_request_line"]?.byteSize() { limits.maxRequestLineBytes = v }
            if let v = lf["max_header_bytes"]?.byteSize() { limits.maxHeaderBytes = v }
            if let v = lf["max_headers"]?.int(in: 1...10_000) { limits.maxHeaderCount = v }
            if let v = lf["max_requests_per_connection"]?.int(in: 1...Int(Int32.max)) { limits.maxRequestsPerConnection = v }
            if let v = lf["max_request_body"]?.byteSize() { limits.maxRequestBodyBytes = v }
            if let v = lf["max_connections"]?.int(in: 1...10_000_000) { limits.maxConnections = v }
            if let v = lf["max_chunk_line"]?.byteSize() { limits.maxChunkLineBytes = v }
        }
        var timeouts = HTTPTimeouts()
        if let tf = f["timeouts"]?.fields(allowed: ["request_headers", "idle"]) {
            if let v = tf["request_headers"]?.duration() { timeouts.requestHeaders = v }
            if let v = tf["idle"]?.duration() { timeouts.idle = v }
        }
        if forwardProxy, let v = f["virtual_hosts"] {
            v.error("a forward-proxy listener has no virtual_hosts: requests go where their URL says, as its policy allows")
            return nil
        }
        let vhostNodes = forwardProxy ? [] : f.required("virtual_hosts", "a list of virtual hosts (name, domains, routes)")?.items("virtual hosts") ?? []
        let vhosts = vhostNodes.compactMap(virtualHost)
        guard vhosts.count == vhostNodes.count else { return nil }
        var http = HTTPConnectionManager(limits: limits, timeouts: timeouts, virtualHosts: vhosts)
        if let n = f["normalize_path"].flatMap(pathNormalization) { http.pathNormalization = n }
        if let t = f["forwarded"].flatMap(forwardedTrust) { http.forwardedTrust = t }
        if let u = f["upgrade_protocols"] {
            var tokens: [String] = []
            for item in u.items("upgrade protocols") ?? [] {
                guard let text = item.string() else { continue }
                if text.isEmpty || !text.utf8.allSatisfy({ ($0 > 0x20 && $0 < 0x7f) && $0 != UInt8(ascii: ",") }) {
                    item.error("an upgrade protocol is a token such as websocket or spdy/3.1")
                } else {
                    tokens.append(text)
                }
            }
            http.upgradeProtocols = UpgradeProtocols(tokens)
        }
        if let node = f["http2"] { http.http2 = http2(node) }
        return http
    }

    /// `http2: false`, or `{enabled, prior_knowledge, max_concurrent_streams, max_header_list_size, max_resets_per_30s}`.
    func http2(_ node: ConfigNode) -> DownstreamHTTP2 {
        var settings = DownstreamHTTP2()
        if case .scalar = node.node {
            settings.enabled = node.bool() ?? true
            return settings
        }
        guard let f = node.fields(allowed: ["enabled", "prior_knowledge", "max_concurrent_streams", "max_header_list_size", "max_resets_per_30s"]) else { return settings }
        if let v = f["enabled"]?.bool() { settings.enabled = v }
        if let v = f["prior_knowledge"]?.bool() { settings.priorKnowledge = v }
        if let v = f["max_concurrent_streams"]?.int(in: 1...10_000) { settings.maxConcurrentStreams = v }
        if let n = f["max_header_list_size"], let v = n.byteSize() {
            if (1024...(1 << 24)).contains(v) { settings.maxHeaderListSize = v } else { n.error("max_header_list_size must be from 1KiB to 16MiB") }
        }
        if let v = f["max_resets_per_30s"]?.int(in: 1...100_000) { settings.maxResetsPer30s = v }
        return settings
    }

    /// `normalize_path: {merge_slashes: true, escaped_slashes: reject|keep}` (dot segments are always removed).
    func pathNormalization(_ node: ConfigNode) -> PathNormalization? {
        guard let f = node.fields(allowed: ["merge_slashes", "escaped_slashes"]) else { return nil }
        var n = PathNormalization()
        if let v = f["merge_slashes"]?.bool() { n.mergeSlashes = v }
        if let e = f["escaped_slashes"], let text = e.string() {
            guard let action = PathNormalization.EscapedSlashes(rawValue: text) else {
                e.error("expected reject (400 for %2F and %5C) or keep (left encoded, routed undecoded)")
                return nil
            }
            n.escapedSlashes = action
        }
        return n
    }

    /// `forwarded: {xff_trusted_hops: N, trusted_proxies: [CIDR...]}`.
    func forwardedTrust(_ node: ConfigNode) -> ForwardedTrust? {
        guard let f = node.fields(allowed: ["xff_trusted_hops", "trusted_proxies"]) else { return nil }
        var t = ForwardedTrust()
        if let v = f["xff_trusted_hops"]?.int(in: 0...16) { t.trustedHops = v }
        for item in f["trusted_proxies"]?.items("address ranges") ?? [] {
            guard let text = item.string() else { continue }
            if let range = IPRange(parsing: text) { t.trustedProxies.append(range) } else { item.error("expected an address or CIDR such as 10.0.0.0/8, got \"\(text)\"") }
        }
        if t.trustedHops > 0 && !t.trustedProxies.isEmpty {
            node.error("set xff_trusted_hops or trusted_proxies, not both")
            return nil
        }
        return t
    }

    func virtualHost(_ node: ConfigNode) -> VirtualHost? {
        guard let f = node.fields(allowed: ["name", "domains", "routes"]) else { return nil }
        let name = f.required("name", "a name for logs and metrics")?.string()
        var domains: [DomainPattern] = []
        for d in f.required("domains", "host names served, e.g. [shop.example.com, \"*.example.com\"] or [\"*\"]")?.items("domains") ?? [] {
            guard let text = d.string() else { continue }
            switch DomainPattern.parse(text) {
            case .success(let pattern): domains.append(pattern)
            case .failure(let reason): d.error("invalid domain \"\(text)\": \(reason)")
            }
        }
        let routeNodes = f.required("routes", "a list of routes (match and an action)")?.items("routes") ?? []
        let vhostName = name ?? "vhost"
        let routes = routeNodes.enumerated().compactMap { index, routeNode in route(routeNode, defaultName: "\(vhostName)/\(index)") }
        guard let name, routes.count == routeNodes.count else { return nil }
        return VirtualHost(name: name, domains: domains, routes: routes)
    }

    // MARK: routes

    func route(_ node: ConfigNode, defaultName: String) -> Route? {
        let actions = ["forward", "redirect", "direct_response", "static_files"]
        guard let f = node.fields(allowed: ["name", "match", "timeout", "retries", "rewrite", "allow_sources", "max_request_body", "stream_idle_timeout"] + actions + SnapshotDecoder.routePolicyFields) else { return nil }
        let name = f["name"]?.string() ?? defaultName
        let match = f.required("match", "what the route matches, e.g. {prefix: /}").flatMap(routeMatch)
        let present = actions.filter { f[$0] != nil }
        var action: RouteAction?
        if present.count != 1 {
            node.error(present.isEmpty
                ? "a route needs one action: forward, redirect, direct_response or static_files"
                : "a route has exactly one action; found \(present.joined(separator: " and "))")
        } else if let forwardNode = f["forward"] {
            action = forward(forwardNode)
        } else if let redirectNode = f["redirect"] {
            action = redirect(redirectNode)
        } else if let directNode = f["direct_response"] {
            action = directResponse(directNode)
        } else if let filesNode = f["static_files"] {
            action = staticFiles(filesNode)
        }
        let timeout = f["timeout"]?.duration() ?? .seconds(15)
        let retries = f["retries"].flatMap(retryPolicy) ?? RetryPolicy()
        var rewrite: PathRewrite?
        if let r = f["rewrite"] {
            rewrite = pathRewrite(r)
            if f["forward"] == nil { r.error("rewrite only applies to forward routes") }
        }
        var sources: [IPRange] = []
        for item in f["allow_sources"]?.items("address ranges") ?? [] {
            guard let text = item.string() else { continue }
            if let range = IPRange(parsing: text) { sources.append(range) } else { item.error("expected an address or CIDR such as 10.0.0.0/8 or fd00::/8, got \"\(text)\"") }
        }
        var maxBody: Int?
        if let m = f["max_request_body"] {
            maxBody = m.node.scalar?.string == "unlimited" ? Int.max : m.byteSize()
        }
        let idle = f["stream_idle_timeout"]?.duration()
        guard let match, let action else { return nil }
        var route = Route(name: name, match: match, action: action, timeout: timeout, retries: retries, rewrite: rewrite, allowedSources: sources, maxRequestBodyBytes: maxBody, streamIdleTimeout: idle)
        applyRoutePolicy(f, to: &route)
        return route
    }

    func pathRewrite(_ node: ConfigNode) -> PathRewrite? {
        guard let f = node.fields(allowed: ["regex", "replacement"]) else { return nil }
        guard let regexNode = f.required("regex", "the expression searched for in the path"), let text = regexNode.string(),
              let replacement = f.required("replacement", "the new path, with $1..$9 for groups")?.string()
        else { return nil }
        do {
            return PathRewrite(regex: try CompiledRegex(text), replacement: replacement)
        } catch {
            regexNode.error("invalid regular expression: \(error)")
            return nil
        }
    }

    func routeMatch(_ node: ConfigNode) -> RouteMatch? {
        let kinds = ["exact", "prefix", "regex"]
        guard let f = node.fields(allowed: kinds + ["methods", "headers", "cookies"]) else { return nil }
        let present = kinds.compactMap { f[$0] }
        var path: PathMatch?
        if present.count != 1 {
            node.error(present.isEmpty
                ? "a match needs one path condition: exact, prefix or regex (\"prefix: /\" matches every path)"
                : "a match has exactly one of exact, prefix or regex")
        } else if let p = f["exact"], let text = p.string() {
            if text.hasPrefix("/") { path = .exact(text) } else { p.error("must start with \"/\"") }
        } else if let p = f["prefix"], let text = p.string() {
            if text.hasPrefix("/") { path = .prefix(text) } else { p.error("must start with \"/\"") }
        } else if let p = f["regex"], let text = p.string() {
            do { path = .regex(try CompiledRegex(text)) } catch { p.error("invalid regular expression: \(error)") }
        }
        var methods: [String] = []
        for m in f["methods"]?.items("methods") ?? [] {
            guard let text = m.string() else { continue }
            if text.isEmpty || !text.utf8.allSatisfy({ ($0 >= 65 && $0 <= 90) || $0 == 45 }) {
                m.error("a method is an upper-case token such as GET or POST, got \"\(text)\"")
            } else {
                methods.append(text)
            }
        }
        var headers: [HeaderMatch] = []
        if let h = f["headers"] {
            if case .mapping(let mapping) = h.node {
                for (keyNode, valueNode) in mapping {
                    guard let name = keyNode.scalar?.string else { continue }
                    if let m = headerMatch(name: name, h.child(name, valueNode)) { headers.append(m) }
                }
            } else {
                h.error("expected a mapping of header name to value, e.g. {x-canary: \"true\"}")
            }
        }
        var cookies: [CookieMatch] = []
        if let c = f["cookies"] {
            if case .mapping(let mapping) = c.node {
                for (keyNode, valueNode) in mapping {
                    guard let name = keyNode.scalar?.string, let value = c.child(name, valueNode).string() else { continue }
                    cookies.append(CookieMatch(name: name, value: value))
                }
            } else {
                c.error("expected a mapping of cookie name to value, e.g. {beta: always}")
            }
        }
        guard let path else { return nil }
        return RouteMatch(path: path, methods: methods, headers: headers, cookies: cookies)
    }

    func headerMatch(name: String, _ node: ConfigNode) -> HeaderMatch? {
        if case .scalar = node.node, let value = node.string() {
            return HeaderMatch(name: name, condition: .exact(value))
        }
        guard let f = node.fields(allowed: ["exact", "present", "regex"]) else { return nil }
        if let v = f["exact"]?.string() { return HeaderMatch(name: name, condition: .exact(v)) }
        if let v = f["present"]?.bool() {
            if !v { f["present"]?.error("only \"present: true\" is supported") }
            return HeaderMatch(name: name, condition: .present)
        }
        if let p = f["regex"], let text = p.string() {
            do { return HeaderMatch(name: name, condition: .regex(try CompiledRegex(text))) } catch { p.error("invalid regular expression: \(error)") }
            return nil
        }
        node.error("expected exact, present or regex")
        return nil
    }

    func forward(_ node: ConfigNode) -> RouteAction? {
        guard let f = node.fields(allowed: ["cluster", "clusters"]) else { return nil }
        if f["cluster"] != nil, f["clusters"] != nil {
            node.error("use either cluster or clusters, not both")
            return nil
        }
        if let c = f["cluster"]?.string() { return .forward([WeightedCluster(name: c, weight: 1)]) }
        guard let list = f["clusters"]?.items("weighted clusters") else {
            node.error("missing field \"cluster\" (or \"clusters\" with weights)")
            return nil
        }
        var weighted: [WeightedCluster] = []
        for item in list {
            guard let wf = item.fields(allowed: ["name", "weight"]) else { continue }
            guard let name = wf.required("name", "the cluster's name")?.string() else { continue }
            let weight = wf["weight"]?.int(in: 0...1_000_000) ?? 1
            weighted.append(WeightedCluster(name: name, weight: weight))
        }
        if !weighted.isEmpty, weighted.allSatisfy({ $0.weight == 0 }) {
            node.error("at least one weight must be above 0")
            return nil
        }
        guard weighted.count == list.count, !weighted.isEmpty else {
            if list.isEmpty { node.error("clusters must not be empty") }
            return nil
        }
        return .forward(weighted)
    }

    func redirect(_ node: ConfigNode) -> RouteAction? {
        guard let f = node.fields(allowed: ["url", "scheme", "host", "port", "path", "status"]) else { return nil }
        var r = Redirect()
        if let u = f["url"], let text = u.string() {
            if (text.hasPrefix("http://") || text.hasPrefix("https://")), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) {
                r.url = text
            } else {
                u.error("expected an absolute http(s) URL without spaces")
            }
            for other in ["scheme", "host", "port", "path"] where f[other] != nil { f[other]?.error("url replaces the whole location; \(other) cannot be combined with it") }
        }
        if let s = f["scheme"], let text = s.string() {
            if ["http", "https"].contains(text) { r.scheme = text } else { s.error("expected http or https") }
        }
        r.host = f["host"]?.string()
        r.port = f["port"]?.int(in: 1...65535)
        if let p = f["path"], let text = p.string() {
            if text.hasPrefix("/") { r.path = text } else { p.error("must start with \"/\"") }
        }
        if let s = f["status"], let status = s.int(in: 300...399) {
            if [301, 302, 303, 307, 308].contains(status) { r.status = status } else { s.error("expected 301, 302, 303, 307 or 308") }
        }
        return .redirect(r)
    }

    func directResponse(_ node: ConfigNode) -> RouteAction? {
        guard let f = node.fields(allowed: ["status", "body"]) else { return nil }
        guard let status = f.required("status", "the response status, 200 to 599")?.int(in: 200...599) else { return nil }
        let body = f["body"]?.string() ?? ""
        return .directResponse(status: status, body: body)
    }

    /// `{root: FOLDER, prefix: /static/}`: files under the folder (relative to the configuration file).
    func staticFiles(_ node: ConfigNode) -> RouteAction? {
        guard let f = node.fields(allowed: ["root", "prefix"]) else { return nil }
        guard let root = f.required("root", "the folder whose files are served")?.string() else { return nil }
        let prefix = f["prefix"]?.string() ?? "/"
        guard prefix.hasPrefix("/") else {
            f["prefix"]!.error("a path prefix starts with /, got \"\(prefix)\"")
            return nil
        }
        return .staticFiles(StaticFiles(root: relativeToConfig(root), prefix: prefix))
    }

    func retryPolicy(_ node: ConfigNode) -> RetryPolicy? {
        guard let f = node.fields(allowed: ["attempts", "on"]) else { return nil }
        var policy = RetryPolicy()
        if let a = f["attempts"]?.int(in: 0...10) { policy.attempts = a }
        if let onNode = f["on"], let items = onNode.items("retry conditions") {
            var conditions: [RetryPolicy.Condition] = []
            for item in items {
                guard let text = item.string() else { continue }
                if let c = RetryPolicy.Condition.parse(text) {
                    conditions.append(c)
                } else {
                    item.error("unknown retry condition \"\(text)\"; expected connect-failure, reset, 5xx or a status such as \"503\"")
                }
            }
            policy.on = conditions
        }
        return policy
    }

    // MARK: clusters

    func cluster(_ node: ConfigNode) -> Cluster? {
        guard let f = node.fields(allowed: ["name", "endpoints", "load_balancing", "hash_on", "connect_timeout", "tls", "tcp_keepalive", "parent_proxy", "session_affinity", "protocol"]) else { return nil }
        let name = f.required("name", "a unique name that routes refer to")?.string()
        var endpoints: [HostPort] = []
        for e in f.required("endpoints", "a list of host:port addresses (may be empty)")?.items("endpoints") ?? [] {
            if let hp = e.hostPort() {
                if hp.port == 0 { e.error("an endpoint needs a port from 1 to 65535") } else { endpoints.append(hp) }
            }
        }
        var policy = LoadBalancingPolicy.roundRobin
        if let lb = f["load_balancing"], let text = lb.string() {
            switch text {
            case "round_robin": policy = .roundRobin
            case "least_request": policy = .leastRequest
            case "random": policy = .random
            case "ring_hash":
                if let hashNode = f["hash_on"] {
                    if let key = hashKey(hashNode) { policy = .ringHash(key) }
                } else {
                    lb.error("ring_hash needs hash_on: {header: NAME}, {cookie: NAME}, source_address or request_uri")
                }
            default:
                let known = ["round_robin", "least_request", "random", "ring_hash"]
                let hint = Suggestion.closest(to: text, among: known).map { "; did you mean \"\($0)\"?" } ?? "; expected one of: \(known.joined(separator: ", "))"
                lb.error("unknown load-balancing policy \"\(text)\"\(hint)")
            }
        }
        if f["hash_on"] != nil, !(f["load_balancing"]?.node.scalar?.string == "ring_hash") {
            f["hash_on"]?.error("hash_on is only used with load_balancing: ring_hash")
        }
        let connectTimeout = f["connect_timeout"]?.duration() ?? .seconds(5)
        let tls = f["tls"].flatMap(upstreamTLS)
        guard let name else { return nil }
        var cluster = Cluster(name: name, endpoints: endpoints, loadBalancing: policy, connectTimeout: connectTimeout, tls: tls)
        cluster.tcpKeepalive = f["tcp_keepalive"]?.duration()
        cluster.parentProxy = f["parent_proxy"]?.hostPort()
        cluster.sessionAffinity = f["session_affinity"]?.duration()
        if let node = f["protocol"], let text = node.string() {
            if let value = UpstreamHTTPProtocol(rawValue: text) {
                cluster.httpProtocol = value
                if value == .h2, f["parent_proxy"] != nil { node.error("protocol h2 cannot go through a parent_proxy") }
            } else {
                node.error("unknown protocol \"\(text)\"; expected http1 or h2")
            }
        }
        return cluster
    }

    /// `tls: {}` (system roots) or `{ca_file, server_name, insecure_skip_verify, client_certificate_file, client_key_file}`;
    /// files are relative to the configuration file and must be readable.
    func upstreamTLS(_ node: ConfigNode) -> UpstreamTLS? {
        guard let f = node.fields(allowed: ["ca_file", "server_name", "insecure_skip_verify", "client_certificate_file", "client_key_file"]) else { return nil }
        var tls = UpstreamTLS()
        func file(_ key: String) -> String? {
            guard let n = f[key], let path = n.string() else { return nil }
            let resolved = relativeToConfig(path)
            if FileReading.readText(resolved) == nil { n.error("cannot read \(path)") }
            return resolved
        }
        tls.caFile = file("ca_file")
        tls.serverName = f["server_name"]?.string()
        tls.insecureSkipVerify = f["insecure_skip_verify"]?.bool() ?? false
        tls.clientCertificateFile = file("client_certificate_file")
        tls.clientKeyFile = file("client_key_file")
        if (tls.clientCertificateFile == nil) != (tls.clientKeyFile == nil) {
            node.error("client_certificate_file and client_key_file go together")
        }
        if tls.insecureSkipVerify && tls.caFile != nil { node.error("insecure_skip_verify cannot be combined with ca_file") }
        return tls
    }

    func hashKey(_ node: ConfigNode) -> RingHashKey? {
        if case .scalar = node.node {
            switch node.string() {
            case "source_address": return .sourceAddress
            case "request_uri": return .requestURI
            default:
                node.error("expected source_address, request_uri, {header: NAME} or {cookie: NAME}")
                return nil
            }
        }
        guard let f = node.fields(allowed: ["header", "cookie"]) else { return nil }
        if let name = f["cookie"]?.string() { return .cookie(name) }
        guard let name = f.required("header", "the header whose value is hashed")?.string() else { return nil }
        return .header(name.lowercased())
    }

    // MARK: cross-checks

    func validateNames(_ names: [String], nodes: [ConfigNode], what: String) {
        var seen: Set<String> = []
        for (index, name) in names.enumerated() where !seen.insert(name).inserted {
            if index < nodes.count { nodes[index].error("duplicate \(what) name \"\(name)\"; names must be unique") }
        }
    }

    func validateAddresses(_ listeners: [Listener], nodes: [ConfigNode], admin: AdminSettings?, adminNode: ConfigNode?) {
        var seen: [HostPort: String] = [:]
        var seenUDP: [HostPort: String] = [:]
        // TCP and UDP listeners have separate ports: a TCP and a UDP listener may share an address.
        for (index, l) in listeners.enumerated() where l.address.port != 0 && l.unixSocket == nil {
            if let other = l.udpProxy != nil ? seenUDP[l.address] : seen[l.address] {
                nodes[index].error("address \(l.address) is already used by listener \"\(other)\"")
            }
            if l.udpProxy != nil { seenUDP[l.address] = l.name } else { seen[l.address] = l.name }
        }
        if let admin, admin.address.port != 0, let other = seen[admin.address] {
            (adminNode ?? nodes.first)?.error("admin address \(admin.address) is already used by listener \"\(other)\"")
        }
    }

    func validateClusterReferences(_ listeners: [Listener], listenerNodes: [ConfigNode], clusters: Set<String>) {
        for (li, listener) in listeners.enumerated() {
            for (kind, name) in [("tcp_proxy", listener.tcpProxy?.cluster), ("udp_proxy", listener.udpProxy?.cluster)] {
                guard let name, !clusters.contains(name) else { continue }
                let node = locate(listenerNodes[li], [kind, "cluster"])
                let hint = Suggestion.closest(to: name, among: Array(clusters)).map { "; did you mean \"\($0)\"?" } ?? ""
                context.report(ConfigDiagnostic(file: context.file, line: node?.line, column: node?.column, path: "listeners[\(li)].\(kind).cluster",
                                                message: "unknown cluster \"\(name)\"\(hint) (define it under clusters)"))
            }
            for (pi, passthrough) in (listener.tls?.passthrough ?? []).enumerated() where !clusters.contains(passthrough.cluster) {
                let node = locate(listenerNodes[li], ["tls", "passthrough", pi, "cluster"])
                let hint = Suggestion.closest(to: passthrough.cluster, among: Array(clusters)).map { "; did you mean \"\($0)\"?" } ?? ""
                context.report(ConfigDiagnostic(file: context.file, line: node?.line, column: node?.column, path: "listeners[\(li)].tls.passthrough[\(pi)].cluster",
                                                message: "unknown cluster \"\(passthrough.cluster)\"\(hint) (define it under clusters)"))
            }
            for (vi, vhost) in listener.http.virtualHosts.enumerated() {
                for (ri, route) in vhost.routes.enumerated() {
                    guard case .forward(let targets) = route.action else { continue }
                    for target in targets where !clusters.contains(target.name) {
                        let path = "listeners[\(li)].http.virtual_hosts[\(vi)].routes[\(ri)].forward"
                        let node = locate(listenerNodes[li], ["http", "virtual_hosts", vi, "routes", ri, "forward"])
                        let hint = Suggestion.closest(to: target.name, among: Array(clusters)).map { "; did you mean \"\($0)\"?" } ?? ""
                        context.report(ConfigDiagnostic(
                            file: context.file, line: node?.line, column: node?.column, path: path,
                            message: "unknown cluster \"\(target.name)\"\(hint) (define it under clusters)"
                        ))
                    }
                }
            }
        }
    }

    /// Finds a nested node for a diagnostic's line number.
    private func locate(_ start: ConfigNode, _ steps: [Any]) -> ConfigNode? {
        var node = start.node
        for step in steps {
            if let key = step as? String, let next = node[key] { node = next }
            else if let index = step as? Int, case .sequence(let seq) = node, index < seq.count { node = seq[index] }
            else { return nil }
        }
        return ConfigNode(node: node, path: "", context: context)
    }
}
