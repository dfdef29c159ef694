import ArgumentParser
import FerryDataplane
import FerryKubernetes
import FerryKubernetesClient
import FerryModel
import FerryRoles
import Logging
import Foundation

/// `ferry service-proxy`: kube-proxy from Services and EndpointSlices on disk.
struct ServiceProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service-proxy",
        abstract: "Make Services reachable on this node as kube-proxy does: kernel rules in kube-proxy's layout, synced as the manifests change.",
        discussion: "--dry-run prints the whole transaction without privileges; --cleanup removes everything installed."
    )

    @Option(name: .customLong("manifests"), parsing: .upToNextOption, help: "Manifest files or folders with Services and EndpointSlices.")
    var manifests: [String] = []

    @Option(help: "iptables (kube-proxy's iptables layout, applied with iptables-restore), nftables (kube-proxy's nftables table, applied with nft -f) or userspace (Ferry's TCP and UDP proxy per Service port, with redirect rules).")
    var mode: String = "iptables"

    @Flag(help: "Print the rules that would be applied, then exit.")
    var dryRun = false

    @Flag(help: "Remove every rule, chain and table the iptables, nftables and userspace modes install, then exit.")
    var cleanup = false

    @OptionGroup var node: NodeRuleOptions

    @Option(help: "Where /healthz and /livez answer (kube-proxy's port).")
    var healthzBindAddress: String = "0.0.0.0:10256"

    @Option(help: "Where /metrics answers (kube-proxy's port).")
    var metricsBindAddress: String = "127.0.0.1:10249"

    @OptionGroup var credentials: ClusterCredentialOptions

    @Option(help: "Seconds between full re-syncs (a change of the manifests syncs sooner).")
    var syncPeriodSeconds: Int = 30

    func validate() throws {
        guard ServiceProxyRole.Mode(rawValue: mode) != nil else {
            throw ValidationError("--mode must be iptables, nftables or userspace, not \"\(mode)\"")
        }
        if !manifests.isEmpty && credentials.given {
            throw ValidationError("--manifests reads files; --kubeconfig and --context are for the API server: give one or the other")
        }
        guard HostPort(parsing: healthzBindAddress) != nil else { throw ValidationError("--healthz-bind-address expects host:port") }
        guard HostPort(parsing: metricsBindAddress) != nil else { throw ValidationError("--metrics-bind-address expects host:port") }
        guard syncPeriodSeconds >= 1 else { throw ValidationError("--sync-period-seconds must be at least 1") }
    }

    func run() async throws {
        if cleanup {
            do {
                try ServiceProxyRole.cleanup()
            } catch {
                printError("ferry service-proxy --cleanup: \(error)")
                throw ExitCode(1)
            }
            return
        }
        let mode = ServiceProxyRole.Mode(rawValue: self.mode)!
        var logger = Logger(label: "ferry")
        logger.logLevel = .info
        // Without manifests: Services, EndpointSlices, ServiceCIDRs and this node's Node from the API server,
        // listed now and then watched (credentials as `ferry api-proxy` resolves them).
        var watch: KubernetesWatchService?
        var nodeObject: ClusterNode?
        if manifests.isEmpty {
            let nodeName = node.nodeName
            do {
                watch = try await KubernetesWatchService.start(kubeconfig: credentials.kubeconfig, context: credentials.context,
                                                               resources: ServiceProxyRole.watchedResources + [.node(nodeName)], logger: logger)
            } catch {
                printError("\(error)\nferry service-proxy: cannot read the cluster; fix the problem above, or give --manifests")
                throw ExitCode(1)
            }
            nodeObject = watch?.caches.manifestSet.nodes.first { $0.metadata.name == nodeName }
            if nodeObject == nil { logger.warning("Node \(nodeName) not found; give --hostname-override with this node's name, or --node-ip") }
        }
        var settings = ServiceProxyRole.Settings(manifests: manifests, options: try node.options(mode: mode, nodeObject: nodeObject))
        settings.mode = mode
        settings.syncPeriod = Duration.seconds(syncPeriodSeconds)
        settings.caches = watch?.caches
        if dryRun {
            await watch?.shutdownWithoutWatching()
            do {
                print(try ServiceProxyRole.dryRun(settings), terminator: "")
            } catch {
                printError("\(error)\nferry service-proxy: the manifests were refused; fix the problems above")
                throw ExitCode(1)
            }
            return
        }
        do {
            try await ServiceProxyRunner.run(settings, watch: watch, healthz: HostPort(parsing: healthzBindAddress)!, metrics: HostPort(parsing: metricsBindAddress)!, logger: logger)
        } catch let error as ServiceProxyRunner.Failure {
            printError("ferry service-proxy: \(error)")
            throw ExitCode(1)
        }
    }
}

