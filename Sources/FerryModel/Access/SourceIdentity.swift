/// Which workload a client address belongs to: the Pod that holds it, as the Kubernetes API last said.
public struct SourceIdentity: Sendable, Hashable {
    public var namespace: String
    public var pod: String
    public var labels: [String: String]

    public init(namespace: String, pod: String, labels: [String: String] = [:]) {
        self.namespace = namespace
        self.pod = pod
        self.labels = labels
    }
}

/// Looks up the Pod behind a client address (kept current by a watch of Pods); nil: unknown, and rules that
/// select namespaces or Pod labels do not apply to it.
public protocol SourceIdentityLookup: Sendable {
    func identity(of address: IPAddress) -> SourceIdentity?
}
