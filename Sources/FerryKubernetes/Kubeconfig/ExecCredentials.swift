import Foundation
import Synchronization

/// Runs a kubeconfig `exec` credential plugin (`client.authentication.k8s.io/v1`) and keeps its answer
/// until `status.expirationTimestamp` (or for good when it has none), as client-go does.
/// Blocking: call it off the event loops.
public final class ExecCredentials: Sendable {
    public struct Credential: Sendable, Hashable {
        public var token: String?
        public var clientCertificateData: String?
        public var clientKeyData: String?
        /// Seconds since the epoch; nil: does not expire.
        public var expiration: Int64?
    }

    let config: Kubeconfig.ExecConfig
    let clusterServer: String
    private let cached = Mutex<Credential?>(nil)

    public init(config: Kubeconfig.ExecConfig, clusterServer: String) {
        self.config = config
        self.clusterServer = clusterServer
    }

    /// The cached credential while it is valid (with a 10 s margin), else a fresh one from the plugin.
    public func credential(now: Int64 = Int64(Date().timeIntervalSince1970)) throws -> Credential {
        if let c = cached.withLock({ $0 }), c.expiration.map({ $0 - 10 > now }) ?? true { return c }
        let fresh = try run()
        cached.withLock { $0 = fresh }
        return fresh
    }

    /// Forgets the cached credential (after the API server answered 401).
    public func invalidate() {
        cached.withLock { $0 = nil }
    }

    func run() throws -> Credential {
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in config.env { environment[k] = v }
        let info = #"{"apiVersion":"\#(config.apiVersion)","kind":"ExecCredential","spec":{"interactive":false}}"#
        environment["KUBERNETES_EXEC_INFO"] = info
        var process = Process()
        var out = Pipe()
        var err = Pipe()
        // A plugin file just written may be briefly "busy" (ETXTBSY) while another process started at that
        // moment still holds it open for writing: a fresh attempt follows, a few times, before giving up.
        for attempt in 1...20 {
            process = Process()
            if config.command.contains("/") {
                process.executableURL = URL(fileURLWithPath: config.command)
                process.arguments = config.args
            } else {
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = [config.command] + config.args
            }
            process.environment = environment
            out = Pipe()
            err = Pipe()
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            do {
                try process.run()
                break
            } catch {
                if attempt < 20, "\(error)".contains("Text file busy") {
                    usleep(50_000)
                    continue
                }
                throw KubeconfigError(problems: ["exec credential plugin \(config.command): cannot run it: \(error)"])
            }
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw KubeconfigError(problems: ["exec credential plugin \(config.command) exited with status \(process.terminationStatus): \(errorText.trimmingCharacters(in: .whitespacesAndNewlines))"])
        }
        return try ExecCredentials.parse(data, command: config.command)
    }

    /// Reads an `ExecCredential` object.
    static func parse(_ data: Data, command: String) throws -> Credential {
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
