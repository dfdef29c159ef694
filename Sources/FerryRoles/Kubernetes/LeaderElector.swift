import FerryKubernetes
import FerryKubernetesClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Leader election on a Lease, as client-go's `leaderelection` runs it: every `retryPeriod` (with up to 20 %
/// jitter) the Lease is read and `LeaderElection` says what to write; a leader that cannot renew within
/// `renewDeadline` stops leading at once; on graceful shutdown a leader releases the Lease (holder "" and
/// 1 s), so another replica takes over without waiting for it to expire. Every replica keeps serving; only
/// the work that must happen once (status writes) asks `isLeader`. An Event on the Lease says who became
/// leader and who stopped.
public final class LeaderElector: ServiceLifecycle.Service, Sendable {
    let lock: LeaseLock
    let events: EventRecorder?
    let logger: Logger
    let state: NIOLockedValueBox<LeaderElection>
    let onChange: @Sendable (Bool) -> Void

    public init(lock: LeaseLock, identity: String, events: EventRecorder?, logger: Logger,
                leaseDuration: Duration = .seconds(15), renewDeadline: Duration = .seconds(10), retryPeriod: Duration = .seconds(2),
                onChange: @escaping @Sendable (Bool) -> Void = { _ in }) {
        var election = LeaderElection(identity: identity)
        election.leaseDuration = leaseDuration
        election.renewDeadline = renewDeadline
        election.retryPeriod = retryPeriod
        self.lock = lock
        self.events = events
        self.logger = logger
        self.state = NIOLockedValueBox(election)
        self.onChange = onChange
    }

    public var identity: String { state.withLockedValue { $0.identity } }
    public var isLeader: Bool { state.withLockedValue { $0.isLeader } }

    /// A replica's identity: the Pod's name (`POD_NAME`, from the downward API) or the host name, with a
    /// random suffix so that two processes on one host are two candidates.
    public static func defaultIdentity() -> String {
        if let pod = ProcessInfo.processInfo.environment["POD_NAME"], !pod.isEmpty { return pod }
        return ProcessInfo.processInfo.hostName + "_" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
    }

    public func run() async throws {
        let retry = state.withLockedValue { $0.retryPeriod }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.tryAcquireOrRenew()
                let jitter = Double.random(in: 0...0.2)
                try? await Task.sleep(for: retry + retry * jitter)
            }
        }
        await release()
    }

    /// One round: read, decide, write, and report a change of leadership.
    func tryAcquireOrRenew() async {
        let wasLeader = isLeader
        do {
            let current = try await lock.read()
            let action = state.withLockedValue { $0.attempt(read: current?.record, now: MicroTime.now) }
            switch action {
            case .wait:
                break
            case .create(let record):
                try await lock.create(record)
                state.withLockedValue { $0.wrote(record, now: MicroTime.now) }
            case .update(let record):
                try await lock.update(record, resourceVersion: current?.resourceVersion ?? "")
                state.withLockedValue { $0.wrote(record, now: MicroTime.now) }
            }
        } catch {
            let lost = state.withLockedValue { $0.failed(now: MicroTime.now) }
            if lost { logger.warning("\(lock.described): could not renew within the renew deadline (\(error)); stopped leading") }
        }
        let leads = isLeader
        guard leads != wasLeader else { return }
        let identity = self.identity
        logger.info("\(lock.described): \(identity) \(leads ? "became leader" : "stopped leading")")
        onChange(leads)
        await events?.record(ObjectReference(kind: "Lease", apiVersion: "coordination.k8s.io/v1", namespace: lock.namespace, name: lock.name),
                             type: "Normal", reason: "LeaderElection", message: "\(identity) \(leads ? "became leader" : "stopped leading")")
    }

    /// Gives the Lease up if this replica holds it (retried once on a conflict).
    func release() async {
        guard let record = state.withLockedValue({ $0.release(now: MicroTime.now) }) else { return }
        onChange(false)
        for _ in 0..<2 {
            do {
                guard let current = try await lock.read(), current.record.holderIdentity == identity else { return }
                var released = record
                released.leaseTransitions = current.record.leaseTransitions
                try await lock.update(released, resourceVersion: current.resourceVersion)
                logger.info("\(lock.described): released by \(identity)")
                return
            } catch let error as APIRequestError where error.isConflict {
                continue
            } catch {
                logger.warning("\(lock.described): cannot release (\(error)); it expires by itself")
                return
            }
        }
    }
}
