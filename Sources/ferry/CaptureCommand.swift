import ArgumentParser
import FerryDataplane
import FerryModel
import FerryRoles

struct RulesCaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Write the kernel rules that send outbound TCP to ferry egress --intercept (or print them with --dry-run, or remove them with --cleanup).",
        discussion: """
        --scope pod (an init container's rules): every TCP connection of the network namespace goes to the
        proxy port, except the proxy's own (--proxy-uid, Istio's 1337 scheme), loopback, and what is excluded.
        --scope node: connections of the node's Pods (PREROUTING) and processes (OUTPUT) go to the proxy,
        except to the cluster, Service and node CIDRs, which Kubernetes' own routing needs.
        """
    )

    @Option(help: "iptables or nftables.")
    var mode: String = "iptables"

    @OptionGroup var flags: CaptureFlags

    @Option(name: .customLong("cluster-cidr"), help: "Node scope: the Pod network (repeatable), never captured.")
    var clusterCIDRs: [String] = []

    @Option(help: "Trace a new TCP connection to DST:PORT through these rules instead of applying them (no privileges needed).")
    var explain: String?

    @Option(help: "With --explain: local (a process of the Pod or node: nat OUTPUT) or arriving (nat PREROUTING).")
    var origin: String = "local"

    @Option(help: "With --explain: the process's UID and GID.")
    var uid: Int = 0

    @Flag(help: "Print the rules instead of applying them.")
    var dryRun = false

    @Flag(help: "Remove the rules Ferry added.")
    var cleanup = false

    func run() throws {
        guard let mode = CaptureRole.Mode(rawValue: mode) else { throw ValidationError("--mode is iptables or nftables, not \"\(self.mode)\"") }
        do {
            if cleanup {
                if dryRun {
                    print("would remove: " + (mode == .nftables ? "table inet \(CaptureRules.table)" : "the jumps to and the chains \(CaptureRules.everyChain.joined(separator: ", ")) (nat)"))
                    return
                }
                try CaptureRole.cleanup(mode: mode)
                return
            }
            let options = try flags.options(clusterCIDRs: clusterCIDRs)
            if let target = explain {
                guard let hostPort = HostPort(parsing: target), let destination = IPAddress(parsing: hostPort.host) else {
                    throw ValidationError("--explain expects ADDRESS:PORT ([IPv6]:PORT), not \"\(target)\"")
                }
                guard let start = CaptureTracer.Origin(rawValue: origin) else { throw ValidationError("--origin is local or arriving") }
                let connection = CaptureTracer.Connection(destination: destination, destinationPort: hostPort.port, origin: start, uid: uid, gid: uid)
                print(CaptureTracer.describe(CaptureTracer.trace(connection, options: options), connection), terminator: "")
                return
            }
            if dryRun {
                print(CaptureRole.render(options, mode: mode), terminator: "")
                return
            }
            try CaptureRole.apply(options, mode: mode)
        } catch let error as ValidationError {
            throw error
        } catch {
            printError("ferry rules capture: \(error)")
            throw ExitCode(1)
        }
    }
}

/// What the capture rules are made of: shared by `ferry rules capture` and `ferry rules explain --capture`.
struct CaptureFlags: ParsableArguments {
    @Option(help: "pod or node.")
    var scope: String = "pod"

    @Option(help: "The intercept port of ferry egress.")
    var proxyPort: Int = 15001

    @Option(help: "The UID ferry runs as: its own connections are never captured.")
    var proxyUID: Int = 1337

    @Option(help: "The GID ferry runs as (also never captured); none to leave GIDs alone.")
    var proxyGID: String = "1337"

    @Option(help: "Node scope: DNAT to this address of the node (a hostNetwork ferry) instead of REDIRECT; the original destination is read from this node's conntrack, so it must be the node's own.")
    var proxyAddress: String?

    @Option(name: .customLong("include-port"), help: "Capture only these destination ports (repeatable; default: all).")
    var includePorts: [Int] = []

