import Foundation

/// The credentials a Pod has: `KUBERNETES_SERVICE_HOST`/`_PORT`, the service-account token (a file that
/// the kubelet rotates, so it is read again on every use) and the cluster CA.
public struct InClusterConfig: Sendable, Hashable {
    public static let serviceAccountFolder = "/var/run/secrets/kubernetes.io/serviceaccount"

    public var server: String
    public var tokenFile: String
    public var certificateAuthority: String
    public var namespace: String?

    /// Nil (with the reason) outside a Pod. `folder` is where the service account is mounted.
    public static func load(environment: [String: String], folder: String = serviceAccountFolder) -> Result<InClusterConfig, KubeconfigError> {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty, let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            return .failure(KubeconfigError(problems: ["not in a Pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"]))
        }
        let token = folder + "/token"
        let ca = folder + "/ca.crt"
        for file in [token, ca] where !FileManager.default.isReadableFile(atPath: file) {
            return .failure(KubeconfigError(problems: ["\(file): cannot read the service account's file (is automountServiceAccountToken off?)"]))
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let namespace = (try? String(contentsOfFile: folder + "/namespace", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return .success(InClusterConfig(server: "https://\(hostPart):\(port)", tokenFile: token, certificateAuthority: ca, namespace: namespace))
    }

    /// The current token (re-read each time: the kubelet replaces the file before the old token expires).
    public func token() throws -> String {
        guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
            throw KubeconfigError(problems: ["\(tokenFile): cannot read the service account token"])
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
