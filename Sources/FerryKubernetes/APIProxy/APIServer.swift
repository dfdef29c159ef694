import FerryModel
import Foundation

/// Where the API server is and how to present oneself to it, resolved from a kubeconfig selection or a Pod's
/// service account: the address, upstream TLS (CA, server name, client certificate) and the `Authorization`
/// value (bearer token or basic credentials). Reading token files and running exec plugins blocks: resolve
/// off the event loops.
public struct APIServer: Sendable, Hashable {
    public var scheme: String
    /// A name or an IP address (IPv6 without brackets).
    public var host: String
    public var port: Int
    /// The server URL's path without a trailing slash (`/k8s/clusters/c1`), or empty.
    public var path: String
    /// nil for an `http://` server.
    public var tls: UpstreamTLS?
    /// The `Authorization` field to send, or nil (client certificate or no credentials).
    public var authorization: String?
    /// Files whose edits change the credentials (a rotated token file).
    public var credentialFiles: [String] = []
    /// The kubeconfig's `proxy-url`: an HTTP proxy reached with CONNECT.
    public var proxy: HostPort?
    /// When an exec plugin's credential expires (seconds since the epoch).
    public var expiresAt: Int64?
    /// Where the cluster and user came from, for messages.
    public var describedAs: String

    public init(scheme: String, host: String, port: Int, path: String, tls: UpstreamTLS?, authorization: String?, describedAs: String) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.tls = tls
        self.authorization = authorization
        self.describedAs = describedAs
    }

    /// `host:port` as sent in Host, IPv6 in brackets.
    public var authority: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// From a kubeconfig selection; `exec` runs the user's exec plugin (cached) when it has one.
    public static func resolve(_ selection: Kubeconfig.Selection, origins: [String: Kubeconfig.Origin], exec: (any ExecCredentialSource)?) throws -> APIServer {
        let clusterEntry = origins["clusters/\(selection.clusterName)"].map { "\($0)" } ?? "cluster \"\(selection.clusterName)\""
        let userEntry = selection.userName.map { name in origins["users/\(name)"].map { "\($0)" } ?? "user \"\(name)\"" }
        var server = try parse(selection.cluster.server, entry: clusterEntry)
        server.describedAs = [clusterEntry, userEntry].compactMap { $0 }.joined(separator: ", ")
        let c = selection.cluster
        let u = selection.user
        if let proxyURL = c.proxyURL, !proxyURL.isEmpty {
            server.proxy = try parseProxy(proxyURL, entry: clusterEntry)
        }
        if server.scheme == "https" {
            var tls = UpstreamTLS(caFile: c.certificateAuthority, caPEM: c.certificateAuthorityData, serverName: c.tlsServerName, insecureSkipVerify: c.insecureSkipTLSVerify)
            tls.clientCertificateFile = u.clientCertificate
            tls.clientCertificatePEM = u.clientCertificateData
            tls.clientKeyFile = u.clientKey
            tls.clientKeyPEM = u.clientKeyData
            server.tls = tls
        }
        if let token = u.token {
            server.authorization = "Bearer \(token)"
        } else if let file = u.tokenFile {
            server.authorization = "Bearer \(try readToken(file, entry: userEntry ?? "user"))"
            server.credentialFiles.append(file)
        } else if let name = u.username, let password = u.password {
            server.authorization = "Basic " + Data("\(name):\(password)".utf8).base64EncodedString()
        }
        if u.exec != nil, let exec {
            let credential: ExecPlugin.Credential
            do {
                credential = try exec.credential()
            } catch let error as KubeconfigError {
                throw KubeconfigError(problems: error.problems.map { "\(userEntry ?? "user"): \($0)" })
            }
            if let token = credential.token { server.authorization = "Bearer \(token)" }
            if let cert = credential.clientCertificateData, let key = credential.clientKeyData {
                server.tls?.clientCertificatePEM = Array(cert.utf8)
                server.tls?.clientKeyPEM = Array(key.utf8)
            }
            server.expiresAt = credential.expiration
        }
        return server
    }

    /// From a Pod's service account (the token file is read now and watched for rotation).
    public static func resolve(_ inCluster: InClusterConfig) throws -> APIServer {
        var server = try parse(inCluster.server, entry: "in-cluster configuration")
        server.tls = UpstreamTLS(caFile: inCluster.certificateAuthority)
        server.authorization = "Bearer \(try inCluster.token())"
        server.credentialFiles = [inCluster.tokenFile]
        server.describedAs = "in-cluster service account (\(inCluster.tokenFile))"
        return server
    }

    /// `https://host[:port][/path]`.
    static func parse(_ url: String, entry: String) throws -> APIServer {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http",
              var host = components.host, !host.isEmpty
        else {
            throw KubeconfigError(problems: ["\(entry): server \"\(url)\" is not an http(s) URL such as https://10.0.0.1:6443"])
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var path = components.path
        while path.hasSuffix("/") { path.removeLast() }
        return APIServer(scheme: scheme, host: host, port: components.port ?? (scheme == "https" ? 443 : 80), path: path, tls: nil, authorization: nil, describedAs: entry)
    }

    /// `http://host[:port]` (port 80 when left out); other schemes are refused with the entry named.
    static func parseProxy(_ url: String, entry: String) throws -> HostPort {
        guard let components = URLComponents(string: url), components.scheme?.lowercased() == "http", var host = components.host, !host.isEmpty else {
            throw KubeconfigError(problems: ["\(entry): proxy-url \"\(url)\" is not supported: ferry api-proxy reaches the server through an http:// proxy (CONNECT), such as http://proxy.corp:3128"])
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return HostPort(host: host, port: components.port ?? 80)
    }

    static func readToken(_ file: String, entry: String) throws -> String {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw KubeconfigError(problems: ["\(entry): tokenFile \(file) cannot be read"])
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
