import Foundation

/// Runs a system tool (iptables, iptables-restore) and collects its exit status and output. Blocking.
enum SystemCommand {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `missing`: what to do when the tool is not installed.
    static func run(_ tool: String, _ arguments: [String], input: String? = nil, missing: String = "install the iptables package") throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path(of: tool, missing: missing))
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        try process.run()
        if let input {
            inPipe.fileHandleForWriting.write(Data(input.utf8))
            try? inPipe.fileHandleForWriting.close()
        }
        // Read both pipes to the end before waiting, so a large output cannot block the tool.
        let group = DispatchGroup()
        nonisolated(unsafe) var stderrData = Data()
        group.enter()
        DispatchQueue.global().async {
            stderrData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self), stderr: String(decoding: stderrData, as: UTF8.self))
    }

    /// The tool's path from PATH (and the sbin folders, where iptables lives).
    static func path(of tool: String, missing: String = "install the iptables package") throws -> String {
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for folder in folders where FileManager.default.isExecutableFile(atPath: "\(folder)/\(tool)") {
            return "\(folder)/\(tool)"
        }
        throw Failure(description: "\(tool) is not installed (looked in PATH and the sbin folders); \(missing)")
    }
}
