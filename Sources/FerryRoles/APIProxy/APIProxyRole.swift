import FerryConfig
import FerryKubernetes
import FerryKubernetesClient
import FerryModel
import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// `ferry api-proxy`: `kubectl proxy` as a preset. One listener whose API route forwards to the API server
/// with the kubeconfig's (or the Pod's) credentials, behind kubectl's request filter; the client's own
/// `Authorization` and `Impersonate-*` fields never reach the API server.
public enum APIProxyRole {
    public static let defaultPort = 8001

    public struct Settings: Sendable {
        public var address = "127.0.0.1"
        public var port = APIProxyRole.defaultPort
        /// Listen on this Unix socket instead of `address:port`.
        public var unixSocket: String?
        public var apiPrefix = "/"
        /// A folder of static files served under `wwwPrefix` (without the filter, as kubectl does).
        public var www: String?
        public var wwwPrefix = "/static/"
        public var acceptPaths = RequestFilter.defaultAcceptPaths
        public var rejectPaths = RequestFilter.defaultRejectPaths
        public var acceptHosts = RequestFilter.defaultAcceptHosts
        public var rejectMethods = RequestFilter.defaultRejectMethods
        public var disableFilter = false
        /// Ferry, opt-in: also refuse the paths that run commands or open tunnels into the cluster and that
        /// kubectl's default filter lets through (`unsafeSubresourcePaths`).
        public var rejectUnsafeSubresources = false
        public var appendServerPath = false
        /// TCP keep-alive period of connections to the API server (`--keepalive`); nil: off.
        public var keepalive: Duration?
        /// Ferry: forward the client's own `Authorization` (kubectl's pass-through) instead of removing it.
        public var passClientAuthorization = false
        public var kubeconfig: String?
        public var context: String?
        public var cluster: String?
        public var user: String?
        public var admin: HostPort?
        /// Ferry, opt-in: TLS on the local listener (certificate, key and, for client certificates, their CA).
        public var tls: DownstreamTLS?
        /// Ferry, opt-in: clients must send a bearer token from this file (kube-apiserver's token-file format).
        public var tokenAuthFile: String?
        /// Ferry, opt-in: what each local user may do (a YAML list of rules).
        public var policyFile: String?
        /// The environment to read `KUBECONFIG`, `HOME` and the in-cluster variables from.
        public var environment: [String: String] = ProcessInfo.processInfo.environment
        /// Where a Pod's service account is mounted (tests point it elsewhere).
        public var serviceAccountFolder = InClusterConfig.serviceAccountFolder

        public init() {}

        public var listen: HostPort { HostPort(host: address, port: port) }

        /// Local files whose edits reload the proxy (besides the kubeconfig): tokens, policy, TLS files.
        var localFiles: [String] {
            [tokenAuthFile, policyFile].compactMap { $0 } + (tls?.files ?? [])
        }
    }

    /// Subresources that run commands or open tunnels into the cluster which kubectl's default filter (it
    /// refuses only exec and attach) lets through, as `--reject-paths` expressions in kubectl's style.
    public static let unsafeSubresourcePaths: [(name: String, pattern: String, example: String)] = [
        ("nodes/proxy", "^/api/.*/nodes/.*/proxy", "/api/v1/nodes/n1/proxy/"),
        ("services/proxy", "^/api/.*/services/.*/proxy", "/api/v1/namespaces/ns/services/s/proxy/"),
        ("pods/proxy", "^/api/.*/pods/.*/proxy", "/api/v1/namespaces/ns/pods/p/proxy/"),
        ("pods/portforward", "^/api/.*/pods/.*/portforward", "/api/v1/namespaces/ns/pods/p/portforward"),
        ("pods/ephemeralcontainers", "^/api/.*/pods/.*/ephemeralcontainers", "/api/v1/namespaces/ns/pods/p/ephemeralcontainers"),
    ]

