import Yams

/// `ferry deploy render`: the manifests of `deploy/` (embedded at build time, as kubectl's kustomize renders
/// them) with the user's changes — the way `istioctl manifest generate` and `linkerd install` print theirs.
public enum DeployRenderer {
    public struct Options: Sendable {
        /// `ingress`, `service-proxy`, `egress`, `api-proxy`.
        public var role: String
        /// `production` (the default) or `single-node` (ingress, egress); `lockdown` for egress's workload
        /// namespace policy.
        public var profile: String?
        /// Every namespaced object, the Namespace object and ServiceAccount subjects move here.
        public var namespace: String?
        /// Replaces the `ferry` image (e.g. `registry.example/ferry:0.1.0`).
        public var image: String?
        public var replicas: Int?
        /// `FLAG=VALUE`: sets `--FLAG=VALUE` in the ferry container's arguments (replacing the flag if present).
        public var set: [String] = []
        /// Checks the ferry container's arguments after `set` changed them (the command line parser of the
        /// binary, so a misspelt flag fails here rather than in a crash-looping Pod).
        public var checkArguments: (@Sendable ([String]) throws -> Void)?

        public init(role: String) {
            self.role = role
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// The roles and profiles that can be rendered, for messages.
    public static var available: [String] { embedded.keys.sorted() }

    public static func render(_ options: Options) throws -> String {
        let key = options.profile.map { $0 == "production" ? options.role : "\(options.role)/\($0)" } ?? options.role
        guard let text = embedded[key] else {
            throw Failure(description: "no manifests for \(key); choose one of: \(available.joined(separator: ", "))")
        }
        var objects = try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
        let oldNamespace = objects.first { $0["kind"] as? String == "Namespace" }.flatMap { ($0["metadata"] as? [String: Any])?["name"] as? String }
        for index in objects.indices {
            if let namespace = options.namespace { moveNamespace(&objects[index], to: namespace, from: oldNamespace) }
            try changeWorkload(&objects[index], options)
        }
        return try objects.map { try Yams.dump(object: $0, sortKeys: true) }.joined(separator: "---\n")
    }

    static func moveNamespace(_ object: inout [String: Any], to namespace: String, from old: String?) {
        var metadata = object["metadata"] as? [String: Any] ?? [:]
        if object["kind"] as? String == "Namespace" {
            metadata["name"] = namespace
        } else if metadata["namespace"] != nil {
            metadata["namespace"] = namespace
        }
        object["metadata"] = metadata
        if var subjects = object["subjects"] as? [[String: Any]] {
            for i in subjects.indices where subjects[i]["kind"] as? String == "ServiceAccount" && (old == nil || subjects[i]["namespace"] as? String == old) {
                subjects[i]["namespace"] = namespace
            }
            object["subjects"] = subjects
        }
    }

    /// `ferry ingress` takes one of these, never both.
    static let exclusive = ["--publish-service": "--publish-status-address", "--publish-status-address": "--publish-service"]

    static func changeWorkload(_ object: inout [String: Any], _ options: Options) throws {
        guard ["Deployment", "DaemonSet"].contains(object["kind"] as? String ?? ""), var spec = object["spec"] as? [String: Any] else { return }
        if let replicas = options.replicas {
            guard object["kind"] as? String == "Deployment" else { throw Failure(description: "--replicas: \(options.role) runs as a DaemonSet, one per node") }
            spec["replicas"] = replicas
        }
        var template = spec["template"] as? [String: Any] ?? [:]
        var podSpec = template["spec"] as? [String: Any] ?? [:]
        var containers = podSpec["containers"] as? [[String: Any]] ?? []
        for i in containers.indices where (containers[i]["image"] as? String)?.hasPrefix("ferry:") == true {
            if let image = options.image { containers[i]["image"] = image }
            var args = containers[i]["args"] as? [String] ?? []
            for assignment in options.set {
                guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
                    throw Failure(description: "--set expects FLAG=VALUE (e.g. mode=nftables), not \"\(assignment)\"")
                }
                let flag = "--" + assignment[..<eq].drop { $0 == "-" }
                let value = assignment[assignment.index(after: eq)...]
                // Flags that exclude each other: setting one removes the other.
                let excluded = exclusive[flag].map { [flag, $0] } ?? [flag]
                args.removeAll { arg in excluded.contains { arg == $0 || arg.hasPrefix($0 + "=") } }
                args.append("\(flag)=\(value)")
            }
            if !options.set.isEmpty, let check = options.checkArguments {
                do { try check(args) } catch {
                    throw Failure(description: "--set: `ferry \(args.first ?? options.role)` refuses its arguments: \(error)")
                }
            }
            containers[i]["args"] = args
        }
        podSpec["containers"] = containers
        template["spec"] = podSpec
        spec["template"] = template
        object["spec"] = spec
    }
}
