import Foundation

/// The `ferry` binary run as a separate process, as a user runs it: signals, reloads, exit status, memory.
public final class FerryProcess: Sendable {
    public let process: Subprocess
    public let configPath: String?

    /// Starts `ferry <arguments>` and waits until it logs that it started.
    /// `environment` adds to (or overrides) this process's environment.
    public init(binary: String, arguments: [String], configPath: String? = nil, environment: [String: String] = [:]) async throws {
        self.configPath = configPath
        process = try Subprocess(binary, arguments, environment: environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { $1 })
        let started = await Waiting.until(timeout: .seconds(30)) { [process] in
            process.stderr.contains("ferry started") || !process.process.isRunning
        }
        guard started, process.process.isRunning else {
            throw StartFailure(output: process.stderr)
        }
    }

    /// `ferry run -c <file>` for a configuration text.
    public static func run(binary: String, yaml: String, threads: Int = 1) async throws -> FerryProcess {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(UUID().uuidString).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try await FerryProcess(binary: binary, arguments: ["run", "-c", path, "--threads", "\(threads)"], configPath: path)
    }

    public struct StartFailure: Error, CustomStringConvertible {
        public var output: String
        public var description: String { "ferry did not start:\n\(output)" }
    }

    public var pid: Int32 { process.pid }
    public var stderr: String { process.stderr }
    /// The access log (standard output).
    public var accessLog: [String] { process.stdout.split(separator: "\n").map(String.init) }

    /// The bound port of a listener, from the latest start or reload line (`listeners=web=127.0.0.1:40123,...`).
    public func port(_ listener: String) -> Int? {
        for line in stderr.split(separator: "\n").reversed() where line.contains("ferry started") || line.contains("configuration applied") {
            for token in line.split(whereSeparator: { $0 == " " || $0 == "," }) {
                let text = token.hasPrefix("listeners=") ? token.dropFirst("listeners=".count) : token
                if text.hasPrefix("\(listener)="), let colon = text.lastIndex(of: ":") { return Int(text[text.index(after: colon)...]) }
            }
        }
        return nil
    }

    /// How many reloads have taken effect, from the log.
    public var appliedReloads: Int {
        stderr.split(separator: "\n").filter { $0.contains("configuration applied") }.count
    }

    public var adminPort: Int? {
        for line in stderr.split(separator: "\n") where line.contains("ferry started") {
            for token in line.split(separator: " ") where token.hasPrefix("admin=") {
                if let colon = token.lastIndex(of: ":") { return Int(token[token.index(after: colon)...]) }
            }
        }
        return nil
    }

    public func url(_ path: String, listener: String = "web") -> String {
        "http://127.0.0.1:\(port(listener) ?? 0)\(path)"
    }

    public func rewriteConfig(_ yaml: String) throws {
        try yaml.write(toFile: configPath!, atomically: true, encoding: .utf8)
    }

    public func signal(_ signal: Int32) { process.signal(signal) }

    public func waitForExit(timeout: Duration = .seconds(60)) async -> Int32? {
        await process.waitForExit(timeout: timeout)
    }

    public var peakMemoryKiB: Int? { Subprocess.peakMemoryKiB(pid: pid) }

    /// Stops it (SIGKILL) if still running; for cleanup after a failed expectation.
    public func stop() async {
        if process.process.isRunning {
            process.signal(SIGKILL)
            _ = await process.waitForExit(timeout: .seconds(5))
        }
    }
}
