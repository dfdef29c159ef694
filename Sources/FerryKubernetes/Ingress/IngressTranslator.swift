import FerryModel

/// Translates Ingress, Service and EndpointSlice objects into Ferry routes and clusters, with the
/// semantics of the Ingress specification (networking.k8s.io/v1) and the ingress-nginx annotations of
/// `NginxAnnotations`. Pure: the same input gives the same output, with no I/O.
///
/// - Hosts: a rule's host is an exact name or `*.` plus one label; rules without a host serve every
///   host no other rule names. Host is decided before path.
/// - Paths of one host, from every Ingress that names it, are merged and ordered longest first (a
///   `Prefix` path counts without its trailing slashes); on equal length `Exact` comes before `Prefix`.
///   `ImplementationSpecific` is `Prefix`.
/// - The same host, path and pathType in two Ingresses: the older Ingress (`creationTimestamp`, then
///   namespace/name) serves it and the other is reported.
/// - No path matches: the `defaultBackend` of the oldest Ingress naming the host, else the
///   controller's default backend, else Ferry's 404.
public enum IngressTranslator {
    public static func translate(_ set: ManifestSet, options: IngressOptions) -> IngressTranslation {
        var state = TranslationState(set: set, options: options)
        state.run()
        return state.result
    }
}

/// One path of one Ingress, before ordering.
struct PathEntry {
    var ingress: Ingress
    var annotations: NginxAnnotations
    var rule: Int
    var pathIndex: Int
    var host: String
    var path: HTTPIngressPath
    var canary: (ingress: Ingress, settings: NginxAnnotations.Canary, backend: IngressBackend)?

    /// The length that orders paths: `Prefix` paths without their trailing slashes.
    var matchLength: Int {
        if path.pathType == .exact { return path.path.utf8.count }
        var p = Substring(path.path)
        while p.hasSuffix("/") { p = p.dropLast() }
        return p.utf8.count
    }
}

struct TranslationState {
    let set: ManifestSet
    let options: IngressOptions
    var result = IngressTranslation()
    private var noted: Set<String> = []
    private var clusterNames: [ClusterKey: String] = [:]
    private var services: [String: Service] = [:]
    /// EndpointSlices by `namespace/service`, so resolving a backend does not scan every slice.
    private var slicesByService: [String: [EndpointSlice]] = [:]
    /// The Ingress whose backends are being resolved, for Events about them.
    var subject: String?

    init(set: ManifestSet, options: IngressOptions) {
        self.set = set
        self.options = options
        for s in set.services where services[s.metadata.key] == nil { services[s.metadata.key] = s }
        for slice in set.endpointSlices where slice.addressType != "FQDN" {
            guard let name = slice.serviceName else { continue }
            slicesByService["\(slice.metadata.namespace)/\(name)", default: []].append(slice)
        }
    }

    /// Records a problem once. `key` identifies it when the text varies by where it was found (a missing
    /// Service is reported once however many paths use it).
    /// With a `reason`, the problem is also an Event on the Ingress it is about: `about`, else the Ingress
    /// whose backends are being resolved (`subject`).
    mutating func note(_ text: String, key: String? = nil, reason: String? = nil, about: String? = nil) {
        guard noted.insert(key ?? text).inserted else { return }
        result.notes.append(text)
        if let reason, let ingress = about ?? subject { result.events.append(IngressEvent(ingress: ingress, reason: reason, message: text)) }
    }

