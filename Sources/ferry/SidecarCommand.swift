import ArgumentParser
import FerryModel
import FerryProxy
import FerryRoles

struct SidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sidecar",
        abstract: "Run beside one application: inbound in front of its port, outbound for its captured connections, /ready gated on the app.",
        discussion: """
        Inbound: --inbound (default 0.0.0.0:15006) proxies to 127.0.0.1:--app-port, from --inbound-allow-source ranges
        only when given. Outbound: --outbound (default 0.0.0.0:15001) takes the connections `ferry rules capture`
        redirects, decided by --allow/--deny as ferry egress decides them (Host, TLS server name, address).
        --envoy-config FILE runs an Envoy static bootstrap instead (the subset ferry validate accepts); the file is
        the sidecar's whole configuration, as Envoy's is, and is reloaded on edit; --admin, when given, replaces
        the file's admin address.
        Run it as the UID the capture rules exempt (1337 by default).
        """
    )

    @Option(help: "The application's port on 127.0.0.1 (inbound target; /ready waits for it).")
    var appPort: Int?

    @Option(help: "Where inbound traffic is accepted (none: no inbound listener).")
    var inbound: String = SidecarRole.defaultInbound.description

    @Option(help: "Where captured outbound connections arrive (none: no outbound listener).")
    var outbound: String = SidecarRole.defaultOutbound.description

    @Option(help: "Where the admin listener listens (/ready, /metrics).")
    var admin: String = SidecarRole.defaultAdmin.description

    @Option(name: .customLong("inbound-allow-source"), help: "Inbound clients allowed (CIDR, repeatable; default: all).")
    var inboundSources: [String] = []

    @Option(name: .customLong("allow"), help: "Outbound: allow RULE (as ferry egress; repeatable, ordered with --deny).")
    var allows: [String] = []

    @Option(name: .customLong("deny"), help: "Outbound: deny RULE (repeatable).")
    var denies: [String] = []

    @Option(name: .customLong("default"), help: "Outbound, when no rule matches: allow or deny.")
    var defaultAction: String = "deny"

    @Option(help: "Outbound: a hosts file (/etc/hosts format) consulted before DNS.")
    var hostsFile: String?

    @Option(help: "An Envoy static bootstrap to run instead of the flags above (--app-port still gates /ready).")
    var envoyConfig: String?

    @OptionGroup var serving: ServingOptions

    func address(_ text: String, _ flag: String) throws -> HostPort? {
        if text == "none" { return nil }
        guard let address = HostPort(parsing: text) else { throw ValidationError("\(flag) expects host:port or none, not \"\(text)\"") }
        return address
    }

    func run() async throws {
        let probe = appPort.map(SidecarRole.AppProbe.init)
        let services = probe.map { [$0] } ?? []
        let onStart: @Sendable (ProxyServer) -> Void = { server in probe?.gate(server) }
        if let envoyConfig {
            guard allows.isEmpty, denies.isEmpty, inboundSources.isEmpty else {
                throw ValidationError("--envoy-config is the whole configuration: --allow, --deny and --inbound-allow-source go into the file instead")
            }
            // An explicit --admin wins over the file's (the Pod's probes name it).
            var source: any ConfigSource = ConfigFileSource(path: envoyConfig)
            if CommandLine.arguments.contains(where: { $0 == "--admin" || $0.hasPrefix("--admin=") }), let adminAddress = try address(admin, "--admin") {
                source = AdjustedSource(source) { $0.admin = AdminSettings(address: adminAddress) }
            }
            try await serveWatched(source, options: serving.runnerOptions, command: "ferry sidecar",
                                   refused: "the Envoy configuration was refused", extraServices: services, onStart: onStart)
            return
        }
        guard let action = AccessRule.Action(rawValue: defaultAction) else { throw ValidationError("--default is allow or deny") }
        var rules: [(AccessRule.Action, String)] = allows.map { (.allow, $0) } + denies.map { (.deny, $0) }
        if !allows.isEmpty && !denies.isEmpty {
            // In command-line order, as ferry egress reads them.
            rules = EgressCommand.ordered(CommandLine.arguments, fallback: rules)
        }
        var settings: SidecarRole.Settings
        do {
            settings = SidecarRole.Settings(appPort: appPort, policy: try EgressRole.policy(rules: rules, defaultAction: action, squidGuards: true))
            settings.hosts = try EgressRole.hosts(file: hostsFile)
        } catch {
            printError("\(error)\nferry sidecar: fix the rules above")
            throw ExitCode(1)
        }
        settings.inbound = try address(inbound, "--inbound")
        settings.outbound = try address(outbound, "--outbound")
        guard let adminAddress = try address(admin, "--admin") else { throw ValidationError("--admin expects host:port") }
        settings.admin = adminAddress
        if settings.inbound != nil, appPort == nil { throw ValidationError("an inbound listener needs --app-port (or --inbound none)") }
        settings.inboundSources = try inboundSources.map { text in
            guard let range = IPRange(parsing: text) else { throw ValidationError("--inbound-allow-source expects a CIDR, not \"\(text)\"") }
            return range
        }
        do {
            try await ProxyRunner.run(config: SidecarRole.snapshot(settings), options: serving.runnerOptions, watch: nil, extraServices: services, onStart: onStart)
        } catch {
            printError("ferry sidecar: \(error)")
            throw ExitCode(1)
        }
    }
}
