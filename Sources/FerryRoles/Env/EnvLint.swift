import FerryModel
import Foundation
import Yams

/// `ferry env --lint`: the proxy variables of a process or a container checked for what Go, curl and Python
/// read differently. Findings with a spelling every client reads alike are to fix (the lint fails);
/// differences no spelling closes (CIDRs, ports) are notes.
public enum EnvLint {
    /// One set of variables to check, named by where it came from ("environment", "Deployment/web container app").
    public struct Subject: Sendable {
        public var name: String
        public var variables: [String: String]

        public init(name: String, variables: [String: String]) {
            self.name = name
            self.variables = variables
        }
    }

    public struct Result: Sendable {
        public var text: String
        /// No finding to fix in any subject.
        public var approved: Bool
    }

    public static func report(_ subjects: [Subject], json: Bool) -> Result {
        let checked = subjects.map { ($0, ProxyEnvironment(variables: $0.variables).lint()) }
        let approved = checked.allSatisfy { _, findings in !findings.contains { $0.severity == .fix } }
        if json {
            struct Entry: Encodable {
                var subject: String
                var findings: [[String: String]]
            }
            let entries = checked.map { s, f in Entry(subject: s.name, findings: f.map { ["entry": $0.entry, "severity": $0.severity.rawValue, "message": $0.message] }) }
            struct Report: Encodable {
                var approved: Bool
                var subjects: [Entry]
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            let data = (try? encoder.encode(Report(approved: approved, subjects: entries))) ?? Data()
            return Result(text: String(decoding: data, as: UTF8.self) + "\n", approved: approved)
        }
        var out = ""
        for (subject, findings) in checked {
            let names = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"]
            let shown = names.compactMap { n in subject.variables[n].map { "\(n)=\($0)" } }
            out += "\(subject.name): " + (shown.isEmpty ? "no proxy variables set" : shown.joined(separator: "  ")) + "\n"
            for f in findings { out += "  \(f.severity == .fix ? "fix " : "note") \(f.entry): \(f.message)\n" }
            let fixes = findings.filter { $0.severity == .fix }.count
            out += fixes == 0 ? "  ok: Go, curl and Python read these variables alike\(findings.isEmpty ? "" : " but for the notes")\n"
                              : "  \(fixes) to fix\n"
        }
        return Result(text: out, approved: approved)
    }

    /// The variables in FILE: a container's `env:` list (`- name: …, value: …`), or Kubernetes manifests
    /// (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob; several documents), one subject per
    /// container; or `KEY=VALUE` lines. Entries taken from elsewhere (`valueFrom`) cannot be read here and
    /// are named in the error when nothing else is left.
    public static func subjects(fromFile path: String, contents: String) throws -> [Subject] {
        let trimmed = contents.split(separator: "\n").filter { !$0.trimmingSpaces.hasPrefix("#") && !$0.trimmingSpaces.isEmpty }
        if !trimmed.isEmpty, trimmed.allSatisfy({ !$0.hasPrefix("-") && !$0.hasPrefix(" ") && $0.contains("=") && !$0.contains(": ") }) {
            var variables: [String: String] = [:]
            for line in trimmed {
                var line = line.trimmingSpaces
                if line.hasPrefix("export ") { line = line.dropFirst(7) }
                let eq = line.firstIndex(of: "=")!
                var value = String(line[line.index(after: eq)...])
                if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q { value = String(value.dropFirst().dropLast()) }
                variables[String(line[..<eq])] = value
            }
            return [Subject(name: path, variables: variables)]
        }
        let documents: [Any]
        do { documents = try Yams.load_all(yaml: contents).compactMap { $0 } } catch {
            throw EnvLintError("\(path): not YAML, nor KEY=VALUE lines: \(error)")
        }
        var subjects: [Subject] = []
        for document in documents {
            if let list = document as? [Any] {
                subjects.append(Subject(name: path, variables: try variables(ofEnv: list, at: path)))
            } else if let object = document as? [String: Any] {
                let kind = object["kind"] as? String ?? "object"
                let name = (object["metadata"] as? [String: Any])?["name"] as? String ?? "?"
                for (field, container) in containers(of: object) {
                    let cname = container["name"] as? String ?? "?"
                    let env = container["env"] as? [Any] ?? []
                    subjects.append(Subject(name: "\(kind)/\(name) \(field) \(cname)", variables: try variables(ofEnv: env, at: "\(path): \(kind)/\(name) \(cname)")))
                }
            }
        }
        guard !subjects.isEmpty else {
            throw EnvLintError("\(path): no env to check: expected a container's env list (- name: HTTP_PROXY, value: ...), a manifest with containers, or KEY=VALUE lines")
        }
        return subjects
    }

    static func variables(ofEnv list: [Any], at place: String) throws -> [String: String] {
        var variables: [String: String] = [:]
        for (i, item) in list.enumerated() {
            guard let entry = item as? [String: Any], let name = entry["name"] as? String else {
                throw EnvLintError("\(place): env[\(i)]: expected name: and value:")
            }
            if let value = entry["value"] { variables[name] = "\(value)" }
        }
        return variables
    }

    /// The containers of a Pod or of a workload's Pod template, with the field they sit in.
    static func containers(of object: [String: Any]) -> [(String, [String: Any])] {
        var spec = object["spec"] as? [String: Any]
        if let jobTemplate = spec?["jobTemplate"] as? [String: Any] { spec = jobTemplate["spec"] as? [String: Any] }
        if let template = spec?["template"] as? [String: Any] { spec = template["spec"] as? [String: Any] }
        guard let spec else { return [] }
        var found: [(String, [String: Any])] = []
        for field in ["initContainers", "containers"] {
            for c in spec[field] as? [[String: Any]] ?? [] { found.append((field == "containers" ? "container" : "init container", c)) }
        }
        return found
    }
}

public struct EnvLintError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