    mutating func run() {
        let selected = selectIngresses()
        var annotations: [String: NginxAnnotations] = [:]
        for ingress in selected {
            let a = NginxAnnotations(annotations: ingress.metadata.annotations)
            for (key, reason) in a.ignored { note("Ingress \(ingress.metadata.key): annotation \(key) ignored: \(reason)", reason: "AnnotationIgnored", about: ingress.metadata.key) }
            annotations[ingress.metadata.key] = a
        }
        let main = selected.filter { annotations[$0.metadata.key]?.canary == nil }
        let canaries = selected.filter { annotations[$0.metadata.key]?.canary != nil }

        // Paths by host, first-come (oldest) first; "" is the rules without a host.
        var hosts: [String] = []
        var entries: [String: [PathEntry]] = [:]
        for ingress in main {
            let a = annotations[ingress.metadata.key]!
            for (r, rule) in ingress.rules.enumerated() {
                let host = rule.host ?? ""
                if entries[host] == nil { hosts.append(host); entries[host] = [] }
                for (p, path) in rule.paths.enumerated() {
                    if let winner = entries[host]!.first(where: { $0.path.path == path.path && $0.path.pathType == path.pathType }) {
                        note("Ingress \(ingress.metadata.key): host \(host.isEmpty ? "(any)" : host) path \(path.path) (\(path.pathType.rawValue)) is also defined by Ingress \(winner.ingress.metadata.key), which is older and serves it", reason: "Conflict", about: ingress.metadata.key)
                        continue
                    }
                    entries[host]!.append(PathEntry(ingress: ingress, annotations: a, rule: r, pathIndex: p, host: host, path: path))
                }
            }
        }
        for ingress in canaries { attachCanary(ingress, annotations[ingress.metadata.key]!.canary!, to: &entries) }

        // Default backends: per host, from the oldest Ingress naming it; "" from Ingresses without host rules.
        var hostDefaults: [String: Ingress] = [:]
        for ingress in main {
            guard ingress.defaultBackend != nil else { continue }
            var defined = Set(ingress.rules.map { $0.host ?? "" })
            if ingress.rules.isEmpty { defined.insert("") }
            for host in defined.sorted() {
                if let winner = hostDefaults[host] {
                    note("Ingress \(ingress.metadata.key): defaultBackend for host \(host.isEmpty ? "(any)" : host) not used; Ingress \(winner.metadata.key) is older and its defaultBackend serves it", reason: "Conflict", about: ingress.metadata.key)
                } else {
                    hostDefaults[host] = ingress
                }
            }
        }
        if hostDefaults[""] != nil || options.defaultBackend != nil, entries[""] == nil {
            hosts.append("")
            entries[""] = []
        }
        // Named hosts first, then the catch-all (the order only matters for reading /config_dump).
        for host in hosts.filter({ !$0.isEmpty }) + hosts.filter(\.isEmpty) {
            result.virtualHosts.append(virtualHost(host, entries[host]!, defaultFrom: hostDefaults[host], annotations: annotations))
        }
        translateTLS(main, annotations: annotations)
        translatePassthrough(main, annotations: annotations)
        plainHTTPVirtualHosts(annotations: annotations)
    }

    // MARK: class selection

    /// The Ingresses this controller serves, oldest first; records every decision in `selection`.
    mutating func selectIngresses() -> [Ingress] {
        let defaults = set.ingressClasses.filter(\.isDefault)
        if defaults.count > 1 {
            note("IngressClasses \(defaults.map(\.metadata.name).sorted().joined(separator: ", ")) are all marked default; Ingresses without a class are served only with --watch-ingress-without-class")
        }
        var chosen: [Ingress] = []
        var seen: Set<String> = []
        for ingress in set.ingresses {
            let key = ingress.metadata.key
            if !seen.insert(key).inserted {
                note("Ingress \(key) appears more than once (\(ingress.origin?.description ?? "")); the first one read is used")
                continue
            }
            let (selected, reason) = classDecision(ingress, defaults: defaults)
            result.selection.append(IngressSelection(ingress: key, selected: selected, reason: reason))
            if selected { chosen.append(ingress) }
        }
        return chosen.sorted(by: IngressTranslator.isOlder)
    }

    func classDecision(_ ingress: Ingress, defaults: [IngressClass]) -> (Bool, String) {
        let mine = options.ingressClass
        if let name = ingress.ingressClassName {
            return name == mine ? (true, "spec.ingressClassName is \(name)") : (false, "spec.ingressClassName is \(name), not \(mine)")
        }
        if let legacy = ingress.metadata.annotations["kubernetes.io/ingress.class"] {
            return legacy == mine ? (true, "annotation kubernetes.io/ingress.class is \(legacy)") : (false, "annotation kubernetes.io/ingress.class is \(legacy), not \(mine)")
        }
        if options.watchIngressWithoutClass { return (true, "no class, and --watch-ingress-without-class is set") }
        if defaults.count == 1, defaults[0].metadata.name == mine {
            return (true, "no class, and IngressClass \(mine) is the default class")
        }
        if defaults.count == 1 {
            return (false, "no class, and the default IngressClass is \(defaults[0].metadata.name), not \(mine)")
        }
        return (false, "no class; set spec.ingressClassName: \(mine), mark IngressClass \(mine) default, or use --watch-ingress-without-class")
    }

