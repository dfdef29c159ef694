import ArgumentParser
import Logging
import FerryKubernetes
import FerryModel
import FerryKubernetesClient
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

    @Option(help: "NAMESPACE/NAME of the kubernetes.io/tls Secret served to names no Ingress has a certificate for (default: a self-signed certificate made at start).")
    var defaultSSLCertificate: String?

    @Option(help: "Redirect plain HTTP to HTTPS for hosts with a certificate (an Ingress's ssl-redirect annotation overrides it).")
    var sslRedirect: Bool = true

    @Option(help: "The status of the HTTPS redirect: 301, 302, 307 or 308.")
    var httpRedirectCode: Int = 308

    @Option(help: "Send Strict-Transport-Security on HTTPS responses of hosts with a certificate.")
    var hsts: Bool = true

    @Option(help: "Strict-Transport-Security max-age, in seconds.")
    var hstsMaxAge: Int = 31_536_000

    @Option(help: "Strict-Transport-Security includeSubDomains.")
    var hstsIncludeSubdomains: Bool = true

    @Option(help: "Strict-Transport-Security preload.")
    var hstsPreload: Bool = false

    @Flag(help: "Honour the ssl-passthrough annotation: TLS for those hosts goes untouched to their backend, chosen by SNI.")
    var enableSSLPassthrough = false

    func validate() throws {
        if let d = defaultBackend, DefaultBackendReference(parsing: d) == nil {
            throw ValidationError("--default-backend expects NAMESPACE/SERVICE:PORT (port by number or name), not \"\(d)\"")
        }
        if let s = defaultSSLCertificate, SecretReference(parsing: s) == nil {
            throw ValidationError("--default-ssl-certificate expects NAMESPACE/NAME of a kubernetes.io/tls Secret, not \"\(s)\"")
        }
        if ![301, 302, 307, 308].contains(httpRedirectCode) {
            throw ValidationError("--http-redirect-code must be 301, 302, 307 or 308, not \(httpRedirectCode)")
        }
        if hstsMaxAge < 0 { throw ValidationError("--hsts-max-age must be 0 or more seconds") }
    }

    var options: IngressOptions {
        var options = IngressOptions(ingressClass: ingressClass, watchIngressWithoutClass: watchIngressWithoutClass, defaultBackend: defaultBackend.flatMap(DefaultBackendReference.init(parsing:)))
        options.defaultSSLCertificate = defaultSSLCertificate.flatMap(SecretReference.init(parsing:))
        options.sslRedirect = sslRedirect
        options.httpRedirectCode = httpRedirectCode
        options.hsts = hsts ? IngressOptions.HSTS(maxAge: hstsMaxAge, includeSubdomains: hstsIncludeSubdomains, preload: hstsPreload) : nil
        options.enableSSLPassthrough = enableSSLPassthrough
        return options
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

    @Option(help: "Where the HTTPS listener listens (certificates from the Ingresses' spec.tls Secrets, chosen by SNI); \"none\" for no HTTPS listener.")
    var listenTLS: String = IngressRole.defaultListenTLS.description

    @Option(help: "Where the admin listener (/ready /healthz /metrics /config_dump /clusters) listens.")
    var admin: String = IngressRole.defaultAdmin.description

    @OptionGroup var credentials: ClusterCredentialOptions

    @Option(help: "Without --manifests: watch Ingresses, Services, EndpointSlices and Secrets in this namespace only (repeatable; default: all).")
    var namespace: [String] = []

    @Option(help: "Without --manifests: NAMESPACE/NAME of the Service in front of Ferry; its addresses are written into the status of the Ingresses Ferry serves.")
    var publishService: String?

    @Option(help: "Without --manifests: the addresses (IPs or hostnames, comma-separated) to write into Ingress status instead of a Service's.")
    var publishStatusAddress: String?

    @Option(help: "Without --manifests: write Ingress status (and run the leader election that decides which replica writes it).")
    var updateStatus: Bool = true

    @Option(help: "Clear the Ingress status written on graceful shutdown (when it is a single address).")
    var updateStatusOnShutdown: Bool = true

    @Option(help: "How often the leader checks every Ingress's status besides on each change.")
    var statusUpdateInterval: String = "60s"

    @Option(help: "The name of the Lease the replicas elect a status writer with.")
    var electionID: String = "ferry-ingress-leader"

    @Option(help: "The namespace of the Lease (default: POD_NAMESPACE, the service account's namespace, else default).")
    var electionNamespace: String?

    @Option(help: "Leader election: how long a Lease is valid without renewal.")
    var leaderElectLeaseDuration: String = "15s"

    @Option(help: "Leader election: a leader that cannot renew within this stops leading.")
    var leaderElectRenewDeadline: String = "10s"

    @Option(help: "Leader election: how often each replica tries to acquire or renew.")
    var leaderElectRetryPeriod: String = "2s"

    @OptionGroup var serving: ServingOptions

    func validate() throws {
        let apiOnly = credentials.given || !namespace.isEmpty || publishService != nil || publishStatusAddress != nil
        if !selection.manifests.isEmpty && apiOnly {
            throw ValidationError("--manifests reads files; --kubeconfig, --context, --namespace and the --publish-* flags are for the API server: give one or the other")
        }
        if publishService != nil && publishStatusAddress != nil {
            throw ValidationError("--publish-service and --publish-status-address cannot be used together: give the Service in front of Ferry, or the addresses")
        }
        if let p = publishService, PublishService.parse(p) == nil {
            throw ValidationError("--publish-service expects NAMESPACE/NAME, not \"\(p)\"")
        }
        if let list = publishStatusAddress, IngressStatus.addresses(publishStatusAddress: list).isEmpty {
            throw ValidationError("--publish-status-address expects IPs or hostnames separated by commas, not \"\(list)\"")
        }
        _ = try clusterSettings()
    }

    /// The API-mode settings; throws what is wrong with a duration or the election timing.
    func clusterSettings() throws -> IngressClusterSettings {
        func duration(_ text: String, _ flag: String) throws -> Duration {
            guard let d = DurationText.parse(text), d > .zero else { throw ValidationError("\(flag) expects a duration such as 15s or 500ms, not \"\(text)\"") }
            return d
        }
        var cluster = IngressClusterSettings()
        cluster.kubeconfig = credentials.kubeconfig
        cluster.context = credentials.context
        cluster.namespaces = namespace
        if let p = publishService.flatMap(PublishService.parse) { cluster.publish = .service(namespace: p.namespace, name: p.name) }
        if let list = publishStatusAddress { cluster.publish = .addresses(IngressStatus.addresses(publishStatusAddress: list)) }
        cluster.updateStatus = updateStatus
        cluster.updateStatusOnShutdown = updateStatusOnShutdown
        cluster.statusInterval = try duration(statusUpdateInterval, "--status-update-interval")
        cluster.electionID = electionID
        cluster.electionNamespace = electionNamespace
        cluster.leaseDuration = try duration(leaderElectLeaseDuration, "--leader-elect-lease-duration")
        cluster.renewDeadline = try duration(leaderElectRenewDeadline, "--leader-elect-renew-deadline")
        cluster.retryPeriod = try duration(leaderElectRetryPeriod, "--leader-elect-retry-period")
        // client-go's rule: lease > renew deadline > 1.2 × retry period.
        guard cluster.leaseDuration > cluster.renewDeadline, cluster.renewDeadline > cluster.retryPeriod * 1.2 else {
            throw ValidationError("leader election needs --leader-elect-lease-duration > --leader-elect-renew-deadline > 1.2 × --leader-elect-retry-period")
        }
        return cluster
    }

    func run() async throws {
        guard let listenAddress = HostPort(parsing: listen) else { throw ValidationError("--listen expects host:port") }
        guard let adminAddress = HostPort(parsing: admin) else { throw ValidationError("--admin expects host:port") }
        let tlsAddress = listenTLS == "none" ? nil : HostPort(parsing: listenTLS)
        if listenTLS != "none", tlsAddress == nil { throw ValidationError("--listen-tls expects host:port or none") }
        let settings = IngressRole.Settings(manifests: selection.manifests, listen: listenAddress, listenTLS: tlsAddress, admin: adminAddress, options: selection.options)
        if !selection.manifests.isEmpty {
            try await serveWatched(IngressRole.source(settings: settings), options: serving.runnerOptions, command: "ferry ingress", refused: "the manifests were refused")
            return
        }
        // From the API server: the credentials as `ferry api-proxy` resolves them; every collection listed
        // before serving, then watched; status and Events written by the elected leader.
        let cluster: IngressCluster
        do {
            cluster = try await IngressCluster.start(settings: settings, cluster: try clusterSettings(), logger: Logger(label: "ferry"))
        } catch {
            printError("\(error)\nferry ingress: cannot read the cluster; fix the problem above")
            throw ExitCode(1)
        }
        var options = serving.runnerOptions
        options.metrics = cluster.metrics
        try await serveWatched(cluster.source, options: options, command: "ferry ingress", refused: "the cluster's Ingresses were refused",
                               extraServices: cluster.services, onStart: cluster.onStart)
    }
}

