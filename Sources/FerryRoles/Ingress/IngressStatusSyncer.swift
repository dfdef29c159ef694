import FerryKubernetes
import FerryKubernetesClient
import FerryModel
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The cluster-facing side of `ferry ingress` on the API, run by the leader only (every replica serves):
/// writes `status.loadBalancer.ingress` of every Ingress Ferry serves (ingress-nginx's `--publish-service`
/// and `--publish-status-address`, through the status subresource, a `409` retried on a fresh read), and
/// sends a Warning Event on each Ingress Ferry refuses or serves only in part. It syncs when the Ingresses
/// are translated again (checked every second), when it becomes leader, and every `interval`. On shutdown, with
/// `--update-status-on-shutdown`, it clears the addresses it wrote — but only when they are a single
/// address, as ingress-nginx does (several addresses mean other replicas still answer on them).
public final class IngressStatusSyncer: ServiceLifecycle.Service, Sendable {
    public enum Publish: Sendable {
        /// `--publish-service NAMESPACE/NAME`.
        case service(namespace: String, name: String)
        /// `--publish-status-address`.
        case addresses([LoadBalancerAddress])
        /// Neither: no status is written (Events still are).
        case none
    }

    let api: APIClient
    let caches: KubernetesCaches
    let translations: IngressTranslations
    let elector: LeaderElector?
    let publish: Publish
    let updateOnShutdown: Bool
    let events: EventRecorder?
    let logger: Logger
    let interval: Duration
    private let published = NIOLockedValueBox<[LoadBalancerAddress]?>(nil)

    public init(api: APIClient, caches: KubernetesCaches, translations: IngressTranslations, elector: LeaderElector?, publish: Publish,
                updateOnShutdown: Bool, events: EventRecorder?, logger: Logger, interval: Duration = .seconds(60)) {
        self.api = api
        self.caches = caches
        self.translations = translations
        self.elector = elector
        self.publish = publish
        self.updateOnShutdown = updateOnShutdown
        self.events = events
        self.logger = logger
        self.interval = interval
    }