    // MARK: canary

    mutating func attachCanary(_ ingress: Ingress, _ settings: NginxAnnotations.Canary, to entries: inout [String: [PathEntry]]) {
        for rule in ingress.rules {
            let host = rule.host ?? ""
            for path in rule.paths {
                guard let index = entries[host]?.firstIndex(where: { $0.path.path == path.path }) else {
                    note("canary Ingress \(ingress.metadata.key): no main Ingress serves host \(host.isEmpty ? "(any)" : host) path \(path.path); the canary is not used there", reason: "CanaryNotUsed", about: ingress.metadata.key)
                    continue
                }
                if let existing = entries[host]![index].canary {
                    note("canary Ingress \(ingress.metadata.key): host \(host.isEmpty ? "(any)" : host) path \(path.path) already has canary \(existing.ingress.metadata.key), which is older", reason: "Conflict", about: ingress.metadata.key)
                    continue
                }
                entries[host]![index].canary = (ingress, settings, path.backend)
            }
        }
        if ingress.defaultBackend != nil {
            note("canary Ingress \(ingress.metadata.key): its defaultBackend is not used (canaries apply to paths)", reason: "CanaryNotUsed", about: ingress.metadata.key)
        }
    }

    // MARK: routes

    mutating func virtualHost(_ host: String, _ entries: [PathEntry], defaultFrom: Ingress?, annotations: [String: NginxAnnotations]) -> VirtualHost {
        let regexHost = entries.contains { $0.annotations.needsRegex }
        let ordered = IngressTranslator.order(entries, regexHost: regexHost)
        var routes: [Route] = []
        if let appRoot = entries.first(where: { $0.annotations.appRoot != nil }) {
            let name = "\(appRoot.ingress.metadata.key)#app-root"
            routes.append(Route(name: name, match: RouteMatch(path: .exact("/")), action: .redirect(Redirect(path: appRoot.annotations.appRoot!, status: 302))))
            result.origins[name] = RouteOrigin(kind: .appRoot, ingress: appRoot.ingress.metadata.key, file: appRoot.ingress.origin?.file, host: host, path: "/", pathType: "Exact")
        }
        for entry in ordered { routes += self.routes(for: entry, regexHost: regexHost) }
        let coversAll = ordered.contains { !regexHost && $0.path.pathType != .exact && $0.matchLength == 0 && $0.canary == nil }
        if !coversAll {
            if let ingress = defaultFrom, let backend = ingress.defaultBackend {
                let name = "\(ingress.metadata.key)#default-backend"
                subject = ingress.metadata.key
                let action = forwardAction(backend, namespace: ingress.metadata.namespace, settings: annotations[ingress.metadata.key]?.clusterSettings ?? ClusterSettings(connectTimeout: .seconds(5), loadBalancing: .roundRobin), context: "Ingress \(ingress.metadata.key) defaultBackend")
                routes.append(Route(name: name, match: RouteMatch(path: .prefix("/")), action: action, timeout: .seconds(60)))
                result.origins[name] = RouteOrigin(kind: .ingressDefaultBackend, ingress: ingress.metadata.key, file: ingress.origin?.file, host: host)
            } else if let controllerDefault = options.defaultBackend {
                let name = "controller#default-backend"
                subject = nil
                let action = forwardAction(.service(controllerDefault.service), namespace: controllerDefault.namespace, settings: ClusterSettings(connectTimeout: .seconds(5), loadBalancing: .roundRobin), context: "--default-backend")
                routes.append(Route(name: name, match: RouteMatch(path: .prefix("/")), action: action, timeout: .seconds(60)))
                result.origins[name] = RouteOrigin(kind: .controllerDefaultBackend, host: host)
            }
        }
        let domain: DomainPattern
        if host.isEmpty {
            domain = .any
        } else if case .success(let d) = DomainPattern.parse(host) {
            domain = d
        } else {
            domain = .exact(host)  // validated when decoded
        }
        return VirtualHost(name: host.isEmpty ? "*" : host, domains: [domain], routes: routes)
    }