struct ExplainCommand: AsyncParsableCommand {
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

    @OptionGroup var cluster: LiveClusterOptions

    func run() async throws {
        // `--manifests A B URL`: the list option takes every word up to the next option, URL included.
        var selection = self.selection
        var url = self.url
        if url == nil, let last = selection.manifests.last, last.contains("://") {
            url = last
            selection.manifests.removeLast()
        }
        guard let url else { throw ValidationError("give the request URL, e.g. ferry explain --manifests k8s/ http://shop.example.com/cart") }
        if !selection.manifests.isEmpty && cluster.given {
            throw ValidationError("--manifests reads files; --kubeconfig, --context and --namespace read the cluster: give one or the other")
        }
        var parsed: [(String, String)] = []
        for h in headers {
            guard let colon = h.firstIndex(of: ":"), colon != h.startIndex else { throw ValidationError("--header expects NAME:VALUE, not \"\(h)\"") }
            parsed.append((String(h[..<colon]), String(h[h.index(after: colon)...].drop { $0 == " " })))
        }
        guard let request = IngressExplainer.Request(url: url, method: method, headers: parsed, clientAddress: source) else {
            throw ValidationError("expected an http:// URL with a host, not \"\(url)\"")
        }
        if selection.manifests.isEmpty {
            // The live cluster, listed once (credentials as `ferry ingress` resolves them).
            let objects = try await cluster.list(IngressAPISource.resources(namespaces: cluster.namespace), command: "ferry explain")
            print(IngressRole.explain(objects, options: selection.options, request: request), terminator: "")
            return
        }
        do {
            print(try IngressRole.explain(paths: selection.manifests, options: selection.options, request: request), terminator: "")
        } catch {
            printError("\(error)\nferry explain: the manifests were refused; fix the problems above")
            throw ExitCode(1)
        }
    }
}

