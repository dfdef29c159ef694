import FerryModel
import Yams

/// `ferry inject`: adds Ferry to the Pods of workload manifests — an init container that applies the capture
/// rules (`ferry rules capture`) and Ferry itself as a native sidecar (an init container with
/// `restartPolicy: Always`: it starts before the app and stops after it, and does not keep a Job from
/// completing), with ports, probes, resources and, when asked for, its configuration volume. Pure: YAML in,
/// YAML out. Injecting twice gives the same result (Ferry's containers and volume are replaced, not added).
public enum SidecarInjector {
    public enum Mode: String, Sendable, CaseIterable {
        /// Inbound (the app's port) and outbound.
        case sidecar
        /// Outbound only: the Pod's connections pass the egress policy; inbound traffic is left alone.
        case egressOnly = "egress-only"
    }

    public struct Options: Sendable {
        public var mode: Mode = .sidecar
        public var image = "ferry"
        /// The image of the capture init container: it needs iptables (or nft) besides ferry.
        public var captureImage: String?
        public var proxyUID = 1337
        public var outboundPort = 15001
        public var inboundPort = 15006
        public var adminPort = 15020
        public init() {}
    }

    /// Annotations on the workload or its Pod template (the template's win).
    public enum Annotation {
        public static let inject = "ferry.dev/inject"                       // "false": leave this workload alone
        public static let mode = "ferry.dev/mode"                           // sidecar | egress-only
        public static let appPort = "ferry.dev/app-port"                    // default: the first container's first TCP port
        public static let allow = "ferry.dev/allow"                         // comma-separated egress rules
        public static let deny = "ferry.dev/deny"
        public static let defaultAction = "ferry.dev/default"               // allow | deny (default deny)
        public static let excludePorts = "ferry.dev/exclude-outbound-ports" // comma-separated
        public static let excludeCIDRs = "ferry.dev/exclude-outbound-cidrs"
        public static let includePorts = "ferry.dev/include-outbound-ports"
        public static let configMap = "ferry.dev/config-map"                // an Envoy bootstrap (envoy.yaml) to run instead of the rules
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Result: Sendable {
        public var yaml: String
        /// What was injected or skipped, and why: one line per workload.
        public var notes: [String]
    }

    static let kindsWithTemplate = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]

    public static func inject(yaml: String, source: String, options: Options) throws -> Result {
        let documents: [Node]
        do {
            documents = Array(try Yams.compose_all(yaml: yaml))
        } catch {
            throw Failure(description: "\(source): not YAML: \(error)")
        }
        var notes: [String] = []
        var out: [String] = []
        for (index, document) in documents.enumerated() {
            var document = document
            let kind = document["kind"]?.string ?? ""
            let name = "\(kind)/\(document["metadata"]?["name"]?.string ?? "?")"
            let workloadAnnotations = annotations(document["metadata"])
            do {
                switch kind {
                case "Pod":
                    if var spec = document["spec"] {
                        let note = try injectPod(&spec, annotations: workloadAnnotations, what: name, options: options)
                        document["spec"] = spec
                        notes.append(note)
                    }
                case _ where kindsWithTemplate.contains(kind) || kind == "CronJob":
                    let path = kind == "CronJob" ? ["spec", "jobTemplate", "spec", "template"] : ["spec", "template"]
                    guard var template = node(document, path) else {
                        throw Failure(description: "\(name) has no \(path.joined(separator: ".")); there is no Pod to inject into")
                    }
                    let merged = workloadAnnotations.merging(annotations(template["metadata"])) { $1 }
                    if var spec = template["spec"] {
                        let note = try injectPod(&spec, annotations: merged, what: name, options: options)
                        template["spec"] = spec
                        document = set(document, path, template)
                        notes.append(note)
                    }
                default:
                    break
                }
            } catch let failure as Failure {
                throw Failure(description: "\(source): document \(index + 1): \(failure.description)")
            }
            out.append(try Yams.serialize(node: document, sortKeys: false))
        }
        return Result(yaml: out.joined(separator: "---\n"), notes: notes)
    }