    var leads: Bool { elector?.isLeader ?? true }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            let clock = ContinuousClock()
            var synced: (version: Int, at: ContinuousClock.Instant)?
            while !Task.isCancelled {
                if self.leads {
                    // A new translation (made when the caches changed) is a reason to sync.
                    let version = self.translations.version
                    if synced == nil || synced!.version != version || clock.now - synced!.at >= self.interval {
                        await self.sync()
                        synced = (version, clock.now)
                    }
                } else {
                    synced = nil
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        await clearOnShutdown()
    }

    /// One pass: every served Ingress whose addresses differ is written; Events for the problems found.
    func sync() async {
        guard let (translation, ingresses) = translations.latest else { return }
        let served = Set(translation.selection.filter(\.selected).map(\.ingress))
        if let events {
            let byKey = Dictionary(ingresses.map { ($0.metadata.key, $0) }, uniquingKeysWith: { a, _ in a })
            for event in translation.events {
                await events.record(reference(event.ingress, uid: byKey[event.ingress]?.metadata.uid), type: "Warning", reason: event.reason, message: event.message)
            }
            for refused in caches.refused where refused.kind == "Ingress" {
                await events.record(reference(refused.key, uid: nil), type: "Warning", reason: "Invalid", message: "Ferry cannot read this Ingress: \(refused.problem)")
            }
        }
        guard let addresses = await addresses() else { return }
        if published.withLockedValue({ $0 }) != addresses {
            logger.info("Ingress status: publishing \(addresses.isEmpty ? "no address" : addresses.map(\.description).joined(separator: ", "))")
            published.withLockedValue { $0 = addresses }
        }
        for ingress in IngressStatus.outdated(ingresses, served: served, addresses: addresses) where leads {
            await write(ingress.metadata.namespace, ingress.metadata.name, addresses: addresses)
        }
    }

    func reference(_ key: String, uid: String?) -> ObjectReference {
        let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
        return ObjectReference(kind: "Ingress", apiVersion: "networking.k8s.io/v1", namespace: parts.first ?? "", name: parts.count > 1 ? parts[1] : "", uid: uid)
    }

    /// What to publish now; nil when nothing is to be written (no flag, or the Service cannot be read).
    func addresses() async -> [LoadBalancerAddress]? {
        switch publish {
        case .none:
            return nil
        case .addresses(let list):
            return list
        case .service(let namespace, let name):
            do {
                guard let object = try await api.get("/api/v1/namespaces/\(namespace)/services/\(name)") else {
                    logger.warning("--publish-service \(namespace)/\(name): no such Service; Ingress status is not written")
                    return nil
                }
                let json = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
                let event = try WatchEventDecoder.decode(line: "{\"type\":\"ADDED\",\"object\":\(json)}")
                guard case .service(let service)? = event.object else { throw KubernetesSourceError(description: event.problem ?? "not a Service") }
                return IngressStatus.addresses(of: service)
            } catch {
                logger.warning("--publish-service \(namespace)/\(name): \(error); Ingress status is not written now")
                return nil
            }
        }
    }

    /// Writes one Ingress's status: read, compare, replace the status subresource; a conflict reads again.
    func write(_ namespace: String, _ name: String, addresses: [LoadBalancerAddress]) async {
        let path = "/apis/networking.k8s.io/v1/namespaces/\(namespace)/ingresses/\(name)"
        for _ in 0..<5 {
            do {
                guard var object = try await api.get(path) else { return }
                let current = (((object["status"] as? [String: Any])?["loadBalancer"] as? [String: Any])?["ingress"] as? [[String: Any]] ?? [])
                    .map { LoadBalancerAddress(ip: $0["ip"] as? String, hostname: $0["hostname"] as? String) }
                if current.sorted() == addresses { return }
                object["status"] = ["loadBalancer": ["ingress": addresses.map(\.json)]]
                try await api.replace(path + "/status", object)
                return
            } catch let error as APIRequestError where error.isConflict {
                continue
            } catch {
                logger.warning("Ingress \(namespace)/\(name): cannot write its status: \(error)")
                return
            }
        }
        logger.warning("Ingress \(namespace)/\(name): its status kept changing under five writes; trying again at the next sync")
    }

    /// `--update-status-on-shutdown`: the leader clears what it published, unless other replicas answer on it.
    func clearOnShutdown() async {
        guard updateOnShutdown, leads else { return }
        // A leader stopped before its first sync still knows what the leader before it published.
        let known = published.withLockedValue { $0 }
        guard let addresses = known == nil ? await addresses() : known else { return }
        guard addresses.count <= 1 else {
            logger.info("Ingress status: \(addresses.count) addresses published; leaving status update for next leader")
            return
        }
        guard let (translation, _) = translations.latest else { return }
        for key in translation.selection.filter(\.selected).map(\.ingress) {
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            await write(parts[0], parts[1], addresses: [])
        }
        logger.info("Ingress status: cleared on shutdown")
    }
}

/// The last translation of the cluster's Ingresses and the Ingresses it was made from, shared by the
/// configuration source (which makes it on each change) and the status syncer (which reads which Ingresses
/// are served, their current status and what is wrong with them) — one read of the caches per change.
public final class IngressTranslations: Sendable {
    private let box = NIOLockedValueBox<(latest: (translation: IngressTranslation, ingresses: [Ingress])?, version: Int)>((nil, 0))
    public init() {}
    public var latest: (translation: IngressTranslation, ingresses: [Ingress])? { box.withLockedValue { $0.latest } }
    /// Moves with every translation.
    var version: Int { box.withLockedValue { $0.version } }
    func set(_ translation: IngressTranslation, ingresses: [Ingress]) {
        box.withLockedValue { $0 = ((translation, ingresses), $0.version + 1) }
    }
}
