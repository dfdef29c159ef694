import FerryModel

/// v1 Pod, as the egress proxy reads it: which addresses belong to which Pod (namespace, name, labels).
public struct Pod: Sendable {
    public var metadata: ObjectMeta
    /// `status.podIPs` (else `status.podIP`): empty until the Pod is scheduled and has its network.
    public var ips: [IPAddress] = []
    /// `spec.hostNetwork`: its address is the node's, shared with others, so it names no Pod.
    public var hostNetwork = false
    /// `status.phase`: `Succeeded` and `Failed` Pods no longer hold their addresses.
    public var phase = ""

    public init(metadata: ObjectMeta) {
        self.metadata = metadata
    }

    /// Whether its addresses identify it now.
    public var holdsAddresses: Bool { !hostNetwork && phase != "Succeeded" && phase != "Failed" && !ips.isEmpty }
}

/// Client address → Pod, from the Pods of a cluster (the newest Pod wins an address two claim: a Pod that
/// ended and one that took its address over).
public enum PodAddressTable {
    public static func build(_ pods: [Pod]) -> [IPAddress: SourceIdentity] {
        var table: [IPAddress: (identity: SourceIdentity, version: Int)] = [:]
        for pod in pods where pod.holdsAddresses {
            let identity = SourceIdentity(namespace: pod.metadata.namespace, pod: pod.metadata.name, labels: pod.metadata.labels)
            let version = Int(pod.metadata.resourceVersion ?? "") ?? 0
            for ip in pod.ips where (table[ip]?.version ?? -1) < version {
                table[ip] = (identity, version)
            }
        }
        return table.mapValues(\.identity)
    }
}