/// `--kubeconfig` and `--context`: how a command that is not given `--manifests` reaches the API server.
struct ClusterCredentialOptions: ParsableArguments {
    @Option(help: "Without --manifests: the kubeconfig to reach the API server with (default: KUBECONFIG, ~/.kube/config, or the Pod's service account).")
    var kubeconfig: String?

    @Option(help: "Without --manifests: the kubeconfig context to use.")
    var context: String?

    var given: Bool { kubeconfig != nil || context != nil }
}

/// `--kubeconfig`, `--context` and `--namespace` of the commands that read the live cluster once
/// (`ferry explain`, `ferry rules`) instead of manifest files.
struct LiveClusterOptions: ParsableArguments {
    @OptionGroup var credentials: ClusterCredentialOptions

    @Option(help: "Without --manifests: read this namespace only (repeatable; default: all).")
    var namespace: [String] = []

    var given: Bool { credentials.given || !namespace.isEmpty }

    /// Every object of `resources`, listed once; exits with what the API server said when it cannot.
    func list(_ resources: [WatchedResource], command: String) async throws -> ManifestSet {
        do {
            let watch = try await KubernetesWatchService.start(kubeconfig: credentials.kubeconfig, context: credentials.context, resources: resources, logger: Logger(label: "ferry"))
            await watch.shutdownWithoutWatching()
            return watch.caches.manifestSet
        } catch {
            printError("\(error)\n\(command): cannot read the cluster; fix the problem above, or give --manifests")
            throw ExitCode(1)
        }
    }
}
