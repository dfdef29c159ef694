import FerryModel
import Foundation
import Yams

/// A kubeconfig (or several merged as kubectl merges `KUBECONFIG`): clusters, users and contexts by name.
/// Relative file paths inside a file are resolved against that file's folder, as kubectl does.
public struct Kubeconfig: Sendable {
    public struct Cluster: Sendable, Hashable {
        public var server: String
        public var certificateAuthority: String?
        public var certificateAuthorityData: [UInt8]?
        public var insecureSkipTLSVerify = false
        public var tlsServerName: String?
        public var proxyURL: String?
    }

    public struct User: Sendable, Hashable {
        public var token: String?
        public var tokenFile: String?
        public var clientCertificate: String?
        public var clientCertificateData: [UInt8]?
        public var clientKey: String?
        public var clientKeyData: [UInt8]?
        public var username: String?
        public var password: String?
        public var exec: ExecConfig?
    }

    /// An exec credential plugin (`client.authentication.k8s.io/v1`).
    public struct ExecConfig: Sendable, Hashable {
        public var apiVersion: String
        public var command: String
        public var args: [String]
        public var env: [String: String]

        public init(apiVersion: String, command: String, args: [String], env: [String: String]) {
            self.apiVersion = apiVersion
            self.command = command
            self.args = args
            self.env = env
        }
    }

    public struct Context: Sendable, Hashable {
        public var cluster: String
        public var user: String
        public var namespace: String?
    }

    /// Where each entry was read from, for messages: `file: users "alice"`.
    public struct Origin: Sendable, Hashable, CustomStringConvertible {
        public var file: String
        public var entry: String
        public var description: String { "\(file): \(entry)" }
    }

    public var clusters: [String: Cluster] = [:]
    public var users: [String: User] = [:]
    public var contexts: [String: Context] = [:]
    public var currentContext: String?
    public var origins: [String: Origin] = [:]
    /// The files read, in order.
    public var files: [String] = []

    public init() {}

