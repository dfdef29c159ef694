import FerryKubernetes
import Foundation
import Logging
import NIOConcurrencyHelpers

/// The object an Event is about.
public struct ObjectReference: Sendable, Hashable {
    public var kind: String
    public var apiVersion: String
    public var namespace: String
    public var name: String
    public var uid: String?

    public init(kind: String, apiVersion: String, namespace: String, name: String, uid: String? = nil) {
        self.kind = kind
        self.apiVersion = apiVersion
        self.namespace = namespace
        self.name = name
        self.uid = uid
    }

    public var key: String { "\(kind) \(namespace)/\(name)" }
}

/// Writes core/v1 Events about objects (what `kubectl describe` shows under Events), limited by
/// `EventLimiter`; a failed write is logged once and dropped, never retried (Events are best effort).
public final class EventRecorder: Sendable {
    let api: APIClient
    /// `source.component` and `reportingController` (`ferry-ingress`).
    public let component: String
    /// `reportingInstance`: this replica.
    public let instance: String
    let logger: Logger
    private let limiter = NIOLockedValueBox((limiter: EventLimiter(), failing: false))

    public init(api: APIClient, component: String, instance: String, logger: Logger) {
        self.api = api
        self.component = component
        self.instance = instance
        self.logger = logger
    }

    /// Sends the Event unless the limiter holds it back; `type` is `Normal` or `Warning`.
    public func record(_ object: ObjectReference, type: String, reason: String, message: String) async {
        let now = MicroTime.now
        guard limiter.withLockedValue({ $0.limiter.admit(object: object.key, type: type, reason: reason, message: message, now: now) }) else { return }
        let stamp = MicroTime.format(now)
        let seconds = String(stamp.prefix(19)) + "Z"
        var involved: [String: Any] = ["kind": object.kind, "apiVersion": object.apiVersion, "namespace": object.namespace, "name": object.name]
        if let uid = object.uid { involved["uid"] = uid }
        let suffix = String(UInt64(now.components.seconds) &* 1_000_000 &+ UInt64(now.components.attoseconds / 1_000_000_000_000), radix: 16)
        let event: [String: Any] = [
            "apiVersion": "v1", "kind": "Event",
            "metadata": ["name": "\(object.name).\(suffix)", "namespace": object.namespace],
            "involvedObject": involved,
            "type": type, "reason": reason, "message": message,
            "source": ["component": component],
            "reportingComponent": component, "reportingInstance": instance,
            "firstTimestamp": seconds, "lastTimestamp": seconds, "count": 1,
        ]
        do {
            try await api.create("/api/v1/namespaces/\(object.namespace)/events", event)
            if limiter.withLockedValue({ $0.failing }) {
                limiter.withLockedValue { $0.failing = false }
                logger.info("writing Events works again")
            }
        } catch {
            let first = limiter.withLockedValue { s -> Bool in
                defer { s.failing = true }
                return !s.failing
            }
            if first { logger.warning("cannot write an Event (\(reason) on \(object.key)): \(error); Events are dropped until writing works again") }
        }
    }
}