    /// The whole configuration: listener `api-proxy`, cluster `kubernetes-api`, and notes (warnings kubectl prints).
    public static func snapshot(server: APIServer, settings: Settings, version: Int) throws -> ConfigSnapshot {
        var notes: [String] = []
        if settings.passClientAuthorization && (settings.tokenAuthFile != nil || settings.tls?.verifiesClients == true) {
            throw APIProxyError(description: "--pass-client-authorization cannot be combined with --token-auth-file or --client-ca-file: the local credentials would reach the API server")
        }
        var filter: RequestFilter?
        if !settings.disableFilter {
            var rejectPaths = settings.rejectPaths
            if settings.rejectUnsafeSubresources {
                rejectPaths = ([rejectPaths] + unsafeSubresourcePaths.map(\.pattern)).filter { !$0.isEmpty }.joined(separator: ",")
            }
            let built = try RequestFilter(acceptPaths: settings.acceptPaths, rejectPaths: rejectPaths, acceptHosts: settings.acceptHosts, rejectMethods: settings.rejectMethods)
            filter = built
            if settings.rejectPaths.isEmpty || settings.rejectMethods.isEmpty {
                notes.append("Request filter has been relaxed: an empty --reject-paths or --reject-methods rejects nothing")
            }
            let open = unsafeSubresourcePaths.filter { path in !built.rejectPaths.contains { $0.firstMatchGroups(Substring(path.example)) != nil } }
            if !open.isEmpty {
                notes.append("the filter lets through paths that run commands or open tunnels into the cluster: \(open.map(\.name).joined(separator: ", ")); --reject-unsafe-subresources refuses them all")
            }
        } else if settings.unixSocket == nil {
            notes.append("Request filter disabled, your proxy is vulnerable to XSRF attacks, please be cautious")
        }
        if !server.path.isEmpty && !settings.appendServerPath {
            notes.append("the server URL has a path (\(server.path)) that is not sent; pass --append-server-path to send it")
        }
        let prefix = APIPrefix.normalise(settings.apiPrefix)
        var rewrite: PathRewrite?
        if APIPrefix.isStripped(prefix), prefix != "/" {
            // kubectl's stripLeaveSlash: /prefix/rest → /rest, /prefix → /.
            rewrite = PathRewrite(regex: try CompiledRegex("^" + escaped(String(prefix.dropLast())) + "(/.*)?$"), replacement: "$1")
        }
        var remove = ["impersonate-*"]
        if !settings.passClientAuthorization { remove.append("authorization") }
        var set: [HeaderChanges.Field] = []
        if let authorization = server.authorization {
            set.append(HeaderChanges.Field(name: "authorization", value: authorization, secret: true))
        }
        var route = Route(
            name: "kubernetes-api",
            match: RouteMatch(path: .prefix(prefix)),
            action: .forward([WeightedCluster(name: "kubernetes-api")]),
            // kubectl proxy sets no deadline; a large list may take a while before its head arrives.
            timeout: .seconds(300),
            retries: RetryPolicy(attempts: 0, on: []),
            rewrite: rewrite,
            maxRequestBodyBytes: Int.max,
            requestHeaders: HeaderChanges(remove: remove, set: set),
            hostRewrite: server.authority,
            requestFilter: filter,
            upstreamPathPrefix: settings.appendServerPath && !server.path.isEmpty ? server.path : nil)
        route.kubernetesAPI = true
        if settings.tokenAuthFile != nil || settings.tls?.verifiesClients == true {
            var authentication = ClientAuthentication(clientCertificates: settings.tls?.verifiesClients == true)
            if let file = settings.tokenAuthFile {
                authentication.tokens = try ConfigLoader.clientTokens(path: file)
                authentication.tokensFile = file
            }
            route.clientAuthentication = authentication
        }
        if let file = settings.policyFile {
            route.kubernetesPolicy = try ConfigLoader.kubernetesPolicy(path: file)
        }
        var routes = [route]
        // Outside the API and static prefixes kubectl answers Go's http.NotFound, echoing nothing of the request.
        routes.append(Route(name: "not-found", match: RouteMatch(path: .prefix("/")), action: .directResponse(status: 404, body: "404 page not found\n")))
        if let www = settings.www, !www.isEmpty {
            var isFolder: ObjCBool = false
            if !FileManager.default.fileExists(atPath: www, isDirectory: &isFolder) || !isFolder.boolValue {
                notes.append("--www \(www) is not a directory; requests under \(APIPrefix.normalise(settings.wwwPrefix)) will get 404")
            }
            let files = StaticFiles(root: www, prefix: APIPrefix.normalise(settings.wwwPrefix))
            // First: the longer prefix wins, as with Go's ServeMux.
            routes.insert(Route(name: "static-files", match: RouteMatch(path: .prefix(files.prefix)), action: .staticFiles(files)), at: 0)
        }
        var http = HTTPConnectionManager(virtualHosts: [VirtualHost(name: "kubernetes-api", domains: [.any], routes: routes)])
        http.limits.maxRequestBodyBytes = nil
        // exec, attach and port-forward upgrade to WebSocket or SPDY/3.1 (kubectl's two transports).
        http.upgradeProtocols = UpgradeProtocols(["websocket", "spdy"])
        var listener = Listener(name: "api-proxy", address: settings.listen, unixSocket: settings.unixSocket, http: http)
        listener.tls = settings.tls
        var cluster = Cluster(name: "kubernetes-api", endpoints: [HostPort(host: server.host, port: server.port)], tls: server.tls)
        cluster.tcpKeepalive = settings.keepalive
        cluster.parentProxy = server.proxy
        var config = ConfigSnapshot(version: version, source: "api-proxy: \(server.describedAs)", admin: settings.admin.map { AdminSettings(address: $0) }, listeners: [listener], clusters: [cluster])
        // kubectl proxy prints nothing per request; the audit line is opt-in (--access-log-format).
        config.accessLog.format = .none
        config.notes = notes
        return config
    }

