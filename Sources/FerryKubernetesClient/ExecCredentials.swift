import FerryKubernetes
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs a kubeconfig `exec` credential plugin and keeps its answer until `status.expirationTimestamp` (or
/// for good when it has none), as client-go does. Blocking: call it off the event loops.
public final class ExecCredentials: ExecCredentialSource {
    public let plugin: ExecPlugin
    let clusterServer: String
    private let cached = Mutex<ExecPlugin.Credential?>(nil)

    public init(config: Kubeconfig.ExecConfig, clusterServer: String) {
        self.plugin = ExecPlugin(config: config)
        self.clusterServer = clusterServer
    }

    public func credential() throws -> ExecPlugin.Credential {
        try credential(now: Int64(Date().timeIntervalSince1970))
    }

    /// The cached credential while it is valid (with a 10 s margin), else a fresh one from the plugin.
    public func credential(now: Int64) throws -> ExecPlugin.Credential {
        if let c = cached.withLock({ $0 }), c.valid(now: now) { return c }
        let fresh = try run()
        cached.withLock { $0 = fresh }
        return fresh
    }

    /// Forgets the cached credential (after the API server answered 401).
    public func invalidate() {
        cached.withLock { $0 = nil }
    }

    func run() throws -> ExecPlugin.Credential {
        let (executable, arguments) = plugin.invocation
        let environment = plugin.environment(base: ProcessInfo.processInfo.environment)
        var process = Process()
        var out = Pipe()
        var err = Pipe()
        // A plugin file just written may be briefly "busy" (ETXTBSY) while another process started at that
        // moment still holds it open for writing: a fresh attempt follows, a few times, before giving up.
        for attempt in 1...20 {
            process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
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
                throw plugin.failure(": cannot run it: \(error)")
            }
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw plugin.failure(" exited with status \(process.terminationStatus): \(errorText.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return try ExecPlugin.parse(data, command: plugin.config.command)
    }
}
