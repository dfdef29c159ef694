import ArgumentParser
import FerryKubernetes
import Foundation

struct InjectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inject",
        abstract: "Add Ferry to workload manifests: the capture init container and Ferry as a native sidecar (prints the result).",
        discussion: """
        Reads Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs (other objects pass
        through) and writes them back with an init container running `ferry rules capture` and Ferry as a native
        sidecar (restartPolicy: Always: up before the app, down after it; a Job still completes). Injecting twice
        changes nothing. Annotations on the workload or its Pod template: ferry.dev/inject: "false",
        ferry.dev/mode, ferry.dev/app-port, ferry.dev/allow, ferry.dev/deny, ferry.dev/default,
        ferry.dev/exclude-outbound-ports, ferry.dev/exclude-outbound-cidrs, ferry.dev/include-outbound-ports,
        ferry.dev/config-map (an Envoy bootstrap, envoy.yaml, run instead of the rules).
        """
    )

    @Option(name: .customShort("f"), help: "A manifest file, or - for standard input.")
    var file: String

    @Option(help: "sidecar (inbound and outbound) or egress-only; a workload's ferry.dev/mode wins.")
    var mode: String = "sidecar"

    @Option(help: "The Ferry image.")
    var image: String = "ferry"

    @Option(help: "The capture init container's image (it needs iptables); default: --image.")
    var captureImage: String?

    @Option(help: "The UID Ferry runs as, exempt from capture.")
    var proxyUID: Int = 1337

    func run() throws {
        guard let mode = SidecarInjector.Mode(rawValue: mode) else { throw ValidationError("--mode is sidecar or egress-only, not \"\(self.mode)\"") }
        let text: String
        if file == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            text = String(decoding: data, as: UTF8.self)
        }
        var options = SidecarInjector.Options()
        options.mode = mode
        options.image = image
        options.captureImage = captureImage
        options.proxyUID = proxyUID
        do {
            let result = try SidecarInjector.inject(yaml: text, source: file == "-" ? "standard input" : file, options: options)
            print(result.yaml, terminator: "")
            for note in result.notes { printError("ferry inject: \(note)") }
        } catch {
            printError("ferry inject: \(error)")
            throw ExitCode(1)
        }
    }
}
