import Yams

/// Collects the problems of one manifest document; the object name is filled in once known.
final class ManifestReporter {
    let file: String
    let document: Int
    var object = ""
    private(set) var diagnostics: [ManifestDiagnostic] = []

    init(file: String, document: Int) {
        self.file = file
        self.document = document
    }

    func report(line: Int?, field: String, _ message: String) {
        diagnostics.append(ManifestDiagnostic(file: file, document: document, object: object, line: line, field: field, message: message))
    }
}

/// A YAML node with its field path inside a Kubernetes object. Unlike Ferry's own configuration, unknown
/// fields are allowed (manifests carry status, managedFields and much else); wrong types are reported.
struct ManifestNode {
    let node: Node?
    let path: String
    let reporter: ManifestReporter
    /// The line of the nearest enclosing node, for a field that is missing.
    var parentLine: Int? = nil

    var line: Int? { node?.mark.map { $0.line } ?? parentLine }
    var exists: Bool {
        guard let node else { return false }
        if case .scalar(let s) = node, s.style == .plain, s.string == "null" || s.string == "~" || s.string.isEmpty { return false }
        return true
    }

    func error(_ message: String) {
        reporter.report(line: line, field: path, message)
    }

    subscript(key: String) -> ManifestNode {
        // By the key's text: Yams' own `mapping[key]` compares Nodes, resolving each key's tag with a
        // regular expression, which made decoding large lists from the API server slow.
        var child: Node?
        if case .mapping(let mapping)? = node {
            for (k, v) in mapping {
                if case .scalar(let scalar) = k, scalar.string == key {
                    child = v
                    break
                }
            }
        }
        return ManifestNode(node: child, path: path.isEmpty ? key : "\(path).\(key)", reporter: reporter, parentLine: line)
    }

    /// A string scalar; nil (after an error) when something else is there.
    var string: String? {
        guard exists, let node else { return nil }
        guard case .scalar(let scalar) = node else {
            error("expected a string")
            return nil
        }
        return scalar.string
    }

    func requiredString(_ hint: String) -> String? {
        guard exists else {
            error("is required (\(hint))")
            return nil
        }
        guard let s = string, !s.isEmpty else {
            if node?.scalar != nil { error("must not be empty (\(hint))") }
            return nil
        }
        return s
    }

    var int: Int? {
        guard exists, let node else { return nil }
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else {
            error("expected an integer")
            return nil
        }
        return value
    }

    var bool: Bool? {
        guard exists, let node else { return nil }
        guard case .scalar(let scalar) = node else {
            error("expected true or false")
            return nil
        }
        switch scalar.string {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            error("expected true or false, not \"\(scalar.string)\"")
            return nil
        }
    }

    /// Items of a list (empty when absent).
    var items: [ManifestNode] {
        guard exists, let node else { return [] }
        guard case .sequence(let sequence) = node else {
            error("expected a list")
            return []
        }
        return sequence.enumerated().map { ManifestNode(node: $1, path: "\(path)[\($0)]", reporter: reporter) }
    }

    /// A string-to-string map such as labels or annotations (empty when absent).
    var stringMap: [String: String] {
        guard exists, let node else { return [:] }
        guard case .mapping(let mapping) = node else {
            error("expected a map of strings")
            return [:]
        }
        var result: [String: String] = [:]
        for (key, value) in mapping {
            guard let k = key.scalar?.string else { continue }
            guard let v = value.scalar?.string else {
                self[k].error("expected a string value (quote it)")
                continue
            }
            result[k] = v
        }
        return result
    }

    var isMapping: Bool { node?.mapping != nil }
}
