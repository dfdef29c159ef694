/// The Kubernetes objects read from manifests, by kind. Objects of other kinds are counted, not kept.
public struct ManifestSet: Sendable {
    public var ingresses: [Ingress] = []
    public var ingressClasses: [IngressClass] = []
    public var services: [Service] = []
    public var endpointSlices: [EndpointSlice] = []
    public var secrets: [Secret] = []
    /// `networking.k8s.io/v1` ServiceCIDR objects: the ranges ClusterIPs are allocated from.
    public var serviceCIDRs: [ServiceCIDR] = []
    /// Nodes (a service proxy reads its own).
    public var nodes: [ClusterNode] = []
    /// Pods (the egress proxy reads their addresses).
    public var pods: [Pod] = []
    /// `kind` → how many objects of it were skipped.
    public var skippedKinds: [String: Int] = [:]
    /// The files read, in order.
    public var files: [String] = []

    public init() {}

    public mutating func merge(_ other: ManifestSet) {
        ingresses += other.ingresses
        ingressClasses += other.ingressClasses
        services += other.services
        endpointSlices += other.endpointSlices
        secrets += other.secrets
        serviceCIDRs += other.serviceCIDRs
        nodes += other.nodes
        pods += other.pods
        skippedKinds.merge(other.skippedKinds, uniquingKeysWith: +)
        files += other.files
    }
}

/// One problem in a manifest: file, document, object and field.
public struct ManifestDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    /// 1-based; 0 when the problem is the file itself.
    public var document: Int
    /// `Ingress default/web`, or empty when the object could not be identified.
    public var object: String
    public var line: Int?
    public var field: String
    public var message: String

    public var description: String {
        var text = "\(file)"
        if let line { text += ":\(line)" }
        if document > 0 { text += ": document \(document)" }
        if !object.isEmpty { text += ": \(object)" }
        if !field.isEmpty { text += ": \(field)" }
        return text + ": " + message
    }
}

/// Thrown when manifests cannot be used; lists every problem found.
public struct ManifestError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ManifestDiagnostic]
    public init(_ diagnostics: [ManifestDiagnostic]) {
        self.diagnostics = diagnostics
    }
    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}
