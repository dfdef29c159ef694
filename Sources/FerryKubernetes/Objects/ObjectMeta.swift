/// The parts of a Kubernetes object's `metadata` that Ferry reads.
public struct ObjectMeta: Sendable, Hashable {
    public var name: String
    /// `default` when the manifest leaves it out, as `kubectl apply` would.
    public var namespace: String
    public var annotations: [String: String]
    public var labels: [String: String]
    /// RFC 3339 text as the API server writes it (`2024-05-01T10:00:00Z`); nil in hand-written manifests.
    public var creationTimestamp: String?
    /// The API server's version of the object (opaque; compared for equality only); nil in manifests.
    public var resourceVersion: String?
    /// `metadata.uid`, which Events name their object by.
    public var uid: String?

    public init(name: String, namespace: String = "default", annotations: [String: String] = [:], labels: [String: String] = [:], creationTimestamp: String? = nil, resourceVersion: String? = nil) {
        self.resourceVersion = resourceVersion
        self.name = name
        self.namespace = namespace
        self.annotations = annotations
        self.labels = labels
        self.creationTimestamp = creationTimestamp
    }

    /// `namespace/name`.
    public var key: String { "\(namespace)/\(name)" }
}

/// Where an object was read from, for messages.
public struct ManifestOrigin: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    /// 1-based index of the YAML document in the file (the item index inside a `List`).
    public var document: Int

    public init(file: String, document: Int) {
        self.file = file
        self.document = document
    }

    public var description: String { "\(file) document \(document)" }
}
