import FerryModel

/// `policies:` and a listener's `forward_proxy:`.
extension SnapshotDecoder {
    /// Named access policies. Rules are `- allow: RULE` / `- deny: RULE` in the short form of
    /// `ferry egress --allow`, or with a mapping of conditions.
    func policies(_ node: ConfigNode) -> [String: AccessPolicy] {
        var result: [String: AccessPolicy] = [:]
        for item in node.items("policies") ?? [] {
            guard let f = item.fields(allowed: ["name", "default", "guards", "rules"]) else { continue }
            guard let name = f.required("name", "the name listeners refer to")?.string() else { continue }
            var defaultAction = AccessRule.Action.deny
            if let d = f["default"], let text = d.string() {
                if let a = AccessRule.Action(rawValue: text) { defaultAction = a } else { d.error("expected allow or deny") }
            }
            var guards = AccessGuard.squidDefaults
            if let g = f["guards"], let text = g.string() {
                switch text {
                case "squid": guards = AccessGuard.squidDefaults
                case "none": guards = []
                default: g.error("expected squid (Squid's Safe_ports, SSL_ports, localhost and link-local guards) or none")
                }
            }
            var rules: [AccessRule] = []
            for r in f.required("rules", "a list of - allow: RULE / - deny: RULE (may be empty)")?.items("rules") ?? [] {
                if let rule = accessRule(r) { rules.append(rule) }
            }
            if result[name] != nil { item.error("policy \"\(name)\" is defined twice") }
            result[name] = AccessPolicy(name: name, rules: rules, defaultAction: defaultAction, guards: guards)
        }
        return result
    }

    func accessRule(_ node: ConfigNode) -> AccessRule? {
        guard let f = node.fields(allowed: ["allow", "deny"]) else { return nil }
        let present = ["allow", "deny"].filter { f[$0] != nil }
        guard present.count == 1, let action = AccessRule.Action(rawValue: present[0]), let body = f[present[0]] else {
            node.error("a rule is exactly one of allow or deny")
            return nil
        }
        if case .scalar = body.node {
            guard let text = body.string() else { return nil }
            switch AccessRule.parse(action, text) {
            case .success(let rule): return rule
            case .failure(let error):
                body.error(error.problem)
                return nil
            }
        }
        guard let c = body.fields(allowed: ["domains", "addresses", "ports", "methods", "sources", "users", "namespaces", "pod_labels"]) else { return nil }
        var match = AccessMatch()
        var ok = true
        for d in c["domains"]?.items("domains") ?? [] {
            guard let text = d.string() else { continue }
            if let m = DomainMatcher.parse(text) { match.domains.append(m) } else { d.error("\"\(text)\" is not a domain (example.com, .example.com, *.example.com, ~regex)"); ok = false }
        }
        for (key, target) in [("addresses", \AccessMatch.addresses), ("sources", \AccessMatch.sources)] {
            for a in c[key]?.items(key) ?? [] {
                guard let text = a.string() else { continue }
                if let r = IPRange(parsing: text) { match[keyPath: target].append(r) } else { a.error("\"\(text)\" is not an address or CIDR"); ok = false }
            }
        }
        for p in c["ports"]?.items("ports") ?? [] {
            guard let text = p.string() else { continue }
            if let ranges = AccessRule.parsePorts(Substring(text)) { match.ports += ranges } else { p.error("ports are 1-65535, as 443 or \"8000-8999\""); ok = false }
        }
        match.methods = (c["methods"]?.items("methods") ?? []).compactMap { $0.string()?.uppercased() }
        match.users = (c["users"]?.items("users") ?? []).compactMap { $0.string() }
        match.namespaces = (c["namespaces"]?.items("namespaces") ?? []).compactMap { $0.string() }
        if let labels = c["pod_labels"] {
            if case .mapping(let mapping) = labels.node {
                for (key, value) in mapping {
                    if let k = key.scalar?.string, let v = labels.child(k, value).string() { match.podLabels[k] = v }
                }
            } else {
                labels.error("expected a mapping of label to value, e.g. {app: web}")
                ok = false
            }
        }
        guard ok else { return nil }
        return AccessRule(action: action, match: match, text: "\(action.rawValue) \(AccessRule.describe(match))")
    }

    /// A listener's `forward_proxy:`.
    func forwardProxy(_ node: ConfigNode, policies: [String: AccessPolicy]) -> ForwardProxySettings? {
        guard let f = node.fields(allowed: ["policy", "hosts_file", "users_file", "upstream_proxies", "connect_timeout", "watch_pods"]) else { return nil }
        guard let policyNode = f.required("policy", "the name of a policy under policies:"), let name = policyNode.string() else { return nil }
        guard let policy = policies[name] else {
            let known = policies.keys.sorted()
            policyNode.error("no policy named \"\(name)\"" + (known.isEmpty ? "; define it under policies:" : "; known: \(known.joined(separator: ", "))"))
            return nil
        }
        var settings = ForwardProxySettings(policy: policy)
        if let h = f["hosts_file"], let path = h.string() {
            if let text = FileReading.readText(relativeToConfig(path)) {
                let (hosts, problems) = ForwardProxySettings.parseHosts(text)
                for (line, message) in problems { h.error("\(path):\(line): \(message)") }
                settings.hosts = hosts
            } else {
                h.error("cannot read \(path)")
            }
        }
        if let u = f["users_file"], let path = u.string() {
            if let text = FileReading.readText(relativeToConfig(path)) {
                let (users, problems) = ProxyUsers.parse(text)
                for (line, message) in problems { u.error("\(path):\(line): \(message)") }
                if users.users.isEmpty && problems.isEmpty { u.error("\(path) has no users") }
                settings.users = users
            } else {
                u.error("cannot read \(path)")
            }
        }
        for p in f["upstream_proxies"]?.items("upstream proxies") ?? [] {
            guard let text = p.string() else { continue }
            switch UpstreamProxyRule.parse(text) {
            case .success(let rule): settings.upstreamProxies.append(rule)
            case .failure(let error): p.error(error.problem)
            }
        }
        if let t = f["connect_timeout"]?.duration() { settings.connectTimeout = t }
        if let b = f["watch_pods"]?.bool() { settings.watchPods = b }
        return settings
    }

    /// A path from the configuration, relative to the configuration file's folder unless absolute.
    func relativeToConfig(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let slash = context.file.lastIndex(of: "/") else { return path }
        return String(context.file[...slash]) + path
    }
}

extension AccessRule {
    /// A mapping-form rule as one line for logs.
    static func describe(_ m: AccessMatch) -> String {
        var parts: [String] = []
        if !m.domains.isEmpty { parts.append(m.domains.map(\.description).joined(separator: ",")) }
        if !m.addresses.isEmpty { parts.append(m.addresses.map(\.description).joined(separator: ",")) }
        if parts.isEmpty { parts.append("*") }
        if !m.ports.isEmpty { parts[parts.count - 1] += ":" + m.ports.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",") }
        if !m.methods.isEmpty { parts.append("methods " + m.methods.joined(separator: ",")) }
        if !m.sources.isEmpty { parts.append("from " + m.sources.map(\.description).joined(separator: ",")) }
        if !m.users.isEmpty { parts.append("for " + m.users.joined(separator: ",")) }
        if !m.namespaces.isEmpty { parts.append("namespaces " + m.namespaces.joined(separator: ",")) }
        if !m.podLabels.isEmpty { parts.append("pods " + m.podLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")) }
        return parts.joined(separator: " ")
    }
}