    /// Reads and merges `paths` in order: the first file to define a name (or current-context) wins, as with
    /// kubectl's `KUBECONFIG`. Missing files are skipped unless `mustExist` (an explicit `--kubeconfig`).
    public static func load(paths: [String], mustExist: Bool = false) throws -> Kubeconfig {
        var merged = Kubeconfig()
        var problems: [String] = []
        for path in paths where !path.isEmpty {
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                if mustExist || FileManager.default.fileExists(atPath: path) { problems.append("\(path): cannot read the kubeconfig file") }
                continue
            }
            do {
                merged.merge(try parse(text, file: path))
            } catch let error as KubeconfigError {
                problems += error.problems
            }
        }
        if !problems.isEmpty { throw KubeconfigError(problems: problems) }
        return merged
    }

    /// The paths kubectl would read: `--kubeconfig`, else `KUBECONFIG` (colon-separated), else `~/.kube/config`.
    public static func paths(explicit: String?, environment: [String: String]) -> (paths: [String], explicit: Bool) {
        if let explicit { return ([explicit], true) }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            return (list.split(separator: ":").map(String.init), false)
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return (["\(home)/.kube/config"], false)
    }

    mutating func merge(_ other: Kubeconfig) {
        for (name, c) in other.clusters where clusters[name] == nil {
            clusters[name] = c
            origins["clusters/\(name)"] = other.origins["clusters/\(name)"]
        }
        for (name, u) in other.users where users[name] == nil {
            users[name] = u
            origins["users/\(name)"] = other.origins["users/\(name)"]
        }
        for (name, c) in other.contexts where contexts[name] == nil {
            contexts[name] = c
            origins["contexts/\(name)"] = other.origins["contexts/\(name)"]
        }
        if currentContext == nil { currentContext = other.currentContext }
        files += other.files
    }

    /// Parses one kubeconfig file. Throws `KubeconfigError` naming the file and entry of each problem.
    public static func parse(_ text: String, file: String) throws -> Kubeconfig {
        var config = Kubeconfig()
        config.files = [file]
        var problems: [String] = []
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw KubeconfigError(problems: ["\(file): not valid YAML: \(error)"])
        }
        guard let mapping = root?.mapping else {
            if root == nil { return config }
            throw KubeconfigError(problems: ["\(file): a kubeconfig is a mapping with clusters, users and contexts"])
        }
        let folder = (file as NSString).deletingLastPathComponent
        func resolve(_ path: String?) -> String? {
            guard let path, !path.isEmpty else { return nil }
            if path.hasPrefix("/") || folder.isEmpty { return path }
            return (folder as NSString).appendingPathComponent(path)
        }
        func named(_ key: String, _ inner: String) -> [(name: String, body: Node.Mapping, entry: String)] {
            guard let list = mapping[key]?.sequence else { return [] }
            var result: [(String, Node.Mapping, String)] = []
            for (i, item) in list.enumerated() {
                guard let name = item["name"]?.string, !name.isEmpty else {
                    problems.append("\(file): \(key)[\(i)]: needs a name")
                    continue
                }
                guard let body = item[inner]?.mapping else {
                    problems.append("\(file): \(key)[\(i)] (\"\(name)\"): needs a \(inner) mapping")
                    continue
                }
                result.append((name, body, "\(key)[\(i)] (\"\(name)\")"))
            }
            return result
        }
        func data(_ body: Node.Mapping, _ key: String, _ entry: String) -> [UInt8]? {
            guard let text = body[key]?.string else { return nil }
            guard let bytes = Data(base64Encoded: text.filter { !$0.isWhitespace }) else {
                problems.append("\(file): \(entry): \(key) is not valid base64")
                return nil
            }
            return Array(bytes)
        }
        for (name, body, entry) in named("clusters", "cluster") {
            guard let server = body["server"]?.string, server.hasPrefix("https://") || server.hasPrefix("http://") else {
                problems.append("\(file): \(entry): server must be an http(s) URL such as https://10.0.0.1:6443")
                continue
            }
            var c = Cluster(server: server)
            c.certificateAuthority = resolve(body["certificate-authority"]?.string)
            c.certificateAuthorityData = data(body, "certificate-authority-data", entry)
            c.insecureSkipTLSVerify = body["insecure-skip-tls-verify"]?.bool ?? false
            c.tlsServerName = body["tls-server-name"]?.string
            c.proxyURL = body["proxy-url"]?.string
            if c.insecureSkipTLSVerify && (c.certificateAuthority != nil || c.certificateAuthorityData != nil) {
                problems.append("\(file): \(entry): insecure-skip-tls-verify cannot be combined with a certificate authority")
            }
            config.clusters[name] = c
            config.origins["clusters/\(name)"] = Origin(file: file, entry: entry)
        }
        for (name, body, entry) in named("users", "user") {
            var u = User()
            u.token = body["token"]?.string
            u.tokenFile = resolve(body["tokenFile"]?.string)
            u.clientCertificate = resolve(body["client-certificate"]?.string)
            u.clientCertificateData = data(body, "client-certificate-data", entry)
            u.clientKey = resolve(body["client-key"]?.string)
            u.clientKeyData = data(body, "client-key-data", entry)
            u.username = body["username"]?.string
            u.password = body["password"]?.string
            if let exec = body["exec"]?.mapping {
                let apiVersion = exec["apiVersion"]?.string ?? ""
                if let command = exec["command"]?.string, !command.isEmpty {
                    var env: [String: String] = [:]
                    for e in exec["env"]?.sequence ?? [] {
                        if let n = e["name"]?.string { env[n] = e["value"]?.string ?? "" }
                    }
                    let args = (exec["args"]?.sequence ?? []).compactMap(\.string)
                    u.exec = ExecConfig(apiVersion: apiVersion, command: resolveCommand(command, folder: folder), args: args, env: env)
                    if apiVersion != "client.authentication.k8s.io/v1" && apiVersion != "client.authentication.k8s.io/v1beta1" {
                        problems.append("\(file): \(entry): exec.apiVersion must be client.authentication.k8s.io/v1 (or v1beta1), not \"\(apiVersion)\"")
                    }
                } else {
                    problems.append("\(file): \(entry): exec needs a command")
                }
            }
            let hasCert = u.clientCertificate != nil || u.clientCertificateData != nil
            let hasKey = u.clientKey != nil || u.clientKeyData != nil
            if hasCert != hasKey {
                problems.append("\(file): \(entry): client-certificate and client-key go together (one of them is missing)")
            }
            if u.token != nil && u.tokenFile != nil {
                problems.append("\(file): \(entry): token and tokenFile cannot both be set")
            }
            if (u.username != nil) != (u.password != nil) {
                problems.append("\(file): \(entry): username and password go together")
            }
            config.users[name] = u
            config.origins["users/\(name)"] = Origin(file: file, entry: entry)
        }
        for (name, body, entry) in named("contexts", "context") {
            guard let cluster = body["cluster"]?.string, let user = body["user"]?.string else {
                problems.append("\(file): \(entry): a context names a cluster and a user")
                continue
            }
            config.contexts[name] = Context(cluster: cluster, user: user, namespace: body["namespace"]?.string)
            config.origins["contexts/\(name)"] = Origin(file: file, entry: entry)
        }
        if let current = mapping["current-context"]?.string, !current.isEmpty { config.currentContext = current }
        if !problems.isEmpty { throw KubeconfigError(problems: problems) }
        return config
    }

    /// A relative exec command with a slash is relative to the kubeconfig's folder; a bare name is looked up on PATH.
    static func resolveCommand(_ command: String, folder: String) -> String {
        if command.hasPrefix("/") || !command.contains("/") || folder.isEmpty { return command }
        return (folder as NSString).appendingPathComponent(command)
    }

    /// The cluster and user to use: `--context` (else current-context), then `--cluster` / `--user` overrides.
    public func select(context: String? = nil, cluster: String? = nil, user: String? = nil) throws -> Selection {
        let contextName = context ?? currentContext
        var clusterName = cluster
        var userName = user
        var namespace: String?
        if let contextName {
            guard let ctx = contexts[contextName] else {
                let known = contexts.keys.sorted().joined(separator: ", ")
                throw KubeconfigError(problems: ["context \"\(contextName)\" is not in \(files.joined(separator: ", "))" + (known.isEmpty ? "" : "; known: \(known)")])
            }
            clusterName = clusterName ?? ctx.cluster
            userName = userName ?? ctx.user
            namespace = ctx.namespace
        }
        guard let clusterName else {
            throw KubeconfigError(problems: ["no current-context and no --context or --cluster in \(files.joined(separator: ", "))"])
        }
        guard let c = clusters[clusterName] else {
            let by = contextName.map { " (named by context \"\($0)\"\(origins["contexts/\($0)"].map { " in \($0.file)" } ?? ""))" } ?? ""
            throw KubeconfigError(problems: ["cluster \"\(clusterName)\"\(by) is not defined"])
        }
        var u = User()
        if let userName {
            guard let found = users[userName] else {
                let by = contextName.map { " (named by context \"\($0)\"\(origins["contexts/\($0)"].map { " in \($0.file)" } ?? ""))" } ?? ""
                throw KubeconfigError(problems: ["user \"\(userName)\"\(by) is not defined"])
            }
            u = found
        }
        return Selection(contextName: contextName, clusterName: clusterName, userName: userName, cluster: c, user: u, namespace: namespace)
    }

    public struct Selection: Sendable, Hashable {
        public var contextName: String?
        public var clusterName: String
        public var userName: String?
        public var cluster: Cluster
        public var user: User
        public var namespace: String?
    }
}

/// Every problem found in kubeconfig files, each naming the file and the entry.
public struct KubeconfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [String]
    public init(problems: [String]) {
        self.problems = problems
    }
    public var description: String { problems.joined(separator: "\n") }
}
