import FerryModel
import Yams

/// Reads Ferry's YAML configuration into a validated `ConfigSnapshot`, or refuses it with every problem found.
public enum ConfigLoader {
    /// Decodes `yaml`; `file` names it in diagnostics. Throws `ConfigError`.
    public static func decode(yaml: String, file: String, version: Int = 1) throws -> ConfigSnapshot {
        let context = DecodingContext(file: file)
        let root = try compose(yaml, file: file, ifEmpty: "the file is empty; it needs at least \"listeners\" and \"clusters\"")
        let snapshot: ConfigSnapshot?
        if isEnvoyBootstrap(root) {
            // An Envoy static bootstrap (`static_resources`): the subset Ferry reads, the rest refused by path.
            snapshot = EnvoyBootstrapDecoder(context: context).snapshot(ConfigNode(node: root, path: "", context: context), file: file, version: version)
        } else {
            snapshot = SnapshotDecoder(context: context).snapshot(ConfigNode(node: root, path: "", context: context), file: file, version: version)
        }
        if !context.diagnostics.isEmpty || snapshot == nil {
            throw ConfigError(context.diagnostics)
        }
        return snapshot!
    }

    /// Whether a YAML tree is an Envoy bootstrap rather than Ferry's own configuration.
    static func isEnvoyBootstrap(_ root: Node) -> Bool {
        if case .mapping(let mapping) = root { return mapping["static_resources"] != nil }
        return false
    }

    /// Reads and decodes the file at `path`. Throws `ConfigError` (also when the file cannot be read).
    public static func load(path: String, version: Int = 1) throws -> ConfigSnapshot {
        guard let yaml = FileReading.readText(path) else {
            throw ConfigError([ConfigDiagnostic(file: path, line: nil, column: nil, path: "", message: "cannot read the file; check that it exists and is readable")])
        }
        return try decode(yaml: yaml, file: path, version: version)
    }

    /// Reads a policy file for a shared API proxy: a list of rules (or `rules:` with one). Throws `ConfigError`.
    public static func kubernetesPolicy(path: String) throws -> KubernetesPolicy {
        guard let yaml = FileReading.readText(path) else {
            throw ConfigError([ConfigDiagnostic(file: path, line: nil, column: nil, path: "", message: "cannot read the file; check that it exists and is readable")])
        }
        let context = DecodingContext(file: path)
        let root = try compose(yaml, file: path, ifEmpty: "the policy file is empty; it lists rules such as {users: [alice], verbs: [get, list], resources: [pods]}")
        var node = ConfigNode(node: root, path: "", context: context)
        if case .mapping(let mapping) = root, let rules = mapping["rules"], mapping.count == 1 { node = node.child("rules", rules) }
        let policy = SnapshotDecoder(context: context).kubernetesPolicy(node)
        if !context.diagnostics.isEmpty || policy == nil { throw ConfigError(context.diagnostics) }
        return policy!
    }

    /// Reads a token file (`token,user[,uid[,"group1,group2"]]` per line). Throws `ConfigError`.
    public static func clientTokens(path: String) throws -> [String: ClientAuthentication.User] {
        guard let text = FileReading.readText(path) else {
            throw ConfigError([ConfigDiagnostic(file: path, line: nil, column: nil, path: "", message: "cannot read the token file")])
        }
        let (tokens, problems) = ClientAuthentication.parseTokens(text)
        if !problems.isEmpty { throw ConfigError(problems.map { ConfigDiagnostic(file: path, line: nil, column: nil, path: "", message: $0) }) }
        if tokens.isEmpty { throw ConfigError([ConfigDiagnostic(file: path, line: nil, column: nil, path: "", message: "the token file lists no tokens")]) }
        return tokens
    }

    /// The YAML tree of a file; a syntax error or an empty file becomes a `ConfigError`.
    static func compose(_ yaml: String, file: String, ifEmpty: String) throws -> Node {
        do {
            guard let composed = try Yams.compose(yaml: yaml) else {
                throw ConfigError([ConfigDiagnostic(file: file, line: nil, column: nil, path: "", message: ifEmpty)])
            }
            return composed
        } catch let error as YamlError {
            throw ConfigError([yamlDiagnostic(error, file: file)])
        }
    }

    static func yamlDiagnostic(_ error: YamlError, file: String) -> ConfigDiagnostic {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigDiagnostic(file: file, line: mark.line, column: mark.column, path: "", message: "YAML syntax: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigDiagnostic(file: file, line: context.mark.line, column: context.mark.column, path: "", message: "duplicate field(s) \(duplicates.joined(separator: ", ")); each field may appear once")
        default:
            return ConfigDiagnostic(file: file, line: nil, column: nil, path: "", message: "YAML syntax: \(error)")
        }
    }
}
