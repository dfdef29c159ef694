import ArgumentParser
import FerryKubernetesClient
import Logging
import FerryConfig
import FerryModel
import FerryProxy
import FerryRoles
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Options every serving command shares.
struct ServingOptions: ParsableArguments {
    @Option(help: "Event-loop threads (default: the number of cores).")
    var threads: Int = System.coreCount

    @Option(help: "Access-log format: json, envoy, combined, squid or none (overrides the file).")
    var accessLogFormat: AccessLogSettings.Format?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    var runnerOptions: ProxyRunner.Options {
        ProxyRunner.Options(threads: threads, accessLogFormat: accessLogFormat)
    }
}

extension AccessLogSettings.Format: ExpressibleByArgument {}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the proxy from a configuration file; SIGHUP or an edit reloads it, SIGTERM drains."
    )

    @Option(name: [.short, .customLong("config")], help: "The configuration file (YAML).")
    var config: String

    @OptionGroup var serving: ServingOptions

    @OptionGroup var credentials: ClusterCredentialOptions

    func run() async throws {
        let file = ConfigFileSource(path: config)
        // A forward proxy with `watch_pods: true`: the cluster's Pods are watched (kubeconfig, context or the
        // Pod's service account) and every snapshot's such proxies look client addresses up in them.
        guard let first = try? file.load(version: 1), first.listeners.contains(where: { $0.http.forwardProxy?.watchPods == true }) else {
            try await serveWatched(file, options: serving.runnerOptions, command: "ferry", refused: "the configuration was refused")
            return
        }
        let watch: KubernetesWatchService
        do {
            watch = try await KubernetesWatchService.start(kubeconfig: credentials.kubeconfig, context: credentials.context, resources: [.pods], logger: Logger(label: "ferry"))
        } catch {
            printError("\(error)\nferry: watch_pods needs the Kubernetes API (list and watch on pods)")
            throw ExitCode(1)
        }
        let directory = PodDirectory(caches: watch.caches)
        let source = AdjustedSource(file) { snapshot in
            for index in snapshot.listeners.indices where snapshot.listeners[index].http.forwardProxy?.watchPods == true {
                snapshot.listeners[index].http.forwardProxy?.sourceIdentities = directory
            }
        }
        try await serveWatched(source, options: serving.runnerOptions, command: "ferry", refused: "the configuration was refused", extraServices: [watch])
    }
}

/// Loads `source` once (exit 1 with its problems if refused), then serves it until SIGTERM, reloading on
/// edits and SIGHUP.
func serveWatched(_ source: any ConfigSource, options: ProxyRunner.Options, command: String, refused: String,
                  extraServices: [any Service] = [], onStart: @Sendable (ProxyServer) -> Void = { _ in }) async throws {
    let stamp = source.stamp()
    let snapshot: ConfigSnapshot
    do {
        snapshot = try source.load(version: 1)
    } catch {
        printError("\(error)\n\(command): \(refused); fix the problems above")
        throw ExitCode(1)
    }
    do {
        try await ProxyRunner.run(config: snapshot, options: options, watch: .init(source: source, loadedStamp: source.stampAfterLoad(stamp)), extraServices: extraServices, onStart: onStart)
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("\(command): \(error)")
        throw ExitCode(1)
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a configuration file; prints each problem with file, line and field; exit status 1 if any."
    )

    @Option(name: [.short, .customLong("config")], help: "The configuration file (YAML).")
    var config: String

    func run() throws {
        do {
            let snapshot = try ConfigLoader.load(path: config)
            let routes = snapshot.listeners.reduce(0) { $0 + $1.http.virtualHosts.reduce(0) { $0 + $1.routes.count } }
            print("\(config): valid (\(snapshot.listeners.count) listener(s), \(routes) route(s), \(snapshot.clusters.count) cluster(s))")
        } catch let error as ConfigError {
            printError(error.description)
            throw ExitCode(1)
        }
    }
}

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a built-in demo: a proxy on 127.0.0.1:8080 in front of two in-process origins."
    )

    @Option(help: "Where the demo proxy listens.")
    var listen: String = DemoRole.defaultAddress.description

    @Option(help: "Where the admin listener listens.")
    var admin: String = AdminSettings().address.description

    @OptionGroup var serving: ServingOptions

    func run() async throws {
        guard let listenAddress = HostPort(parsing: listen) else { throw ValidationError("--listen expects host:port") }
        guard let adminAddress = HostPort(parsing: admin) else { throw ValidationError("--admin expects host:port") }
        let originGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let config = try DemoRole.startOrigins(group: originGroup, listen: listenAddress, admin: adminAddress)
        do {
            try await ProxyRunner.run(config: config, options: serving.runnerOptions, watch: nil) { _ in
                printError(DemoRole.tryCommands(listen: listenAddress, admin: adminAddress))
            }
        } catch {
            printError("ferry demo: \(error)")
            try? await originGroup.shutdownGracefully()
            throw ExitCode(1)
        }
        try? await originGroup.shutdownGracefully()
    }
}

/// Writes to standard error (standard output carries the access log).
func printError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    line.withCString { pointer in
        _ = write(2, pointer, strlen(pointer))
    }
}
