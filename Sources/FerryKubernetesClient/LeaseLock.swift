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

/// Kubernetes' MicroTime: RFC 3339 in UTC with microseconds.
public enum MicroTime {
    /// Now, as a duration since the Unix epoch.
    public static var now: Duration {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return .seconds(spec.tv_sec) + .nanoseconds(spec.tv_nsec)
    }

    public static func format(_ sinceEpoch: Duration) -> String {
        let (seconds, attoseconds) = sinceEpoch.components
        let micros = attoseconds / 1_000_000_000_000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let fraction = String(micros)
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))."
            + String(repeating: "0", count: max(0, 6 - fraction.count)) + fraction + "Z"
    }

    /// `2026-12-06T00:45:15.123456Z` (or without a fraction, or with an offset of Z only).
    public static func parse(_ text: String) -> Duration? {
        let main = text.prefix(19)
        let fields = main.split(whereSeparator: { "-T:".contains($0) }).compactMap { Int32($0) }
        guard fields.count == 6, text.hasSuffix("Z") else { return nil }
        var parts = tm()
        parts.tm_year = fields[0] - 1900
        parts.tm_mon = fields[1] - 1
        parts.tm_mday = fields[2]
        parts.tm_hour = fields[3]
        parts.tm_min = fields[4]
        parts.tm_sec = fields[5]
        let seconds = timegm(&parts)
        var micros: Int64 = 0
        if let dot = text.firstIndex(of: ".") {
            let digits = text[text.index(after: dot)...].prefix { $0.isNumber }.prefix(6)
            micros = (Int64(digits) ?? 0) * Int64(pow(10.0, Double(6 - digits.count)))
        }
        return .seconds(Int64(seconds)) + .microseconds(micros)
    }
}