/// kube-proxy's options that change the rules, shared by `ferry service-proxy` and `ferry rules`.
struct NodeRuleOptions: ParsableArguments {
    @Option(help: "The Pod CIDR (comma-separated, one per IP family on a dual-stack node): traffic from outside it to a ClusterIP is masqueraded.")
    var clusterCidr: String?

    @Option(help: "This node's IP address (comma-separated, one per IP family on a dual-stack node).")
    var nodeIp: String?

    @Option(help: "Comma-separated CIDRs of node addresses NodePorts answer on, or primary (the --node-ip addresses). Default: every local address in iptables mode, primary in nftables mode.")
    var nodeportAddresses: String?

    @Flag(help: "SNAT all traffic sent via Service cluster IPs.")
    var masqueradeAll = false

    @Option(help: "The fwmark bit (0-31) that marks packets needing SNAT.")
    var masqueradeBit: Int = 14

    @Option(help: "The node name: endpoints on it are local (externalTrafficPolicy/internalTrafficPolicy: Local).")
    var hostnameOverride: String?

    @Option(help: "Comma-separated Service CIDRs (kube-apiserver's --service-cluster-ip-range): in nftables mode, traffic to an address in them that no Service holds is dropped.")
    var serviceClusterIpRange: String?

    @Option(help: "Accept NodePort connections on 127.0.0.0/8 (sets net.ipv4.conf.all.route_localnet=1, as kube-proxy does; false refuses them).")
    var iptablesLocalhostNodeports: Bool = true

    func validate() throws {
        guard (0...31).contains(masqueradeBit) else { throw ValidationError("--masquerade-bit must be between 0 and 31") }
        for text in Self.items(clusterCidr) where IPRange(parsing: text) == nil {
            throw ValidationError("--cluster-cidr expects CIDRs such as 10.244.0.0/16 or fd00:10:244::/56, not \"\(text)\"")
        }
        for text in Self.items(nodeIp) where IPAddress(parsing: text) == nil {
            throw ValidationError("--node-ip expects IP addresses, not \"\(text)\"")
        }
        for text in Self.items(serviceClusterIpRange) where IPRange(parsing: text) == nil {
            throw ValidationError("--service-cluster-ip-range expects CIDRs such as 10.96.0.0/12, not \"\(text)\"")
        }
        if case .failure(let error) = NodePortAddresses.parse(Self.items(nodeportAddresses)) {
            throw ValidationError(error.description)
        }
    }

    /// The items of a comma-separated option.
    static func items(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map(String.init)
    }

    /// `--hostname-override`, else the host name (kube-proxy's node name).
    var nodeName: String { hostnameOverride ?? ProcessInfo.processInfo.hostName }

    /// The options for `mode`; throws when `--nodeport-addresses` cannot be resolved on this node. Without
    /// `--node-ip`, the node's IPs come from its Node object when one was read (kube-proxy's rule).
    func options(mode: ServiceProxyRole.Mode, nodeObject: ClusterNode? = nil) throws -> ServiceRuleOptions {
        var options = ServiceRuleOptions(nodeName: nodeName)
        options.nodeIPs = Self.items(nodeIp).compactMap { IPAddress(parsing: $0) }
        if options.nodeIPs.isEmpty, let nodeObject { options.nodeIPs = nodeObject.nodeIPs }
        options.clusterCIDRs = Self.items(clusterCidr).compactMap { IPRange(parsing: $0) }
        options.masqueradeAll = masqueradeAll
        options.masqueradeBit = masqueradeBit
        options.serviceCIDRs = Self.items(serviceClusterIpRange).compactMap { IPRange(parsing: $0) }
        var spec = try NodePortAddresses.parse(Self.items(nodeportAddresses)).get()
        if spec == nil && mode == .nftables {
            // kube-proxy 1.31+: primary by default in nftables mode; without the node's IPs every local address.
            if options.nodeIPs.isEmpty {
                printError("note: in nftables mode --nodeport-addresses defaults to primary (the --node-ip addresses); without --node-ip NodePorts answer on every local address")
            } else {
                spec = .primary
            }
        }
        do {
            options.nodePortAddresses = try NodePortAddresses.resolve(spec, local: LocalAddresses.all(), nodeIPs: options.nodeIPs).get()
        } catch {
            throw ValidationError("\(error)")
        }
        // As kube-proxy: when --nodeport-addresses leaves out loopback, localhost NodePorts are off.
        let loopbackListed = options.nodePortAddresses.isEmpty || options.nodePortAddresses.contains { if case .v4(let b) = $0 { return b >> 24 == 127 } else { return false } }
        options.localhostNodePorts = iptablesLocalhostNodeports && loopbackListed
        return options
    }
}

/// `ferry rules explain` and `ferry rules diff`: the rules without applying them.
struct RulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Explain where a packet goes through the rules the manifests make, or show what the next sync would change.",
        subcommands: [RulesExplainCommand.self, RulesDiffCommand.self, RulesCaptureCommand.self]
    )
}

