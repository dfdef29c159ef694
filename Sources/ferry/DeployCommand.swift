import ArgumentParser
import FerryRoles

/// `ferry deploy render`: the Kubernetes manifests of a role, from the binary.
struct DeployCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Print the Kubernetes manifests that deploy a role (the same as deploy/ in the repository).",
        subcommands: [DeployRenderCommand.self]
    )
}

struct DeployRenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Print a role's manifests: ferry deploy render ingress | kubectl apply -f -",
        discussion: "Roles: ingress, service-proxy, egress, api-proxy. Profiles: production (default), single-node (ingress, egress), lockdown (egress: the NetworkPolicy for a workload namespace)."
    )

    @Argument(help: "ingress, service-proxy, egress or api-proxy.")
    var role: String

    @Option(help: "production (default), single-node, or lockdown (egress).")
    var profile: String?

    @Option(help: "The namespace of every namespaced object (and of the Namespace created).")
    var namespace: String?

    @Option(help: "The ferry image, e.g. registry.example/ferry:0.1.0.")
    var image: String?

    @Option(help: "Replicas of the Deployment (ingress, egress, api-proxy).")
    var replicas: Int?

    @Option(name: .customLong("lock-namespace"), help: "egress: a namespace whose Pods may leave only through the proxy (and reach cluster DNS): its NetworkPolicy is rendered too (repeatable).")
    var lockNamespaces: [String] = []

    @Flag(help: "egress: the proxy watches Pods, so rules may select the client's namespace and labels (its ServiceAccount, a ClusterRole to read Pods, --api-server in its NetworkPolicy).")
    var watchPods = false

    @Option(name: .customLong("api-server"), help: "With --watch-pods: where the proxy reaches the Kubernetes API, CIDR[:PORT] (port 443 by default; repeatable).")
    var apiServers: [String] = []

    @Option(name: .customLong("set"), help: "FLAG=VALUE: add or replace --FLAG=VALUE in ferry's arguments (repeatable), e.g. --set mode=nftables.")
    var set: [String] = []

    func validate() throws {
        if let replicas, replicas < 1 { throw ValidationError("--replicas must be at least 1") }
        if let image, image.hasSuffix(":latest") || !image.split(separator: "/").last!.contains(":") {
            throw ValidationError("--image must name a version (REPOSITORY:TAG, not latest): \"\(image)\"")
        }
    }

    func run() throws {
        var options = DeployRenderer.Options(role: role)
        options.profile = profile
        options.namespace = namespace
        options.image = image
        options.replicas = replicas
        options.set = set
        options.lockNamespaces = lockNamespaces
        if watchPods { options.watchPodsAPIServer = apiServers } else if !apiServers.isEmpty { throw ValidationError("--api-server goes with --watch-pods") }
        options.checkArguments = { args in
            do { _ = try Ferry.parseAsRoot(args) } catch { throw DeployRenderer.Failure(description: Ferry.message(for: error)) }
        }
        do {
            print(try DeployRenderer.render(options), terminator: "")
        } catch {
            printError("ferry deploy render: \(error)")
            throw ExitCode(1)
        }
    }
}
