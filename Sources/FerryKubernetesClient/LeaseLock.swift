import FerryKubernetes
import Foundation

/// A `coordination.k8s.io/v1` Lease read and written for leader election: `LeaseRecord` times are durations
/// since the Unix epoch, written as the Lease's MicroTime (`2026-12-06T00:45:15.123456Z`).
public struct LeaseLock: Sendable {
    let api: APIClient
    public let namespace: String
    public let name: String

    public init(api: APIClient, namespace: String, name: String) {
        self.api = api
        self.namespace = namespace
        self.name = name
    }

    var collectionPath: String { "/apis/coordination.k8s.io/v1/namespaces/\(namespace)/leases" }
    var path: String { "\(collectionPath)/\(name)" }
    /// For messages: `Lease ferry/ferry-ingress-leader`.
    public var described: String { "Lease \(namespace)/\(name)" }

    /// The Lease as it is now, with the resourceVersion to update it at; nil when it does not exist.
    public func read() async throws -> (record: LeaseRecord, resourceVersion: String)? {
        guard let object = try await api.get(path) else { return nil }
        let spec = object["spec"] as? [String: Any] ?? [:]
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        let record = LeaseRecord(
            holderIdentity: spec["holderIdentity"] as? String,
            leaseDurationSeconds: (spec["leaseDurationSeconds"] as? Int) ?? 0,
            acquireTime: (spec["acquireTime"] as? String).flatMap(MicroTime.parse) ?? .zero,
            renewTime: (spec["renewTime"] as? String).flatMap(MicroTime.parse) ?? .zero,
            leaseTransitions: (spec["leaseTransitions"] as? Int) ?? 0)
        return (record, metadata["resourceVersion"] as? String ?? "")
    }

    public func create(_ record: LeaseRecord) async throws {
        try await api.create(collectionPath, object(record, resourceVersion: nil))
    }

    /// Writes `record` over the Lease read at `resourceVersion` (a `409` when another replica wrote first).
    public func update(_ record: LeaseRecord, resourceVersion: String) async throws {
        try await api.replace(path, object(record, resourceVersion: resourceVersion))
    }

    func object(_ record: LeaseRecord, resourceVersion: String?) -> [String: Any] {
        var metadata: [String: Any] = ["name": name, "namespace": namespace]
        if let resourceVersion { metadata["resourceVersion"] = resourceVersion }
        return [
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
            "spec": [
                "holderIdentity": record.holderIdentity ?? "",
                "leaseDurationSeconds": record.leaseDurationSeconds,
                "acquireTime": MicroTime.format(record.acquireTime),
                "renewTime": MicroTime.format(record.renewTime),
                "leaseTransitions": record.leaseTransitions,
            ] as [String: Any],
        ]
    }
}
