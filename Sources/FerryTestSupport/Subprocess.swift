import Foundation

/// Runs external programs (curl, python3, ferry) without blocking Swift concurrency threads.
/// Output goes to temporary files, so large output never fills a pipe.
public final class Subprocess: @unchecked Sendable {
    // Mutable state is only `process`, which Foundation's Process makes thread-safe for the calls used here
    // (terminate, processIdentifier, isRunning), and the files are read after exit.
    public let process: Process
    public let stdoutPath: String
    public let stderrPath: String

    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        stdoutPath = dir.appendingPathComponent("stdout").path
        stderrPath = dir.appendingPathComponent("stderr").path
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        defer {
            // The child has its own copies: the test process keeps none, so a suite of hundreds of processes
            // does not hold thousands of descriptors (Foundation's Process.run crashed enumerating them).
            try? out.close()
            try? err.close()
        }
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits for the process to exit (bounded); returns its exit status, or nil on timeout (after killing it).
    public func waitForExit(timeout: Duration = .seconds(60)) async -> Int32? {
        let exited = await Waiting.until(timeout: timeout) { !self.process.isRunning }
        if !exited {
            kill(pid, SIGKILL)
            _ = await Waiting.until(timeout: .seconds(5)) { !self.process.isRunning }
            return nil
        }
        return process.terminationStatus
    }

    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Runs to completion and returns (status, stdout, stderr).
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(120)) async throws -> (status: Int32?, stdout: String, stderr: String) {
        let p = try Subprocess(executable, arguments, environment: environment)
        let status = await p.waitForExit(timeout: timeout)
        return (status, p.stdout, p.stderr)
    }

    /// Peak resident memory of a running process, in KiB (VmHWM).
    public static func peakMemoryKiB(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
        return nil
    }
}

/// Waiting on a condition that an event makes true, polled at a short interval, bounded in time.
public enum Waiting {
    @discardableResult
    public static func until(timeout: Duration = .seconds(10), _ condition: @Sendable () -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    /// The same for a condition that must be awaited.
    @discardableResult
    public static func untilAsync(timeout: Duration = .seconds(10), _ condition: @Sendable () async -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }
}