    /// The route(s) of one Ingress path: one, or with a canary the header and cookie routes before it.
    mutating func routes(for entry: PathEntry, regexHost: Bool) -> [Route] {
        let a = entry.annotations
        let key = entry.ingress.metadata.key
        let baseName = "\(key)#\(entry.rule).\(entry.pathIndex)"
        let pathMatch: PathMatch
        switch IngressTranslator.pathMatch(entry.path, regexHost: regexHost) {
        case .success(let m): pathMatch = m
        case .failure(let message):
            note("Ingress \(key): path \(entry.path.path) is not a valid regular expression (\(message)); the path is not served", reason: "InvalidPath", about: key)
            return []
        }
        var template = Route(name: baseName, match: RouteMatch(path: pathMatch), action: .directResponse(status: 503, body: ""), timeout: a.readTimeout ?? .seconds(60))
        if let target = a.rewriteTarget, let regex = try? CompiledRegex("(?i)" + entry.path.path) {
            template.rewrite = PathRewrite(regex: regex, replacement: target)
        }
        if let allow = a.allowSources { template.allowedSources = allow }
        template.maxRequestBodyBytes = a.bodySize
        template.streamIdleTimeout = [a.readTimeout, a.sendTimeout].compactMap { $0 }.max()
        let origin = RouteOrigin(kind: .path, ingress: key, file: entry.ingress.origin?.file, host: entry.host, rule: entry.rule, pathIndex: entry.pathIndex, path: entry.path.path, pathType: entry.path.pathType.rawValue, canary: entry.canary?.ingress.metadata.key, regexHost: regexHost)
        let context = "Ingress \(key) path \(entry.path.path)"

        if a.allowSources?.isEmpty == true {
            template.action = .directResponse(status: 403, body: "Forbidden: the source-range annotation of Ingress \(key) is invalid\n")
            result.origins[baseName] = origin
            return [template]
        }
        if let url = a.permanentRedirect ?? a.temporalRedirect {
            template.action = .redirect(Redirect(url: url, status: a.permanentRedirect != nil ? a.permanentRedirectCode : 302))
            result.origins[baseName] = origin
            return [template]
        }
        subject = key
        let mainAction = forwardAction(entry.path.backend, namespace: entry.ingress.metadata.namespace, settings: a.clusterSettings, context: context)
        guard let canary = entry.canary else {
            template.action = mainAction
            result.origins[baseName] = origin
            return [template]
        }
        subject = canary.ingress.metadata.key
        let canaryAction = forwardAction(canary.backend, namespace: canary.ingress.metadata.namespace, settings: a.clusterSettings, context: "canary Ingress \(canary.ingress.metadata.key) path \(entry.path.path)")
        var routes: [Route] = []
        func variant(_ suffix: String, _ kind: RouteOrigin.Kind, _ action: RouteAction, headers: [HeaderMatch] = [], cookies: [CookieMatch] = []) {
            var r = template
            r.name = baseName + "~" + suffix
            r.match.headers = headers
            r.match.cookies = cookies
            r.action = action
            routes.append(r)
            var o = origin
            o.kind = kind
            result.origins[r.name] = o
        }
        let s = canary.settings
        // ingress-nginx precedence: header, then cookie, then weight.
        if let header = s.header {
            if let value = s.headerValue {
                variant("canary-header", .canaryMatch, canaryAction, headers: [HeaderMatch(name: header, condition: .exact(value))])
            } else {
                variant("canary-header", .canaryMatch, canaryAction, headers: [HeaderMatch(name: header, condition: .exact("always"))])
                variant("canary-header-never", .canaryNever, mainAction, headers: [HeaderMatch(name: header, condition: .exact("never"))])
            }
        }
        if let cookie = s.cookie {
            variant("canary-cookie", .canaryMatch, canaryAction, cookies: [CookieMatch(name: cookie, value: "always")])
            variant("canary-cookie-never", .canaryNever, mainAction, cookies: [CookieMatch(name: cookie, value: "never")])
        }
        template.action = IngressTranslator.weighted(main: mainAction, canary: canaryAction, weight: s.weight, total: s.weightTotal)
        if s.weight > s.weightTotal {
            note("canary Ingress \(canary.ingress.metadata.key): canary-weight \(s.weight) is above canary-weight-total \(s.weightTotal); all requests go to the canary")
        }
        routes.append(template)
        result.origins[baseName] = origin
        return routes
    }

