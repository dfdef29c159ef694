import FerryModel
import Foundation
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
        /// egress: namespaces whose Pods may leave only through the proxy (and reach cluster DNS): one
        /// `egress-only-through-proxy` NetworkPolicy in each (the egress-gateway pattern).
        public var lockNamespaces: [String] = []
        /// egress: the proxy watches Pods (`watch_pods: true`) to apply rules per namespace: its
        /// ServiceAccount, the ClusterRole to read Pods, and a way to the API server at these addresses.
        public var watchPodsAPIServer: [String]?

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
        if let apiServer = options.watchPodsAPIServer {
            guard options.role == "egress", key != "egress/lockdown" else {
                throw Failure(description: "--watch-pods is for egress (the proxy that judges clients by their Pods)")
            }
            objects = try watchPods(objects, apiServer: apiServer, namespace: options.namespace ?? oldNamespace ?? "ferry-egress")
        }
        if !options.lockNamespaces.isEmpty {
            guard options.role == "egress", key != "egress/lockdown" else {
                throw Failure(description: "--lock-namespace is for egress (the proxy the locked namespaces must go through)")
            }
            let proxyNamespace = options.namespace ?? oldNamespace ?? "ferry-egress"
            let policies = try lockdown(options.lockNamespaces, proxyNamespace: proxyNamespace)
            // The proxy admits the locked namespaces by name too (not only those labelled ferry.dev/egress=locked).
            for index in objects.indices where objects[index]["kind"] as? String == "NetworkPolicy"
                && (objects[index]["metadata"] as? [String: Any])?["name"] as? String == "egress-proxy" {
                admit(policies.compactMap { ($0["metadata"] as? [String: Any])?["namespace"] as? String }, into: &objects[index])
            }
            objects += policies
        }
        return try objects.map { try Yams.dump(object: $0, sortKeys: true) }.joined(separator: "---\n")
    }

    /// The lockdown NetworkPolicy of `deploy/egress/lockdown`, once in each namespace, its proxy peer in
    /// `proxyNamespace`.
    static func lockdown(_ namespaces: [String], proxyNamespace: String) throws -> [[String: Any]] {
        guard let text = embedded["egress/lockdown"],
              let template = try Yams.load_all(yaml: text).compactMap({ $0 as? [String: Any] }).first(where: { $0["kind"] as? String == "NetworkPolicy" }) else {
            throw Failure(description: "internal: the lockdown NetworkPolicy is missing")
        }
        var seen: Set<String> = []
        return try namespaces.compactMap { namespace in
            guard NamespaceName.valid(namespace) else { throw Failure(description: "--lock-namespace: \"\(namespace)\" is not a namespace name (lower-case letters, digits and -)") }
            guard seen.insert(namespace).inserted else { return nil }
            guard namespace != proxyNamespace else { throw Failure(description: "--lock-namespace: \(namespace) is the proxy's own namespace") }
            var policy = template
            var metadata = policy["metadata"] as? [String: Any] ?? [:]
            metadata["namespace"] = namespace
            metadata["labels"] = ["app.kubernetes.io/part-of": "ferry-egress"]
            policy["metadata"] = metadata
            var spec = policy["spec"] as? [String: Any] ?? [:]
            var rules = spec["egress"] as? [[String: Any]] ?? []
            for r in rules.indices {
                var peers = rules[r]["to"] as? [[String: Any]] ?? []
                for p in peers.indices {
                    var selector = peers[p]["namespaceSelector"] as? [String: Any] ?? [:]
                    var labels = selector["matchLabels"] as? [String: String] ?? [:]
                    if labels["kubernetes.io/metadata.name"] == "ferry-egress" { labels["kubernetes.io/metadata.name"] = proxyNamespace }
                    selector["matchLabels"] = labels
                    peers[p]["namespaceSelector"] = selector
                }
                rules[r]["to"] = peers
            }
            spec["egress"] = rules
            policy["spec"] = spec
            return policy
        }
    }

    /// The egress proxy reading Pods: `watch_pods: true` in its configuration, a ServiceAccount with its token
    /// mounted, a ClusterRole to list and watch Pods (nothing else), and its NetworkPolicy letting it
    /// reach the API server (`CIDR` or `CIDR:PORT`, port 443 by default; the server is often on the nodes'
    /// addresses, which the policy otherwise keeps the proxy from).
    static func watchPods(_ objects: [[String: Any]], apiServer: [String], namespace: String) throws -> [[String: Any]] {
        guard !apiServer.isEmpty else { throw Failure(description: "--watch-pods needs --api-server CIDR[:PORT]: where the proxy reaches the Kubernetes API") }
        var blocks: [[String: Any]] = [], ports: Set<Int> = []
        for text in apiServer {
            // CIDR[:PORT]: the port follows the prefix length, so IPv6 needs no brackets.
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            let length = parts.count == 2 ? parts[1].split(separator: ":", maxSplits: 1).map(String.init) : []
            let cidr = parts.count == 2 ? "\(parts[0])/\(length.first ?? "")" : text
            let port = length.count == 2 ? Int(length[1]) : 443
            guard IPRange(parsing: cidr) != nil, let port, (1...65535).contains(port) else {
                throw Failure(description: "--api-server: \"\(text)\" is not CIDR[:PORT] (e.g. 192.168.1.10/32:6443, fd00::1/128:6443)")
            }
            blocks.append(["ipBlock": ["cidr": cidr]])
            ports.insert(port)
        }
        var out: [[String: Any]] = []
        for var object in objects {
            let kind = object["kind"] as? String ?? ""
            let name = (object["metadata"] as? [String: Any])?["name"] as? String ?? ""
            if kind == "ConfigMap", var data = object["data"] as? [String: String], let config = data["egress.yaml"] {
                guard config.contains("    forward_proxy:\n") else { throw Failure(description: "internal: the egress configuration has no forward_proxy block") }
                data["egress.yaml"] = config.replacingOccurrences(of: "    forward_proxy:\n", with: "    forward_proxy:\n      watch_pods: true               # rules may select the client Pod's namespace and labels\n")
                object["data"] = data
            } else if kind == "Deployment", var spec = object["spec"] as? [String: Any], var template = spec["template"] as? [String: Any],
                      var podSpec = template["spec"] as? [String: Any] {
                podSpec["serviceAccountName"] = "egress-proxy"
                podSpec["automountServiceAccountToken"] = true
                template["spec"] = podSpec
                spec["template"] = template
                object["spec"] = spec
            } else if kind == "NetworkPolicy", name == "egress-proxy", var spec = object["spec"] as? [String: Any] {
                var egress = spec["egress"] as? [[String: Any]] ?? []
                egress.append(["to": blocks, "ports": ports.sorted().map { ["port": $0, "protocol": "TCP"] }])
                spec["egress"] = egress
                object["spec"] = spec
            }
            out.append(object)
        }
        let labels = ["app.kubernetes.io/name": "egress-proxy"]
        out.append(["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "egress-proxy", "namespace": namespace, "labels": labels]])
        out.append(["apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": ["name": "ferry-egress-pods", "labels": labels],
                    "rules": [["apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]]]])
        out.append(["apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": ["name": "ferry-egress-pods", "labels": labels],
                    "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ferry-egress-pods"],
                    "subjects": [["kind": "ServiceAccount", "name": "egress-proxy", "namespace": namespace]]])
        return out
    }

    /// Adds a peer per namespace (by its immutable name label) to the proxy policy's ingress rule.
    static func admit(_ namespaces: [String], into policy: inout [String: Any]) {
        var spec = policy["spec"] as? [String: Any] ?? [:]
        var ingress = spec["ingress"] as? [[String: Any]] ?? []
        guard !ingress.isEmpty else { return }
        var peers = ingress[0]["from"] as? [[String: Any]] ?? []
        for namespace in namespaces {
            peers.append(["namespaceSelector": ["matchLabels": ["kubernetes.io/metadata.name": namespace]]])
        }
        ingress[0]["from"] = peers
        spec["ingress"] = ingress
        policy["spec"] = spec
    }

    enum NamespaceName {
        /// An RFC 1123 label, as namespace names are.
        static func valid(_ name: String) -> Bool {
            !name.isEmpty && name.count <= 63 && name.first != "-" && name.last != "-"
                && name.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "-" }
        }
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
