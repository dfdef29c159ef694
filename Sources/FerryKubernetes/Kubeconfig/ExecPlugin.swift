import Foundation

/// A kubeconfig `exec` credential plugin (`client.authentication.k8s.io/v1`) as data: how it is invoked
/// (its command, arguments and environment with `KUBERNETES_EXEC_INFO`) and how its answer is read, as
/// client-go does. Running it is the I/O side's (`ExecCredentials` in FerryKubernetesClient).
public struct ExecPlugin: Sendable, Hashable {
    /// What a plugin answered.
    public struct Credential: Sendable, Hashable {
        public var token: String?
        public var clientCertificateData: String?
        public var clientKeyData: String?
        /// Seconds since the epoch; nil: does not expire.
        public var expiration: Int64?

        /// Still usable at `now`: it does not expire, or not within 10 s.
        public func valid(now: Int64) -> Bool {
            expiration.map { $0 - 10 > now } ?? true
        }
    }

    public let config: Kubeconfig.ExecConfig

    public init(config: Kubeconfig.ExecConfig) {
        self.config = config
    }

    /// The executable and arguments (a bare command name is looked up through `/usr/bin/env`).
    public var invocation: (executable: String, arguments: [String]) {
        config.command.contains("/") ? (config.command, config.args) : ("/usr/bin/env", [config.command] + config.args)
    }

    /// `base` with the plugin's own variables and `KUBERNETES_EXEC_INFO`.
    public func environment(base: [String: String]) -> [String: String] {
        var environment = base
        for (k, v) in config.env { environment[k] = v }
        environment["KUBERNETES_EXEC_INFO"] = #"{"apiVersion":"\#(config.apiVersion)","kind":"ExecCredential","spec":{"interactive":false}}"#
        return environment
    }

    /// What to say when the plugin could not run or failed (`text` follows the command: ": cannot run it").
    public func failure(_ text: String) -> KubeconfigError {
        KubeconfigError(problems: ["exec credential plugin \(config.command)\(text)"])
    }

    /// Reads an `ExecCredential` object.
    public static func parse(_ data: Data, command: String) throws -> Credential {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["kind"] as? String == "ExecCredential",
              let status = object["status"] as? [String: Any]
        else {
            throw KubeconfigError(problems: ["exec credential plugin \(command): its output is not an ExecCredential with a status"])
        }
        var c = Credential(token: status["token"] as? String, clientCertificateData: status["clientCertificateData"] as? String, clientKeyData: status["clientKeyData"] as? String)
        if let expiry = status["expirationTimestamp"] as? String {
            guard let seconds = Timestamp.seconds(expiry) else {
                throw KubeconfigError(problems: ["exec credential plugin \(command): expirationTimestamp \"\(expiry)\" is not RFC 3339"])
            }
            c.expiration = seconds
        }
        guard c.token != nil || (c.clientCertificateData != nil && c.clientKeyData != nil) else {
            throw KubeconfigError(problems: ["exec credential plugin \(command): status has neither a token nor a client certificate and key"])
        }
        return c
    }
}

/// Where `APIServer.resolve` gets an exec plugin's credential (cached by the implementation).
public protocol ExecCredentialSource: Sendable {
    func credential() throws -> ExecPlugin.Credential
}
