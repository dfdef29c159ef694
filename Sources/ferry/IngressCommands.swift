import ArgumentParser
import Logging
import FerryKubernetes
import FerryModel
import FerryRoles

/// Flags shared by `ferry ingress` and `ferry explain`: where the manifests are and which Ingresses are Ferry's.
struct IngressSelectionOptions: ParsableArguments {
    @Option(name: .customLong("manifests"), parsing: .upToNextOption, help: "Manifest files or folders (read recursively: *.yaml, *.yml, *.json).")
    var manifests: [String] = []

    @Option(help: "The IngressClass Ferry serves.")
    var ingressClass: String = "ferry"

    @Flag(help: "Also serve Ingresses that name no class.")
    var watchIngressWithoutClass = false

    @Option(help: "NAMESPACE/SERVICE:PORT answering requests no Ingress rule matches (default: Ferry's 404).")
    var defaultBackend: String?

    func validate() throws {
        if let d = defaultBackend, DefaultBackendReference(parsing: d) == nil {
            throw ValidationError("--default-backend expects NAMESPACE/SERVICE:PORT (port by number or name), not \"\(d)\"")
        }
    }

    var options: IngressOptions {
        IngressOptions(ingressClass: ingressClass, watchIngressWithoutClass: watchIngressWithoutClass, defaultBackend: defaultBackend.flatMap(DefaultBackendReference.init(parsing:)))
    }
}

struct IngressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingress",
        abstract: "Run the Ingress controller on Kubernetes manifests; editing, adding or removing files re-routes live."
    )

    @OptionGroup var selection: IngressSelectionOptions

    @Option(help: "Where the HTTP listener listens.")
    var listen: String = IngressRole.defaultListen.description

    @Option(help: "Where the admin listener (/ready /healthz /metrics /config_dump /clusters) listens.")
    var admin: String = IngressRole.defaultAdmin.description

    @Option(help: "Without --manifests: the kubeconfig to reach the API server with (default: KUBECONFIG, ~/.kube/config, or the Pod's service account).")
    var kubeconfig: String?

    @Option(help: "Without --manifests: the kubeconfig context to use.")
    var context: String?

    @Option(help: "Without --manifests: watch Ingresses, Services, EndpointSlices and Secrets in this namespace only (default: all).")
    var namespace: String?

    @OptionGroup var serving: ServingOptions

    func validate() throws {
        if !selection.manifests.isEmpty && (kubeconfig != nil || context != nil || namespace != nil) {
            throw ValidationError("--manifests reads files; --kubeconfig, --context and --namespace are for the API server: give one or the other")
        }
    }

    func run() async throws {
        guard let listenAddress = HostPort(parsing: listen) else { throw ValidationError("--listen expects host:port") }
        guard let adminAddress = HostPort(parsing: admin) else { throw ValidationError("--admin expects host:port") }
        let settings = IngressRole.Settings(manifests: selection.manifests, listen: listenAddress, admin: adminAddress, options: selection.options)
        if !selection.manifests.isEmpty {
            try await serveWatched(ManifestSource(settings: settings), options: serving.runnerOptions, command: "ferry ingress", refused: "the manifests were refused")
            return
        }
        // From the API server: the credentials as `ferry api-proxy` resolves them; every collection listed
        // before serving, then watched.
        let watch: KubernetesWatchService
        do {
            watch = try await KubernetesWatchService.start(kubeconfig: kubeconfig, context: context, resources: IngressAPISource.resources(namespace: namespace), logger: Logger(label: "ferry"))
        } catch {
            printError("\(error)\nferry ingress: cannot read the cluster; fix the problem above")
            throw ExitCode(1)
        }
        let source = IngressAPISource(settings: settings, caches: watch.caches, server: watch.server)
        try await serveWatched(source, options: serving.runnerOptions, command: "ferry ingress", refused: "the cluster's Ingresses were refused", extraServices: [watch])
    }
}

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain which Ingress, rule and path serve a request, and why; or why none does."
    )

    @OptionGroup var selection: IngressSelectionOptions

    @Option(name: [.customShort("H"), .customLong("header")], help: "A request header, NAME:VALUE (repeatable; Host overrides the URL's host).")
    var headers: [String] = []

    @Option(name: [.customShort("X"), .customLong("method")], help: "The request method.")
    var method: String = "GET"

    @Option(help: "The client's address, to check source allowlists.")
    var source: String?

    @Argument(help: "The request URL, e.g. http://shop.example.com/cart?x=1 (may follow the manifest paths).")
    var url: String?

    func run() throws {
        // `--manifests A B URL`: the list option takes every word up to the next option, URL included.
        var selection = self.selection
        var url = self.url
        if url == nil, let last = selection.manifests.last, last.contains("://") {
            url = last
            selection.manifests.removeLast()
        }
        guard let url else { throw ValidationError("give the request URL, e.g. ferry explain --manifests k8s/ http://shop.example.com/cart") }
        guard !selection.manifests.isEmpty else { throw ValidationError("--manifests needs at least one file or folder") }
        var parsed: [(String, String)] = []
        for h in headers {
            guard let colon = h.firstIndex(of: ":"), colon != h.startIndex else { throw ValidationError("--header expects NAME:VALUE, not \"\(h)\"") }
            parsed.append((String(h[..<colon]), String(h[h.index(after: colon)...].drop { $0 == " " })))
        }
        guard let request = IngressExplainer.Request(url: url, method: method, headers: parsed, clientAddress: source) else {
            throw ValidationError("expected an http:// URL with a host, not \"\(url)\"")
        }
        do {
            print(try IngressRole.explain(paths: selection.manifests, options: selection.options, request: request), terminator: "")
        } catch {
            printError("\(error)\nferry explain: the manifests were refused; fix the problems above")
            throw ExitCode(1)
        }
    }
}