    /// Adds (or replaces) Ferry's containers and volume in a Pod spec; returns a note.
    static func injectPod(_ spec: inout Node, annotations: [String: String], what: String, options: Options) throws -> String {
        if annotations[Annotation.inject]?.lowercased() == "false" { return "\(what): not injected (\(Annotation.inject): false)" }
        var mode = options.mode
        if let text = annotations[Annotation.mode] {
            guard let m = Mode(rawValue: text) else { throw Failure(description: "\(what): \(Annotation.mode): \"\(text)\" is not sidecar or egress-only") }
            mode = m
        }
        var appPort: Int?
        if let text = annotations[Annotation.appPort] {
            guard let p = Int(text), (1...65535).contains(p) else { throw Failure(description: "\(what): \(Annotation.appPort): \"\(text)\" is not a port") }
            appPort = p
        } else {
            appPort = firstPort(spec)
        }
        var note = ""
        if mode == .sidecar, appPort == nil {
            mode = .egressOnly
            note = " (no container port and no \(Annotation.appPort): egress only)"
        }
        if let app = appPort, [options.outboundPort, options.inboundPort, options.adminPort].contains(app) {
            throw Failure(description: "\(what): the app's port \(app) is one of Ferry's own (\(options.outboundPort), \(options.inboundPort), \(options.adminPort))")
        }
        func list(_ key: String) -> [String] {
            (annotations[key] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        for port in list(Annotation.excludePorts) + list(Annotation.includePorts) where Int(port).map({ !(1...65535).contains($0) }) ?? true {
            throw Failure(description: "\(what): \"\(port)\" in the outbound port annotations is not a port")
        }
        for cidr in list(Annotation.excludeCIDRs) where IPRange(parsing: cidr) == nil {
            throw Failure(description: "\(what): \(Annotation.excludeCIDRs): \"\(cidr)\" is not a CIDR")
        }

        // The capture rules: outbound to Ferry except its own UID; inbound for the app's port in sidecar mode.
        var capture = ["rules", "capture", "--proxy-port", "\(options.outboundPort)", "--proxy-uid", "\(options.proxyUID)", "--proxy-gid", "\(options.proxyUID)"]
        for port in list(Annotation.excludePorts) { capture += ["--exclude-port", port] }
        for port in list(Annotation.includePorts) { capture += ["--include-port", port] }
        for cidr in list(Annotation.excludeCIDRs) { capture += ["--exclude-cidr", cidr] }
        let configMap = annotations[Annotation.configMap]
        // With an Envoy bootstrap the file's listeners are the user's: only outbound connections are sent to it.
        let inbound = mode == .sidecar && configMap == nil
        if inbound, let app = appPort { capture += ["--inbound-port", "\(app)", "--inbound-proxy-port", "\(options.inboundPort)"] }

        var sidecar = ["sidecar", "--admin", "0.0.0.0:\(options.adminPort)", "--outbound", "0.0.0.0:\(options.outboundPort)"]
        sidecar += mode == .sidecar ? ["--inbound", "0.0.0.0:\(options.inboundPort)"] : ["--inbound", "none"]
        if let app = appPort { sidecar += ["--app-port", "\(app)"] }
        if configMap != nil {
            sidecar = ["sidecar", "--envoy-config", "/etc/ferry/envoy.yaml", "--admin", "0.0.0.0:\(options.adminPort)"] + (appPort.map { ["--app-port", "\($0)"] } ?? [])
        } else {
            for rule in list(Annotation.allow) { sidecar += ["--allow", rule] }
            for rule in list(Annotation.deny) { sidecar += ["--deny", rule] }
            if let action = annotations[Annotation.defaultAction] {
                guard action == "allow" || action == "deny" else { throw Failure(description: "\(what): \(Annotation.defaultAction): \"\(action)\" is not allow or deny") }
                sidecar += ["--default", action]
            }
        }

        var initContainers = (spec["initContainers"]?.sequence.map(Array.init) ?? []).filter { !["ferry-capture", "ferry"].contains($0["name"]?.string) }
        initContainers.insert(try captureContainer(capture, image: options.captureImage ?? options.image), at: 0)
        initContainers.insert(try sidecarContainer(sidecar, inbound: inbound, configMap: configMap, options: options), at: 1)
        spec["initContainers"] = Node.sequence(Node.Sequence(initContainers))
        var volumes = (spec["volumes"]?.sequence.map(Array.init) ?? []).filter { $0["name"]?.string != "ferry-config" }
        if let configMap {
            volumes.append(try compose("{name: ferry-config, configMap: {name: \(quoted(configMap))}}"))
        }
        if volumes.isEmpty {
            if case .mapping(var mapping) = spec { mapping["volumes"] = nil; spec = .mapping(mapping) }
        } else {
            spec["volumes"] = Node.sequence(Node.Sequence(volumes))
        }
        return "\(what): injected, \(mode.rawValue)\(appPort.map { ", app port \($0)" } ?? "")\(note)"
    }

    static func captureContainer(_ args: [String], image: String) throws -> Node {
        try compose("""
        name: ferry-capture
        image: \(quoted(image))
        args: [\(args.map(quoted).joined(separator: ", "))]
        resources:
          requests: {cpu: 10m, memory: 16Mi}
          limits: {memory: 64Mi}
        securityContext:
          runAsUser: 0
          runAsNonRoot: false
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {add: [NET_ADMIN, NET_RAW], drop: [ALL]}
        """)
    }

    static func sidecarContainer(_ args: [String], inbound: Bool, configMap: String?, options: Options) throws -> Node {
        var ports = ["{name: ferry-outbound, containerPort: \(options.outboundPort), protocol: TCP}"]
        if inbound { ports.append("{name: ferry-inbound, containerPort: \(options.inboundPort), protocol: TCP}") }
        ports.append("{name: ferry-admin, containerPort: \(options.adminPort), protocol: TCP}")
        var text = """
        name: ferry
        image: \(quoted(options.image))
        restartPolicy: Always
        args: [\(args.map(quoted).joined(separator: ", "))]
        ports: [\(ports.joined(separator: ", "))]
        startupProbe:
          httpGet: {path: /healthz, port: \(options.adminPort)}
          periodSeconds: 1
          failureThreshold: 30
        readinessProbe:
          httpGet: {path: /ready, port: \(options.adminPort)}
          periodSeconds: 5
        livenessProbe:
          httpGet: {path: /healthz, port: \(options.adminPort)}
          periodSeconds: 10
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {memory: 256Mi}
        securityContext:
          runAsUser: \(options.proxyUID)
          runAsGroup: \(options.proxyUID)
          runAsNonRoot: true
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        """
        if configMap != nil { text += "\nvolumeMounts: [{name: ferry-config, mountPath: /etc/ferry, readOnly: true}]" }
        return try compose(text)
    }

    // MARK: helpers

    static func compose(_ text: String) throws -> Node {
        guard let node = try Yams.compose(yaml: text) else { throw Failure(description: "internal: empty template") }
        return node
    }

    /// A YAML scalar that reads back as the same string.
    static func quoted(_ text: String) -> String {
        let plain = text.allSatisfy { $0.isLetter || $0.isNumber || "-_./".contains($0) } && !text.isEmpty && Int(text) == nil
            && !["true", "false", "yes", "no", "on", "off", "null", "~"].contains(text.lowercased())
        return plain ? text : "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func annotations(_ metadata: Node?) -> [String: String] {
        var out: [String: String] = [:]
        guard case .mapping(let mapping)? = metadata?["annotations"] else { return out }
        for (key, value) in mapping {
            if let k = key.string, let v = value.string { out[k] = v }
        }
        return out
    }

    /// The first TCP container port of the first container.
    static func firstPort(_ spec: Node) -> Int? {
        guard let container = spec["containers"]?.sequence?.first, let ports = container["ports"]?.sequence else { return nil }
        for port in ports where (port["protocol"]?.string ?? "TCP") == "TCP" {
            if let number = port["containerPort"]?.int { return number }
        }
        return nil
    }

    static func node(_ root: Node, _ path: [String]) -> Node? {
        var current: Node? = root
        for key in path { current = current?[key] }
        return current
    }

    static func set(_ root: Node, _ path: [String], _ value: Node) -> Node {
        guard let first = path.first else { return value }
        var root = root
        root[first] = set(root[first] ?? Node.mapping(Node.Mapping([])), Array(path.dropFirst()), value)
        return root
    }
}
