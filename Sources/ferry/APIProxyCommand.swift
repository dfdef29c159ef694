import ArgumentParser
import FerryModel
import FerryProxy
import FerryRoles
import Foundation

/// `ferry api-proxy`: `kubectl proxy`, flag for flag, with Ferry's stricter defaults.
struct APIProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-proxy",
        abstract: "Serve the Kubernetes API locally with your kubeconfig's credentials, as `kubectl proxy` does (same flags).",
        discussion: """
        Differences from kubectl proxy, each safer by default: the client's Authorization and Impersonate-* fields \
        are removed (--pass-client-authorization keeps Authorization); --reject-methods ignores case; paths with \
        '.', '..', '//' or an encoded '/', '.', '%' or '\\' are refused with 400 before the filter runs; an upgrade \
        (exec, attach, port-forward) whose Origin is not a loopback origin is refused. See docs/api-proxy.md.
        """
    )

    @Option(name: [.short, .long], help: "The port on which to run the proxy. Set to 0 to pick a random port.")
    var port: Int = APIProxyRole.defaultPort

    @Option(help: "The IP address on which to serve on.")
    var address: String = "127.0.0.1"

    @Option(name: [.short, .long], help: "Unix socket on which to run the proxy.")
    var unixSocket: String?

    @Option(help: "Prefix to serve the proxied API under.")
    var apiPrefix: String = "/"

    @Option(name: [.short, .long], help: "Also serve static files from the given directory under the specified prefix.")
    var www: String?

    @Option(name: [.customShort("P"), .long], help: "Prefix to serve static files under, if static file directory is specified.")
    var wwwPrefix: String = "/static/"

    @Option(help: "Regular expression for paths that the proxy should accept.")
    var acceptPaths: String = RequestFilter.defaultAcceptPaths

    @Option(help: "Regular expression for paths that the proxy should reject. Paths specified here will be rejected even accepted by --accept-paths.")
    var rejectPaths: String = RequestFilter.defaultRejectPaths

    @Option(help: "Regular expression for hosts that the proxy should accept.")
    var acceptHosts: String = RequestFilter.defaultAcceptHosts

    @Option(help: "Regular expression for HTTP methods that the proxy should reject (example --reject-methods='POST,PUT,PATCH').")
    var rejectMethods: String = RequestFilter.defaultRejectMethods

    @Flag(help: "If true, disable request filtering in the proxy. This is dangerous, and can leave you vulnerable to XSRF attacks, when used with an accessible port.")
    var disableFilter = false

    @Option(help: "keepalive specifies the keep-alive period for an active network connection. Set to 0 to disable keepalive.")
    var keepalive: String = "0"

    @Flag(help: "Ferry: also refuse nodes/proxy, services/proxy, pods/proxy, pods/portforward and pods/ephemeralcontainers, which run commands or open tunnels into the cluster and which kubectl's default filter lets through.")
    var rejectUnsafeSubresources = false

    @Flag(help: "If true, enables automatic path appending of the kube context server path to each request.")
    var appendServerPath = false

    @Flag(help: "Ferry: forward the client's own Authorization field instead of removing it (kubectl proxy passes it through).")
    var passClientAuthorization = false

    @Option(help: "Path to the kubeconfig file to use for CLI requests.")
    var kubeconfig: String?

    @Option(help: "The name of the kubeconfig context to use.")
    var context: String?

    @Option(help: "The name of the kubeconfig cluster to use.")
    var cluster: String?

    @Option(help: "The name of the kubeconfig user to use.")
    var user: String?

    @Option(help: "Ferry: serve HTTPS with this PEM certificate (chain); needs --tls-private-key-file.")
    var tlsCertFile: String?

    @Option(help: "Ferry: the PEM private key of --tls-cert-file.")
    var tlsPrivateKeyFile: String?

    @Option(help: "Ferry: accept client certificates signed by this PEM CA; the certificate's common name is the user (needs TLS).")
    var clientCaFile: String?

    @Option(help: "Ferry: clients must send a bearer token listed in this file (token,user,uid,\"group1,group2\" per line).")
    var tokenAuthFile: String?

    @Option(help: "Ferry: what each local user may do: a YAML list of rules {users, verbs, resources, namespaces, non_resource_urls}.")
    var policyFile: String?

    @Option(help: "Ferry: where an admin listener (/ready /metrics /config_dump) listens; none by default.")
    var admin: String?

    @OptionGroup var serving: ServingOptions

    func validate() throws {
        if unixSocket != nil && port != APIProxyRole.defaultPort {
            throw ValidationError("cannot set --unix-socket and --port at the same time")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535, not \(port)") }
        if keepalive != "0" && DurationText.parse(keepalive) == nil {
            throw ValidationError("--keepalive expects a duration such as 30s or 2m (0 disables), not \"\(keepalive)\"")
        }
        if (tlsCertFile == nil) != (tlsPrivateKeyFile == nil) { throw ValidationError("--tls-cert-file and --tls-private-key-file go together") }
        if clientCaFile != nil && tlsCertFile == nil { throw ValidationError("--client-ca-file needs TLS: also pass --tls-cert-file and --tls-private-key-file") }
        if let admin, HostPort(parsing: admin) == nil { throw ValidationError("--admin expects host:port, not \"\(admin)\"") }
    }

    func run() async throws {
        var settings = APIProxyRole.Settings()
        settings.address = address
        settings.port = port
        settings.unixSocket = unixSocket?.isEmpty == false ? unixSocket : nil
        settings.apiPrefix = apiPrefix
        settings.www = www
        settings.wwwPrefix = wwwPrefix
        settings.acceptPaths = acceptPaths
        settings.rejectPaths = rejectPaths
        settings.acceptHosts = acceptHosts
        settings.rejectMethods = rejectMethods
        settings.disableFilter = disableFilter
        settings.rejectUnsafeSubresources = rejectUnsafeSubresources
        settings.appendServerPath = appendServerPath
        settings.keepalive = keepalive == "0" ? nil : DurationText.parse(keepalive)
        settings.passClientAuthorization = passClientAuthorization
        settings.kubeconfig = kubeconfig
        settings.context = context
        settings.cluster = cluster
        settings.user = user
        settings.admin = admin.flatMap(HostPort.init(parsing:))
        if let tlsCertFile, let tlsPrivateKeyFile {
            settings.tls = DownstreamTLS(certificateFile: tlsCertFile, keyFile: tlsPrivateKeyFile, clientCAFile: clientCaFile)
        }
        settings.tokenAuthFile = tokenAuthFile
        settings.policyFile = policyFile
        let listen = settings.listen
        let socket = settings.unixSocket
        try await serveWatched(APIProxySource(settings: settings), options: serving.runnerOptions, command: "ferry api-proxy", refused: "cannot serve the API") { server in
            // kubectl's startup line, with the port the system picked for --port 0.
            let port = server.listenerAddresses["api-proxy"]?.port ?? listen.port
            let shown = socket ?? HostPort(host: listen.host, port: port).description
            FileHandle.standardOutput.write(Data("Starting to serve on \(shown)\n".utf8))
        }
    }
}
