import Foundation
import Testing

/// Checks for tools a test needs. Without them a test is skipped with a clear message, unless
/// `FERRY_REQUIRE_ALL_TESTS=1` (set by CI), which turns the skip into a failure.
public enum Prerequisites {
    public static var requireAll: Bool {
        ProcessInfo.processInfo.environment["FERRY_REQUIRE_ALL_TESTS"] == "1"
    }

    /// The absolute path of `tool` on PATH, or nil. For python3 it is the interpreter itself, not a version
    /// manager's shim script: a shim runs python as its child, so stopping the shim would orphan it.
    public static func path(of tool: String) -> String? {
        if tool == "python3" { return python3 }
        return searchPath(tool)
    }

    static func searchPath(_ tool: String) -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for dir in paths {
            let candidate = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// python3 on PATH resolved to `sys.executable`.
    static let python3: String? = {
        guard let found = searchPath("python3") else { return nil }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: found)
        probe.arguments = ["-c", "import sys; print(sys.executable)"]
        let out = Pipe()
        probe.standardOutput = out
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return found }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        probe.waitUntilExit()
        let resolved = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return probe.terminationStatus == 0 && FileManager.default.isExecutableFile(atPath: resolved) ? resolved : found
    }()

    /// A python3 that can import `module` (PATH first, then the system one), or nil after reporting a skip
    /// (a failure under FERRY_REQUIRE_ALL_TESTS).
    public static func python(with module: String, install: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        let candidates = [path(of: "python3"), "/usr/bin/python3"].compactMap { $0 }
        for python in candidates where FileManager.default.isExecutableFile(atPath: python) {
            let check = Process()
            check.executableURL = URL(fileURLWithPath: python)
            check.arguments = ["-c", "import \(module)"]
            check.standardOutput = FileHandle.nullDevice
            check.standardError = FileHandle.nullDevice
            if (try? check.run()) != nil {
                check.waitUntilExit()
                if check.terminationStatus == 0 { return python }
            }
        }
        let message = "skipped: no python3 with the \(module) module (\(install ?? "apt-get install python3-\(module)"); .ci/run does)"
        skip(message, sourceLocation: sourceLocation)
        return nil
    }

    /// True when every tool is present; otherwise reports a skip (or a failure under FERRY_REQUIRE_ALL_TESTS).
    public static func have(_ tools: String..., sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let missing = tools.filter { path(of: $0) == nil }
        guard !missing.isEmpty else { return true }
        let message = "skipped: \(missing.joined(separator: ", ")) not installed (apt-get install it; .ci/run does)"
        skip(message, sourceLocation: sourceLocation)
        return false
    }

    /// True when running as root (network namespaces, kernel rules); otherwise reports a skip.
    public static func root(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if geteuid() == 0 { return true }
        skip("skipped: needs root to create network namespaces and kernel rules (CI runs as root)", sourceLocation: sourceLocation)
        return false
    }

    /// The `ferry` binary built by `swift build` (scripts/test.sh builds it before the tests).
    public static func ferryBinary(sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        if let explicit = ProcessInfo.processInfo.environment["FERRY_BIN"] { return explicit }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for configuration in ["debug", "release"] {
            let candidate = root.appendingPathComponent(".build/\(configuration)/ferry").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        let message = "skipped: the ferry binary is not built; run `swift build` first (scripts/test.sh does)"
        skip(message, sourceLocation: sourceLocation)
        return nil
    }

    /// Reports a test that cannot run here: a failure under FERRY_REQUIRE_ALL_TESTS (CI), otherwise a line in
    /// the test output (the test then returns without asserting).
    static func skip(_ message: String, sourceLocation: SourceLocation) {
        if requireAll {
            Issue.record(Comment(rawValue: "FERRY_REQUIRE_ALL_TESTS=1: \(message)"), sourceLocation: sourceLocation)
        } else {
            print(message)
        }
    }
}

extension Trait where Self == ConditionTrait {
    /// A test that needs `tools`: shown as skipped, with the reason, where one is missing — except under
    /// `FERRY_REQUIRE_ALL_TESTS=1` (CI), where it runs and its own `Prerequisites` check fails it.
    public static func requires(_ tools: String..., sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        .enabled(if: Prerequisites.requireAll || tools.allSatisfy { Prerequisites.path(of: $0) != nil },
                 Comment(rawValue: "needs \(tools.joined(separator: ", ")) (apt-get install; .ci/run does)"), sourceLocation: sourceLocation)
    }

    /// A test that needs root (network namespaces, kernel rules): skipped as `requires` is.
    public static var requiresRoot: Self {
        .enabled(if: Prerequisites.requireAll || geteuid() == 0, "needs root (network namespaces and kernel rules; CI runs as root)")
    }
}