struct RulesExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Follow a packet through the rules rendered from the manifests: the chains it passes and each endpoint it may reach (no privileges needed). With --capture: a new TCP connection through the capture rules of ferry rules capture."
    )

    @OptionGroup var rules: RuleSourceOptions

    @Flag(help: "Trace a new TCP connection to --dst:--dport through the capture rules (the options of ferry rules capture; node scope's Pod network is --cluster-cidr) instead of the Services' rules.")
    var capture = false

    @OptionGroup var captureFlags: CaptureFlags

    @Option(help: "With --capture: local (a process of the Pod or node: nat OUTPUT) or arriving (nat PREROUTING).")
    var origin: String = "local"

    @Option(help: "With --capture: the process's UID and GID.")
    var uid: Int = 0

    @Option(help: "The packet's source address (not with --capture).")
    var src: String = ""

    @Option(help: "The packet's destination address.")
    var dst: String

    @Option(help: "The packet's destination port.")
    var dport: Int

    @Option(help: "tcp, udp or sctp.")
    var proto: String = "tcp"

    func validate() throws {
        if capture {
            guard IPAddress(parsing: dst) != nil else { throw ValidationError("--dst expects an IP address, not \"\(dst)\"") }
            guard (1...65535).contains(dport) else { throw ValidationError("--dport must be between 1 and 65535") }
            guard CaptureTracer.Origin(rawValue: origin) != nil else { throw ValidationError("--origin is local or arriving") }
            return
        }
        guard IPAddress(parsing: src) != nil else { throw ValidationError("--src expects an IP address, not \"\(src)\"") }
        guard IPAddress(parsing: dst) != nil else { throw ValidationError("--dst expects an IP address, not \"\(dst)\"") }
        guard (1...65535).contains(dport) else { throw ValidationError("--dport must be between 1 and 65535") }
        guard TransportProtocol(rawValue: proto.lowercased()) != nil else { throw ValidationError("--proto must be tcp, udp or sctp") }
    }

    func run() async throws {
        if capture {
            let clusterCIDRs = (rules.node.clusterCidr ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let connection = CaptureTracer.Connection(destination: IPAddress(parsing: dst)!, destinationPort: dport, origin: CaptureTracer.Origin(rawValue: origin)!, uid: uid, gid: uid)
            print(CaptureTracer.describe(CaptureTracer.trace(connection, options: try captureFlags.options(clusterCIDRs: clusterCIDRs)), connection), terminator: "")
            return
        }
        let packet = RuleTrace.Packet(source: IPAddress(parsing: src)!, destination: IPAddress(parsing: dst)!, destinationPort: dport, protocol: TransportProtocol(rawValue: proto.lowercased())!)
        let settings = try await rules.settings(command: "ferry rules explain")
        do {
            print(try ServiceProxyRole.explain(settings, packet: packet), terminator: "")
        } catch {
            printError("\(error)\nferry rules explain: the manifests were refused; fix the problems above")
            throw ExitCode(1)
        }
    }
}

struct RulesDiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what the next sync would change in the kernel's rules: chains, rules and map elements added (+) and removed (-). Reads iptables-save or nft (root)."
    )

    @OptionGroup var rules: RuleSourceOptions

    func run() async throws {
        let settings = try await rules.settings(command: "ferry rules diff")
        do {
            print(try ServiceProxyRole.diff(settings), terminator: "")
        } catch {
            printError("ferry rules diff: \(error)")
            throw ExitCode(1)
        }
    }
}

/// What `ferry rules` commands render: the manifests (or the live cluster's objects), the mode and the node's options.
struct RuleSourceOptions: ParsableArguments {
    @Option(name: .customLong("manifests"), parsing: .upToNextOption, help: "Manifest files or folders with Services and EndpointSlices (without them: the cluster's, read once).")
    var manifests: [String] = []

    @OptionGroup var cluster: LiveClusterOptions

    @Option(help: "iptables or nftables: whose layout to render.")
    var mode: String = "iptables"

    @OptionGroup var node: NodeRuleOptions

    func validate() throws {
        guard mode == "iptables" || mode == "nftables" else { throw ValidationError("--mode must be iptables or nftables, not \"\(mode)\" (the userspace mode has only redirect rules)") }
        if !manifests.isEmpty && cluster.given {
            throw ValidationError("--manifests reads files; --kubeconfig, --context and --namespace read the cluster: give one or the other")
        }
    }

    func settings(command: String) async throws -> ServiceProxyRole.Settings {
        let mode = ServiceProxyRole.Mode(rawValue: mode) ?? .iptables
        var settings = ServiceProxyRole.Settings(manifests: manifests, options: try node.options(mode: mode))
        settings.mode = mode
        if manifests.isEmpty {
            // The cluster's Services, EndpointSlices and ServiceCIDRs, narrowed as the service proxy narrows them.
            settings.objects = try await cluster.list(ServiceProxyRole.resources(namespaces: cluster.namespace), command: command)
        }
        return settings
    }
}
