import FerryModel
import FerryProxy
import Foundation

/// `ferry egress`: a forward proxy (HTTP_PROXY / HTTPS_PROXY) whose access policy is given by flags.
public enum EgressRole {
    public static let defaultListen = HostPort(host: "0.0.0.0", port: 3128)

    public struct Settings: Sendable {
        public var listen: HostPort
        public var admin: HostPort
        public var policy: AccessPolicy
        public var hostsFile: String?
        public var upstreamProxies: [UpstreamProxyRule]
        public var usersFile: String?
        /// Listeners for kernel-redirected connections (`--intercept`), decided by the same policy.
        public var intercepts: [HostPort] = []
        public var intercept = InterceptSettings()
        /// The Pods behind client addresses (`--watch-pods`), for rules with `namespaces`/`pods` and the audit line.
        public var sourceIdentities: (any SourceIdentityLookup)?

        public init(listen: HostPort = EgressRole.defaultListen, admin: HostPort = AdminSettings().address, policy: AccessPolicy, hostsFile: String? = nil, upstreamProxies: [UpstreamProxyRule] = [], usersFile: String? = nil) {
            self.usersFile = usersFile
            self.listen = listen
            self.admin = admin
            self.policy = policy
            self.hostsFile = hostsFile
            self.upstreamProxies = upstreamProxies
        }
    }

    public struct SettingsError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The policy from `--allow`/`--deny` words in the order given. Throws with every bad rule named.
    public static func policy(rules: [(AccessRule.Action, String)], defaultAction: AccessRule.Action, squidGuards: Bool) throws -> AccessPolicy {
        var parsed: [AccessRule] = []
        var problems: [String] = []
        for (action, text) in rules {
            switch AccessRule.parse(action, text) {
            case .success(let rule): parsed.append(rule)
            case .failure(let error): problems.append("--\(action.rawValue) \(error)")
            }
        }
        if !problems.isEmpty { throw SettingsError(description: problems.joined(separator: "\n")) }
        return AccessPolicy(name: "egress", rules: parsed, defaultAction: defaultAction, guards: squidGuards ? AccessGuard.squidDefaults : [])
    }

    /// Reads an `/etc/hosts`-format file. Throws with each bad line named.
    public static func hosts(file: String?) throws -> [String: [IPAddress]] {
        guard let file else { return [:] }
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw SettingsError(description: "\(file): cannot read the hosts file")
        }
        let (hosts, problems) = ForwardProxySettings.parseHosts(text)
        if !problems.isEmpty {
            throw SettingsError(description: problems.map { "\(file):\($0.0): \($0.1)" }.joined(separator: "\n"))
        }
        return hosts
    }

    /// A users-file hash for `password` (PBKDF2-HMAC-SHA256, random salt).
    public static func hashPassword(_ password: String) throws -> String {
        try PasswordHashing.hashLine(password: password)
    }

    /// Reads a users file (see `ProxyUsers`). Throws with each bad line named.
    public static func users(file: String?) throws -> ProxyUsers? {
        guard let file else { return nil }
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw SettingsError(description: "\(file): cannot read the users file")
        }
        let (users, problems) = ProxyUsers.parse(text)
        if !problems.isEmpty {
            throw SettingsError(description: problems.map { "\(file):\($0.0): \($0.1)" }.joined(separator: "\n"))
        }
        if users.users.isEmpty { throw SettingsError(description: "\(file): no users; add NAME:HASH lines (ferry egress --hash-password makes a hash)") }
        return users
    }

    public static func snapshot(_ settings: Settings) throws -> ConfigSnapshot {
        var forward = ForwardProxySettings(policy: settings.policy, hosts: try hosts(file: settings.hostsFile), upstreamProxies: settings.upstreamProxies, users: try users(file: settings.usersFile))
        forward.sourceIdentities = settings.sourceIdentities
        let listener = Listener(name: "egress", address: settings.listen, http: HTTPConnectionManager(virtualHosts: [], forwardProxy: forward))
        // Intercepted connections: the same policy, users (never asked of an intercepted client, which does
        // not know it talks to a proxy — Squid turns authentication off on intercept ports too) and hosts.
        var interceptForward = forward
        interceptForward.users = nil
        let intercepts = settings.intercepts.map { address in
            var l = Listener(name: "intercept-\(address.port)", address: address, http: HTTPConnectionManager(virtualHosts: [], forwardProxy: interceptForward))
            l.intercept = settings.intercept
            return l
        }
        var config = ConfigSnapshot(source: "ferry egress flags", admin: AdminSettings(address: settings.admin), listeners: [listener] + intercepts, clusters: [])
        config.accessLog.format = .json
        return config
    }

    /// `ferry egress --explain URL`: the verdict for a request, without a listener.
    public static func explain(url: String, method: String?, source: String?, user: String?, policy: AccessPolicy, hosts: [String: [IPAddress]],
                               sourceIdentity: SourceIdentity? = nil) -> String {
        let isHTTPS = url.lowercased().hasPrefix("https://")
        var target: ForwardTarget
        let requestMethod: String
        if isHTTPS {
            // A client reaches an https:// URL through CONNECT host:443.
            let rest = url.dropFirst(8)
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            let withPort = authority.contains(":") && !authority.hasSuffix("]") ? String(authority) : "\(authority):443"
            guard case .success(let t) = ForwardTarget.parse(method: "CONNECT", target: withPort) else { return "cannot read \(url) as a URL\n" }
            target = t
            requestMethod = "CONNECT"
        } else {
            let text = url.contains("://") ? url : "http://" + url
            switch ForwardTarget.parse(method: method ?? "GET", target: text) {
            case .success(let t): target = t
            case .failure(let e): return "cannot read \(url): \(e)\n"
            }
            requestMethod = method ?? "GET"
        }
        var request = AccessRequest(host: target.host, port: target.port, method: requestMethod, source: source.flatMap { IPAddress(parsing: $0) }, user: user)
        request.sourceIdentity = sourceIdentity
        var lines = ["request: \(requestMethod) \(ForwardTarget.authorityDescription(target))" + (isHTTPS ? " (https:// goes through CONNECT)" : "")]
        if let identity = sourceIdentity {
            let labels = identity.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            lines.append("from a Pod in namespace \(identity.namespace)" + (labels.isEmpty ? "" : " with labels \(labels)"))
        } else if policy.rules.contains(where: { !$0.match.namespaces.isEmpty || !$0.match.podLabels.isEmpty }) {
            lines.append("from an address no Pod holds: rules that select namespaces or Pod labels do not apply (give --source-namespace to check a Pod)")
        }
        var verdict = policy.evaluate(request)
        if policy.dependsOnAddress(request) {
            lines.append("before DNS: a rule needs the destination address, so the name is resolved first")
        } else {
            lines.append("before DNS: \(verdict)")
        }
        if verdict.allowed || policy.dependsOnAddress(request), case .name(let name) = target.host {
            if let address = hosts[name]?.first {
                request.resolved = address
                verdict = policy.evaluate(request)
                lines.append("\(name) → \(address) (hosts file): \(verdict)")
            } else {
                lines.append("\(name) is resolved by DNS when the request arrives; the address is checked again then")
            }
        }
        lines.append("verdict: \(verdict.allowed ? "ALLOW" : "DENY") — \(verdict.reason)")
        return lines.joined(separator: "\n") + "\n"
    }
}

extension ForwardTarget {
    static func authorityDescription(_ target: ForwardTarget) -> String {
        switch target {
        case .connect(let host, let port): "\(host):\(port)"
        case .absolute(_, _, let authority, let path): "http://\(authority)\(path)"
        }
    }
}