    // MARK: backends

    /// Forwarding to a backend, or a 503 answer when it cannot be served.
    mutating func forwardAction(_ backend: IngressBackend, namespace: String, settings: ClusterSettings, context: String) -> RouteAction {
        switch backend {
        case .resource(let kind, let name):
            note("\(context): resource backend \(kind)/\(name) is not supported; it answers 503", reason: "UnsupportedBackend")
            return .directResponse(status: 503, body: "Service Unavailable: resource backends are not supported\n")
        case .service(let service):
            return .forward([WeightedCluster(name: cluster(namespace: namespace, service: service, settings: settings, context: context))])
        }
    }

    /// The name of the cluster for a Service port with these settings, created on first use.
    mutating func cluster(namespace: String, service: ServiceBackend, settings: ClusterSettings, context: String) -> String {
        let key = ClusterKey(namespace: namespace, service: service, settings: settings)
        if let name = clusterNames[key] { return name }
        var name = "\(namespace)/\(service.name):\(service.port)"
        if !settings.isDefault {
            var parts: [String] = []
            if settings.loadBalancing != .roundRobin { parts.append(settings.loadBalancing.description) }
            if settings.connectTimeout != .seconds(5) { parts.append("connect \(DurationText(settings.connectTimeout))") }
            if settings.http2 { parts.append(settings.tls ? "grpcs" : "grpc") } else if settings.tls { parts.append("https") }
            name += " [\(parts.joined(separator: ", "))]"
        }
        clusterNames[key] = name
        let (endpoints, report) = resolve(namespace: namespace, service: service, context: context)
        var cluster = Cluster(name: name, endpoints: endpoints, loadBalancing: settings.loadBalancing, connectTimeout: settings.connectTimeout,
                              tls: settings.tls ? UpstreamTLS(insecureSkipVerify: true) : nil)
        if settings.http2 { cluster.httpProtocol = .h2 }
        result.clusters.append(cluster)
        result.backends[name] = report
        return name
    }

    /// The endpoints of a Service port: ready ones, or serving-but-terminating ones when none is ready.
    mutating func resolve(namespace: String, service ref: ServiceBackend, context: String) -> ([HostPort], BackendReport) {
        let key = "\(namespace)/\(ref.name)"
        let label = "Service \(key) port \(ref.port)"
        guard let service = services[key] else {
            note("Service \(key) not found (first used by \(context)); requests for it answer 503", key: "missing \(key)", reason: "ServiceNotFound")
            return ([], BackendReport(service: label, endpoints: [], detail: "Service not found: requests answer 503"))
        }
        if service.type == "ExternalName" {
            note("Service \(key) is of type ExternalName, which Ferry does not serve yet (used by \(context)); requests for it answer 503", key: "external \(key)", reason: "UnsupportedBackend")
            return ([], BackendReport(service: label, endpoints: [], detail: "ExternalName Services are not supported: requests answer 503"))
        }
        let port: ServicePort?
        switch ref.port {
        case .number(let n): port = service.ports.first { $0.port == n }
        case .name(let n): port = service.ports.first { $0.name == n }
        }
        guard let port else {
            note("\(context): Service \(key) has no port \(ref.port) (it has \(service.ports.map { $0.name.map { "\($0)/" } ?? "" }.joined()) \(service.ports.map { String($0.port) }.joined(separator: ", "))); it answers 503", reason: "ServicePortNotFound")
            return ([], BackendReport(service: label, endpoints: [], detail: "no such Service port: requests answer 503"))
        }
        let portName = port.name ?? ""
        let fullLabel = "Service \(key) port \(port.port)" + (portName.isEmpty ? "" : " (\(portName))")
        var ready: [HostPort] = []
        var terminating: [HostPort] = []
        var notReady = 0
        for slice in slicesByService[key] ?? [] {
            guard let slicePort = slice.ports.first(where: { ($0.name ?? "") == portName }), let number = slicePort.port else { continue }
            for endpoint in slice.endpoints {
                let addresses = endpoint.addresses.map { HostPort(host: $0, port: number) }
                if endpoint.isReady && !endpoint.isTerminating {
                    ready += addresses
                } else if endpoint.isServing && endpoint.isTerminating {
                    terminating += addresses
                } else {
                    notReady += addresses.count
                }
            }
        }
        ready = IngressTranslator.unique(ready)
        terminating = IngressTranslator.unique(terminating)
        if !ready.isEmpty {
            let extra = terminating.isEmpty && notReady == 0 ? "" : " (\(terminating.count + notReady) not ready or terminating, not used)"
            return (ready, BackendReport(service: fullLabel, endpoints: ready.map(\.description), detail: "\(ready.count) ready endpoint(s)\(extra)"))
        }
        if !terminating.isEmpty {
            return (terminating, BackendReport(service: fullLabel, endpoints: terminating.map(\.description), detail: "no ready endpoint: using \(terminating.count) terminating endpoint(s) that still serve"))
        }
        note("\(fullLabel) has no ready endpoints (used by \(context)); requests for it answer 503", key: "empty \(fullLabel)")
        return ([], BackendReport(service: fullLabel, endpoints: [], detail: "no ready endpoint: requests answer 503"))
    }
}

