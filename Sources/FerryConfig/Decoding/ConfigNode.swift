import FerryModel
import Yams

/// A YAML node with its field path, read through typed accessors that record diagnostics instead of
/// throwing, so that one pass reports every problem in a file.
struct ConfigNode {
    let node: Node
    let path: String
    let context: DecodingContext

    var line: Int? { node.mark.map { $0.line } }
    var column: Int? { node.mark.map { $0.column } }

    func error(_ message: String) {
        context.report(ConfigDiagnostic(file: context.file, line: line, column: column, path: path, message: message))
    }

    func child(_ key: String, _ node: Node) -> ConfigNode {
        ConfigNode(node: node, path: path.isEmpty ? key : "\(path).\(key)", context: context)
    }

    /// The fields of a mapping, refusing unknown keys with a did-you-mean. Nil (after a diagnostic) when not a mapping.
    func fields(allowed: [String]) -> Fields? {
        guard case .mapping(let mapping) = node else {
            error("expected a mapping with fields \(allowed.joined(separator: ", "))")
            return nil
        }
        var values: [String: ConfigNode] = [:]
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.scalar?.string else {
                error("field names must be plain strings")
                continue
            }
            let child = self.child(key, valueNode)
            if !allowed.contains(key) {
                let keyPosition = ConfigNode(node: keyNode, path: child.path, context: context)
                if let suggestion = Suggestion.closest(to: key, among: allowed) {
                    keyPosition.error("unknown field \"\(key)\"; did you mean \"\(suggestion)\"?")
                } else {
                    keyPosition.error("unknown field \"\(key)\"; expected one of: \(allowed.joined(separator: ", "))")
                }
                continue
            }
            values[key] = child
        }
        return Fields(owner: self, values: values)
    }

    /// The items of a sequence. Nil (after a diagnostic) when not a sequence.
    func items(_ what: String) -> [ConfigNode]? {
        guard case .sequence(let sequence) = node else {
            error("expected a list of \(what)")
            return nil
        }
        return sequence.enumerated().map { index, item in
            ConfigNode(node: item, path: "\(path)[\(index)]", context: context)
        }
    }

    var isNull: Bool {
        if case .scalar(let s) = node, s.tag.rawValue == Tag.Name.null.rawValue || (s.style == .plain && ["", "~", "null"].contains(s.string)) {
            return true
        }
        return false
    }

    func string() -> String? {
        guard case .scalar(let scalar) = node, !isNull else {
            error("expected a string")
            return nil
        }
        return scalar.string
    }

    func int(in range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else {
            error("expected a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        guard range.contains(value) else {
            error("\(value) is out of range; expected \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

    func bool() -> Bool? {
        guard case .scalar(let scalar) = node else {
            error("expected true or false")
            return nil
        }
        switch scalar.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error("expected true or false, got \"\(scalar.string)\"")
            return nil
        }
    }

    /// `250ms`, `15s`, `2m`, `1h`.
    func duration() -> Duration? {
        guard case .scalar(let scalar) = node, let value = DurationText.parse(scalar.string) else {
            error("expected a duration such as 250ms, 15s, 2m or 1h")
            return nil
        }
        return value
    }

    /// A byte size: a whole number or one with a unit (`16KiB`, `1MiB`, `512`).
    func byteSize() -> Int? {
        guard case .scalar(let scalar) = node else {
            error("expected a size such as 16384, 16KiB or 1MiB")
            return nil
        }
        let text = scalar.string
        let units: [(String, Int)] = [("KiB", 1024), ("MiB", 1024 * 1024), ("GiB", 1024 * 1024 * 1024), ("B", 1)]
        for (unit, factor) in units where text.hasSuffix(unit) {
            if let n = Int(text.dropLast(unit.count)), n > 0 { return n * factor }
        }
        if let n = Int(text), n > 0 { return n }
        error("expected a size such as 16384, 16KiB or 1MiB, got \"\(text)\"")
        return nil
    }

    func hostPort() -> HostPort? {
        guard let text = string() else { return nil }
        guard let value = HostPort(parsing: text) else {
            error("expected host:port (\"127.0.0.1:8080\", \"[::1]:8080\"), got \"\(text)\"")
            return nil
        }
        return value
    }
}

/// The known fields of one mapping.
struct Fields {
    let owner: ConfigNode
    let values: [String: ConfigNode]

    subscript(key: String) -> ConfigNode? {
        values[key]
    }

    /// A required field; reports it missing otherwise.
    func required(_ key: String, _ hint: String) -> ConfigNode? {
        if let value = values[key] { return value }
        owner.error("missing field \"\(key)\": \(hint)")
        return nil
    }
}

/// Collects diagnostics for one file.
final class DecodingContext {
    let file: String
    private(set) var diagnostics: [ConfigDiagnostic] = []

    init(file: String) {
        self.file = file
    }

    func report(_ diagnostic: ConfigDiagnostic) {
        diagnostics.append(diagnostic)
    }
}
