import FerryModel
import Foundation

/// `ferry env`: how Go, curl, Python and Java clients would reach a URL under the given proxy variables,
/// what in NO_PROXY they read differently, and the Pod `env:` and JVM flags that say the same thing.
public enum EnvDoctor {
    public static func report(url: String, environment: ProxyEnvironment, installedCurl: String?) -> String? {
        guard let decisions = environment.decisions(for: url) else { return nil }
        var out = "URL: \(url)\n"
        let shown = environment.variables.keys.sorted().map { "\($0)=\(environment.variables[$0]!)" }
        out += "variables: " + (shown.isEmpty ? "(none set)" : shown.joined(separator: "  ")) + "\n\n"
        let width = 8
        for d in decisions {
            let name = d.client.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)
            out += "\(name)\(d.fails ? "fails" : d.proxy.map { "proxy \($0)" } ?? "direct"): \(d.reason)\n"
        }
        let proxied = decisions.filter { $0.proxy != nil }.map(\.client.rawValue)
        let direct = decisions.filter { $0.proxy == nil }.map(\.client.rawValue)
        if !proxied.isEmpty && !direct.isEmpty {
            out += "\nclients disagree: \(proxied.joined(separator: ", ")) use the proxy; \(direct.joined(separator: ", ")) connect directly\n"
        }
        if let installedCurl, let note = curlNote(installedCurl, environment: environment) {
            out += "\n" + note + "\n"
        }
        let findings = environment.lint()
        if !findings.isEmpty {
            out += "\nread differently by clients:\n" + findings.map { "  \($0.severity == .fix ? "fix " : "note") \($0.entry): \($0.message)\n" }.joined()
        }
        out += "\nPod container env (both cases, so every client reads it):\n"
        out += environment.podEnv().split(separator: "\n").map { "  " + $0 + "\n" }.joined()
        let flags = environment.jvmFlags()
        out += "\nJVM flags:\n  " + (flags.isEmpty ? "(no proxy variables set)" : flags.joined(separator: " ")) + "\n"
        return out
    }

    /// The same verdicts for scripts.
    public static func json(url: String, environment: ProxyEnvironment) -> String? {
        guard let decisions = environment.decisions(for: url) else { return nil }
        struct Client: Encodable {
            var uses_proxy: Bool
            var proxy: String?
            var reason: String
            /// The client refuses the request (Go in a CGI environment).
            var fails: Bool
        }
        struct Report: Encodable {
            var url: String
            var clients: [String: Client]
            var lint: [[String: String]]
        }
        var clients: [String: Client] = [:]
        for d in decisions { clients[d.client.rawValue] = Client(uses_proxy: d.proxy != nil, proxy: d.proxy, reason: d.reason, fails: d.fails) }
        let report = Report(url: url, clients: clients, lint: environment.lint().map { ["entry": $0.entry, "severity": $0.severity.rawValue, "message": $0.message] })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(report) else { return nil }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The curl on this machine against the current release the table describes (8.9 and later): where an
    /// older one reads these variables differently, and whether that matters for them.
    static func curlNote(_ versionLine: String, environment: ProxyEnvironment) -> String? {
        // "curl 7.88.1 (x86_64-pc-linux-gnu) ..."
        let parts = versionLine.split(separator: " ")
        guard parts.count > 1, parts[0] == "curl" else { return nil }
        let numbers = parts[1].split(separator: ".").compactMap { Int($0) }
        guard numbers.count >= 2 else { return nil }
        let version = (numbers[0], numbers[1])
        if version >= (8, 9) { return "curl installed here: \(parts[1]), a release that behaves as the table says" }
        let noProxy = environment.variables["no_proxy"] ?? environment.variables["NO_PROXY"] ?? ""
        var differences: [String] = []
        if version < (7, 86) {
            differences.append("it ignores CIDR entries" + (noProxy.contains("/") ? " (this NO_PROXY has one: it would use the proxy where the table says direct)" : ""))
        }
        differences.append("it also splits NO_PROXY on blanks, where 8.9 and later stop at a blank not followed by a comma" + (noProxy.contains(" ") ? " (this NO_PROXY has one: entries after it count for this curl only)" : ""))
        return "note: the curl installed here is \(parts[1]), older than the current release the table describes (8.9 and later): " + differences.joined(separator: "; ")
    }

    /// `curl --version`'s first line, or nil when curl is not installed.
    public static func installedCurlVersion() -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        guard let curl = paths.map({ "\($0)/curl" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: curl)
        process.arguments = ["--version"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").first.map(String.init)
    }
}