    @Option(name: .customLong("exclude-port"), help: "Never capture these destination ports (repeatable).")
    var excludePorts: [Int] = []

    @Option(name: .customLong("exclude-cidr"), help: "Never capture these destinations (repeatable).")
    var excludeCIDRs: [String] = []

    @Option(name: .customLong("inbound-port"), help: "Pod scope: connections arriving for this port (the app's) go to the sidecar's inbound listener (repeatable).")
    var inboundPorts: [Int] = []

    @Option(help: "Pod scope: the sidecar's inbound port (ferry sidecar --inbound).")
    var inboundProxyPort: Int = 15006


    @Option(name: .customLong("service-cidr"), help: "Node scope: the Service network (repeatable), never captured.")
    var serviceCIDRs: [String] = []

    @Option(name: .customLong("node-cidr"), help: "Node scope: the nodes' addresses (repeatable), never captured.")
    var nodeCIDRs: [String] = []

    /// `clusterCIDRs`: node scope's Pod network (`--cluster-cidr`, which `ferry rules capture` declares itself:
    /// `ferry rules explain` has its own, shared with the Services' rules).
    func options(clusterCIDRs: [String]) throws -> CaptureOptions {
        var options = CaptureOptions()
        guard let scope = CaptureOptions.Scope(rawValue: scope) else { throw ValidationError("--scope is pod or node, not \"\(self.scope)\"") }
        options.scope = scope
        guard (1...65535).contains(proxyPort) else { throw ValidationError("--proxy-port must be between 1 and 65535") }
        options.proxyPort = proxyPort
        options.proxyUID = proxyUID
        if proxyGID == "none" {
            options.proxyGID = nil
        } else if let gid = Int(proxyGID) {
            options.proxyGID = gid
        } else {
            throw ValidationError("--proxy-gid is a number or none, not \"\(proxyGID)\"")
        }
        if let text = proxyAddress {
            guard scope == .node else { throw ValidationError("--proxy-address is for --scope node: in a Pod the proxy is its own sidecar") }
            guard let address = IPAddress(parsing: text) else { throw ValidationError("--proxy-address expects an IP address, not \"\(text)\"") }
            options.proxyAddress = address
        }
        for port in includePorts + excludePorts where !(1...65535).contains(port) {
            throw ValidationError("ports are between 1 and 65535, not \(port)")
        }
        options.includePorts = includePorts
        if !inboundPorts.isEmpty {
            guard scope == .pod else { throw ValidationError("--inbound-port is for --scope pod (a sidecar's inbound listener)") }
            for port in inboundPorts + [inboundProxyPort] where !(1...65535).contains(port) { throw ValidationError("ports are between 1 and 65535, not \(port)") }
            options.inboundPorts = inboundPorts
            options.inboundProxyPort = inboundProxyPort
        }
        options.excludePorts = excludePorts
        func ranges(_ texts: [String], _ flag: String) throws -> [IPRange] {
            try texts.map { text in
                guard let range = IPRange(parsing: text) else { throw ValidationError("\(flag) expects a CIDR such as 10.96.0.0/12, not \"\(text)\"") }
                return range
            }
        }
        options.excludeCIDRs = try ranges(excludeCIDRs, "--exclude-cidr")
        options.clusterCIDRs = try ranges(clusterCIDRs, "--cluster-cidr")
        options.serviceCIDRs = try ranges(serviceCIDRs, "--service-cidr")
        options.nodeCIDRs = try ranges(nodeCIDRs, "--node-cidr")
        if scope == .pod, !(clusterCIDRs + serviceCIDRs + nodeCIDRs).isEmpty {
            throw ValidationError("--cluster-cidr, --service-cidr and --node-cidr are for --scope node; in a Pod use --exclude-cidr")
        }
        if scope == .node, (clusterCIDRs + serviceCIDRs).isEmpty {
            throw ValidationError("--scope node needs --cluster-cidr and --service-cidr: capturing the cluster's own traffic would break it")
        }
        return options
    }

}
