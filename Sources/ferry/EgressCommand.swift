import ArgumentParser
import FerryKubernetesClient
import FerryModel
import FerryRoles
import Logging
import ServiceLifecycle

struct EgressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "egress",
        abstract: "Run the forward proxy (HTTP_PROXY/HTTPS_PROXY) with an allowlist; or --explain a URL's verdict.",
        discussion: """
        Rules are tried in the order given; the first that matches decides, else --default.
        RULE: DOMAIN[:PORTS] (example.com exact, .example.com with subdomains, *.example.com below it, ~regex),
        ADDRESS-or-CIDR[:PORTS] (IPv6 in brackets with ports), or *[:PORTS]; PORTS: 443, 8000-8999, 80,443.
        Squid's guards (Safe_ports, CONNECT to 443 only, no localhost/link-local/metadata) stop an allow
        unless the allowing rule names that port or address; --no-squid-guards turns them off.
        """
    )

    @Option(help: "Where the proxy listens.")
    var listen: String = EgressRole.defaultListen.description

    @Option(help: "Where the admin listener listens.")
    var admin: String = AdminSettings().address.description

    @Option(name: .customLong("allow"), help: "Allow RULE (repeatable; order with --deny matters).")
    var allows: [String] = []

    @Option(name: .customLong("deny"), help: "Deny RULE (repeatable; order with --allow matters).")
    var denies: [String] = []

    @Option(name: .customLong("default"), help: "What happens when no rule matches: allow or deny.")
    var defaultAction: String = "deny"

    @Flag(help: "Do not apply Squid's default guards.")
    var noSquidGuards = false

    @Option(help: "A hosts file (/etc/hosts format) consulted before DNS.")
    var hostsFile: String?

    @Option(name: .customLong("upstream-proxy"), help: "[DOMAINS=]http://HOST:PORT or [DOMAINS=]none: a parent proxy, reached with CONNECT (repeatable; first match wins; DOMAINS comma-separated).")
    var upstreamProxies: [String] = []

    @Option(help: "Users allowed to use the proxy (NAME:$pbkdf2-sha256$ROUNDS$SALT$HASH per line); then every request needs Proxy-Authorization: Basic.")
    var usersFile: String?

    @Flag(help: "Read a password on standard input and print its users-file hash, then exit.")
    var hashPassword = false

    @Option(name: .customLong("intercept"), help: "[HOST:]PORT: also take connections the kernel redirects here (iptables REDIRECT/DNAT, nftables redirect, TPROXY), decided by the same rules on Host, TLS server name or address (repeatable; HOST defaults to 0.0.0.0). ferry rules capture writes the kernel rules.")
    var intercepts: [String] = []

    @Option(help: "How intercepted connections arrive: redirect (REDIRECT/DNAT, read with SO_ORIGINAL_DST) or tproxy.")
    var interceptMode: String = "redirect"

    @Flag(help: "Watch the cluster's Pods (list + watch) to know which Pod each client address is: rules may then select `namespaces NS,...` and `pods KEY=VALUE,...`, and the audit line names the Pod. Uses --kubeconfig/--context or the Pod's service account.")
    var watchPods = false

    @OptionGroup var credentials: ClusterCredentialOptions

    @Option(help: "Print the verdict for this URL and exit, without listening.")
    var explain: String?

    @Option(help: "With --explain: the client address.")
    var source: String?

    @Option(help: "With --explain: the client Pod's namespace (for rules with namespaces).")
    var sourceNamespace: String?

    @Option(help: "With --explain: the client Pod's labels, KEY=VALUE,... (for rules with pods).")
    var sourceLabels: String?

    @Option(help: "With --explain: the authenticated user.")
    var user: String?

    @Option(help: "With --explain: the method for http:// URLs (default GET).")
    var method: String?

    @OptionGroup var serving: ServingOptions

    /// `--allow` and `--deny` in the order they appear on the command line (the parser keeps one list per option).
    func orderedRules() -> [(AccessRule.Action, String)] {
        Self.ordered(CommandLine.arguments, fallback: allows.map { (.allow, $0) } + denies.map { (.deny, $0) })
    }

    /// `--allow` and `--deny` of `arguments` in their order; `fallback` when they do not account for every
    /// parsed rule (the command line is not ours: tests calling run()).
    static func ordered(_ arguments: [String], fallback: [(AccessRule.Action, String)]) -> [(AccessRule.Action, String)] {
        var rules: [(AccessRule.Action, String)] = []
        var args = arguments.dropFirst()[...]
        while let arg = args.first {
            args = args.dropFirst()
            for (flag, action) in [("--allow", AccessRule.Action.allow), ("--deny", .deny)] {
                if arg == flag, let value = args.first {
                    rules.append((action, value))
                    args = args.dropFirst()
                } else if arg.hasPrefix(flag + "=") {
                    rules.append((action, String(arg.dropFirst(flag.count + 1))))
                }
            }
        }
        return rules.count == fallback.count ? rules : fallback
    }

    func run() async throws {
        if hashPassword {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw ValidationError("--hash-password reads the password from standard input") }
            print(try EgressRole.hashPassword(line))
            return
        }
        guard let action = AccessRule.Action(rawValue: defaultAction) else { throw ValidationError("--default is allow or deny") }
        let policy: AccessPolicy
        let hosts: [String: [IPAddress]]
        do {
            policy = try EgressRole.policy(rules: orderedRules(), defaultAction: action, squidGuards: !noSquidGuards)
            hosts = try EgressRole.hosts(file: hostsFile)
        } catch {
            printError("\(error)\nferry egress: fix the rules above")
            throw ExitCode(1)
        }
        if let url = explain {
            var identity: SourceIdentity?
            if sourceNamespace != nil || sourceLabels != nil {
                var labels: [String: String] = [:]
                for pair in (sourceLabels ?? "").split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--source-labels expects KEY=VALUE,..., not \"\(pair)\"") }
                    labels[String(parts[0])] = String(parts[1])
                }
                identity = SourceIdentity(namespace: sourceNamespace ?? "default", pod: "", labels: labels)
            }
            print(EgressRole.explain(url: url, method: method, source: source, user: user, policy: policy, hosts: hosts, sourceIdentity: identity), terminator: "")
            return
        }
        guard let listenAddress = HostPort(parsing: listen) else { throw ValidationError("--listen expects host:port") }
        guard let adminAddress = HostPort(parsing: admin) else { throw ValidationError("--admin expects host:port") }
        do {
            var parents: [UpstreamProxyRule] = []
            for text in upstreamProxies {
                switch UpstreamProxyRule.parse(text) {
                case .success(let rule): parents.append(rule)
                case .failure(let error): throw ValidationError("--upstream-proxy \(error)")
                }
            }
            var settings = EgressRole.Settings(listen: listenAddress, admin: adminAddress, policy: policy, hostsFile: hostsFile, upstreamProxies: parents, usersFile: usersFile)
            guard let mode = InterceptSettings.Mode(rawValue: interceptMode) else { throw ValidationError("--intercept-mode is redirect or tproxy") }
            settings.intercept.mode = mode
            for text in intercepts {
                let withHost = text.contains(":") ? text : "0.0.0.0:\(text)"
                guard let address = HostPort(parsing: withHost), address.port > 0 else { throw ValidationError("--intercept expects PORT or HOST:PORT, got \"\(text)\"") }
                settings.intercepts.append(address)
            }
            var services: [any Service] = []
            if watchPods {
                let watch = try await KubernetesWatchService.start(kubeconfig: credentials.kubeconfig, context: credentials.context, resources: [.pods], logger: Logger(label: "ferry"))
                settings.sourceIdentities = PodDirectory(caches: watch.caches)
                services.append(watch)
            } else if credentials.given {
                throw ValidationError("--kubeconfig and --context are for --watch-pods")
            }
            let config = try EgressRole.snapshot(settings)
            try await ProxyRunner.run(config: config, options: serving.runnerOptions, watch: nil, extraServices: services)
        } catch let error as ExitCode {
            throw error
        } catch let error as ValidationError {
            throw error
        } catch {
            printError("ferry egress: \(error)")
            throw ExitCode(1)
        }
    }
}
