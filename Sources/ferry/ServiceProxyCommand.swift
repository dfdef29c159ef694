import ArgumentParser
import FerryDataplane
import FerryModel
import FerryRoles
import Logging
import ServiceLifecycle
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

    @Option(help: "iptables (kube-proxy's iptables layout, applied with iptables-restore).")
    var mode: String = "iptables"

    @Flag(help: "Print the rules that would be applied, then exit.")
    var dryRun = false

    @Flag(help: "Remove every rule and chain the iptables mode installs, then exit.")
    var cleanup = false

    @Option(help: "The Pod CIDR: traffic from outside it to a ClusterIP is masqueraded.")
    var clusterCidr: String?

    @Option(help: "This node's IP address.")
    var nodeIp: String?

    @Option(help: "Comma-separated node IPs NodePorts answer on (default: every local address).")
    var nodeportAddresses: String?

    @Flag(help: "SNAT all traffic sent via Service cluster IPs.")
    var masqueradeAll = false

    @Option(help: "The fwmark bit (0-31) that marks packets needing SNAT.")
    var masqueradeBit: Int = 14

    @Option(help: "The node name: endpoints on it are local (externalTrafficPolicy/internalTrafficPolicy: Local).")
    var hostnameOverride: String?

    @Option(help: "Seconds between full re-syncs (a change of the manifests syncs sooner).")
    var syncPeriodSeconds: Int = 30

    func validate() throws {
        guard ServiceProxyRole.Mode(rawValue: mode) != nil else {
            throw ValidationError("--mode must be iptables, nftables or userspace, not \"\(mode)\"")
        }
        guard mode == "iptables" else {
            throw ValidationError("--mode \(mode) is not available yet; use --mode iptables (nftables and userspace are being built)")
        }
        if !cleanup && manifests.isEmpty { throw ValidationError("--manifests needs at least one file or folder") }
        guard (0...31).contains(masqueradeBit) else { throw ValidationError("--masquerade-bit must be between 0 and 31") }
        if let clusterCidr, IPRange(parsing: clusterCidr) == nil { throw ValidationError("--cluster-cidr expects a CIDR such as 10.244.0.0/16, not \"\(clusterCidr)\"") }
        if let nodeIp, IPAddress(parsing: nodeIp) == nil { throw ValidationError("--node-ip expects an IP address, not \"\(nodeIp)\"") }
        for text in (nodeportAddresses ?? "").split(separator: ",") where IPAddress(parsing: String(text)) == nil {
            throw ValidationError("--nodeport-addresses expects IP addresses, not \"\(text)\"")
        }
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
        var options = IPTablesOptions(nodeName: hostnameOverride ?? ProcessInfo.processInfo.hostName, nodeIP: nodeIp.flatMap(IPAddress.init(parsing:)), clusterCIDR: clusterCidr.flatMap(IPRange.init(parsing:)))
        options.masqueradeAll = masqueradeAll
        options.masqueradeBit = masqueradeBit
        options.nodePortAddresses = (nodeportAddresses ?? "").split(separator: ",").compactMap { IPAddress(parsing: String($0)) }
        var settings = ServiceProxyRole.Settings(manifests: manifests, options: options)
        settings.syncPeriod = Duration.seconds(syncPeriodSeconds)
        if dryRun {
            do {
                print(try ServiceProxyRole.dryRun(settings), terminator: "")
            } catch {
                printError("\(error)\nferry service-proxy: the manifests were refused; fix the problems above")
                throw ExitCode(1)
            }
            return
        }
        var logger = Logger(label: "ferry")
        logger.logLevel = .info
        let syncer = ServiceProxySyncer(settings: settings, logger: logger)
        logger.info("ferry started", metadata: ["mode": "\(mode)", "node": "\(options.nodeName)"])
        let group = ServiceGroup(configuration: .init(services: [.init(service: syncer)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