struct ClusterKey: Hashable {
    var namespace: String
    var service: ServiceBackend
    var settings: ClusterSettings
}

extension IngressTranslator {
    /// Ingress order: oldest `creationTimestamp` first (objects without one after those with one), then namespace/name.
    static func isOlder(_ a: Ingress, _ b: Ingress) -> Bool {
        let ta = a.metadata.creationTimestamp.flatMap(Timestamp.seconds)
        let tb = b.metadata.creationTimestamp.flatMap(Timestamp.seconds)
        switch (ta, tb) {
        case let (x?, y?) where x != y: return x < y
        case (.some, nil): return true
        case (nil, .some): return false
        default: return a.metadata.key < b.metadata.key
        }
    }

    /// Longest path first; `Exact` before `Prefix` on equal length; older Ingress first after that.
    /// On a regex host, `Exact` paths come first (nginx checks `location =` before regex locations) and the
    /// others follow by the length of their text, as ingress-nginx orders them.
    static func order(_ entries: [PathEntry], regexHost: Bool) -> [PathEntry] {
        let indexed = Array(entries.enumerated())
        return indexed.sorted { l, r in
            let a = l.element, b = r.element
            if regexHost {
                let ea = a.path.pathType == .exact, eb = b.path.pathType == .exact
                if ea != eb { return ea }
                if a.path.path.utf8.count != b.path.path.utf8.count { return a.path.path.utf8.count > b.path.path.utf8.count }
                return l.offset < r.offset
            }
            if a.matchLength != b.matchLength { return a.matchLength > b.matchLength }
            let ea = a.path.pathType == .exact, eb = b.path.pathType == .exact
            if ea != eb { return ea }
            return l.offset < r.offset
        }.map(\.element)
    }

    /// The Ferry path match of an Ingress path: regex (case-insensitive, anchored at the start) on a regex host.
    static func pathMatch(_ path: HTTPIngressPath, regexHost: Bool) -> Result<PathMatch, StringError> {
        switch path.pathType {
        case .exact:
            return .success(.exact(path.path))
        case .prefix, .implementationSpecific:
            guard regexHost else { return .success(.prefix(path.path)) }
            do {
                return .success(.regexPrefix(try CompiledRegex("(?i)" + path.path)))
            } catch {
                return .failure(StringError("\(error)"))
            }
        }
    }

    static func weighted(main: RouteAction, canary: RouteAction, weight: Int, total: Int) -> RouteAction {
        guard weight > 0 else { return main }
        guard weight < total else { return canary }
        guard case .forward(let m) = main, case .forward(let c) = canary, m.count == 1, c.count == 1 else { return main }
        if m[0].name == c[0].name { return main }
        return .forward([WeightedCluster(name: m[0].name, weight: total - weight), WeightedCluster(name: c[0].name, weight: weight)])
    }

    static func unique(_ list: [HostPort]) -> [HostPort] {
        var seen: Set<HostPort> = []
        return list.filter { seen.insert($0).inserted }
    }
}

public struct StringError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