    /// A regular expression that matches `text` literally.
    static func escaped(_ text: String) -> String {
        var out = ""
        for c in text {
            if c.isLetter || c.isNumber || c == "/" || c == "-" || c == "_" { out.append(c) } else { out += "\\" + String(c) }
        }
        return out
    }

    /// The API server and credentials: from `--kubeconfig` / `KUBECONFIG` / `~/.kube/config`, or, when no
    /// kubeconfig file exists and the process runs in a Pod, from its service account.
    public static func resolveServer(_ settings: Settings, exec: ExecCache) throws -> APIServer {
        let (paths, explicit) = Kubeconfig.paths(explicit: settings.kubeconfig, environment: settings.environment)
        let anyFile = paths.contains { FileManager.default.fileExists(atPath: $0) }
        if !explicit && !anyFile {
            switch InClusterConfig.load(environment: settings.environment, folder: settings.serviceAccountFolder) {
            case .success(let inCluster): return try APIServer.resolve(inCluster)
            case .failure(let error):
                throw KubeconfigError(problems: ["no kubeconfig (looked for \(paths.joined(separator: ", "))) and \(error.description)"])
            }
        }
        let kubeconfig = try Kubeconfig.load(paths: paths, mustExist: explicit)
        let selection = try kubeconfig.select(context: settings.context, cluster: settings.cluster, user: settings.user)
        let execCredentials = selection.user.exec.map { exec.credentials(for: $0, server: selection.cluster.server) }
        return try APIServer.resolve(selection, origins: kubeconfig.origins, exec: execCredentials)
    }

    /// One `ExecCredentials` per plugin configuration, so its cached credential survives reloads.
    public final class ExecCache: Sendable {
        private let entries = NIOLockedValueBox<[String: ExecCredentials]>([:])
        public init() {}

        func credentials(for config: Kubeconfig.ExecConfig, server: String) -> ExecCredentials {
            let key = "\(config.command)\u{0}\(config.args.joined(separator: "\u{0}"))\u{0}\(server)"
            return entries.withLockedValue { entries in
                if let existing = entries[key] { return existing }
                let made = ExecCredentials(config: config, clusterServer: server)
                entries[key] = made
                return made
            }
        }
    }
}

/// Why the api-proxy settings cannot be served.
public struct APIProxyError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// The kubeconfig (and token files) as a configuration source: re-read when a file changes or an exec
/// plugin's credential is about to expire.
public struct APIProxySource: ConfigSource {
    public let settings: APIProxyRole.Settings
    let exec = APIProxyRole.ExecCache()
    /// When the credential in force expires (set by each load), so `stamp` changes shortly before.
    private let expiry = NIOLockedValueBox<Int64?>(nil)
    private let credentialFiles = NIOLockedValueBox<[String]>([])

    public init(settings: APIProxyRole.Settings) {
        self.settings = settings
    }

    public var name: String { settings.kubeconfig ?? settings.environment["KUBECONFIG"] ?? "kubeconfig" }

    public func stamp() -> SourceStamp? {
        let (paths, _) = Kubeconfig.paths(explicit: settings.kubeconfig, environment: settings.environment)
        var values = (paths + credentialFiles.withLockedValue { $0 } + settings.localFiles).map(APIProxySource.fileStamp)
        if let expiresAt = expiry.withLockedValue({ $0 }) {
            values.append(Int64(Date().timeIntervalSince1970) >= expiresAt - 10 ? "expired" : "valid")
        }
        return SourceStamp(values)
    }

    public func load(version: Int) throws -> ConfigSnapshot {
        let server = try APIProxyRole.resolveServer(settings, exec: exec)
        expiry.withLockedValue { $0 = server.expiresAt }
        credentialFiles.withLockedValue { $0 = server.credentialFiles }
        return try APIProxyRole.snapshot(server: server, settings: settings, version: version)
    }

    static func fileStamp(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "\(path):absent" }
        return "\(path):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_size):\(info.st_ino)"
    }
}
