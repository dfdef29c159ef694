/// A `coordination.k8s.io/v1` Lease as leader election reads and writes it. Times are durations since a
/// fixed origin; the I/O side turns them into the Lease's MicroTime fields.
public struct LeaseRecord: Sendable, Hashable {
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int
    public var acquireTime: Duration
    public var renewTime: Duration
    public var leaseTransitions: Int

    public init(holderIdentity: String?, leaseDurationSeconds: Int, acquireTime: Duration, renewTime: Duration, leaseTransitions: Int) {
        self.holderIdentity = holderIdentity
        self.leaseDurationSeconds = leaseDurationSeconds
        self.acquireTime = acquireTime
        self.renewTime = renewTime
        self.leaseTransitions = leaseTransitions
    }
}

/// client-go's leader election (`tools/leaderelection`) as a pure state machine: every `retryPeriod` the
/// replica reads the Lease and `attempt` says what to write; the I/O side writes it (create, or update
/// with the read resourceVersion) and reports the outcome. A Lease held by another replica is respected
/// until `leaseDuration` has passed since this replica last *saw it change* (its own clock, as client-go
/// does, so clock skew between nodes does not matter). A leader that cannot renew within
/// `renewDeadline` of its last renewal stops leading at once. Defaults: 15 s, 10 s, 2 s.
public struct LeaderElection: Sendable {
    public enum Action: Sendable, Hashable {
        /// No Lease yet: create this one.
        case create(LeaseRecord)
        /// Write this record over the one read (renew, or take over an expired Lease).
        case update(LeaseRecord)
        /// Another replica holds a valid Lease: try again after `retryPeriod`.
        case wait
    }

    public let identity: String
    public var leaseDuration: Duration = .seconds(15)
    public var renewDeadline: Duration = .seconds(10)
    public var retryPeriod: Duration = .seconds(2)

    public private(set) var isLeader = false
    /// The record last read or written, and when (this replica's clock) it was first seen as it is.
    private var observed: LeaseRecord?
    private var observedAt: Duration = .zero
    private var lastRenewal: Duration?

    public init(identity: String) {
        self.identity = identity
    }

    /// What to do with the Lease as just read at `now` (nil: it does not exist).
    public mutating func attempt(read current: LeaseRecord?, now: Duration) -> Action {
        let seconds = Int(leaseDuration.components.seconds)
        guard let current else {
            return .create(LeaseRecord(holderIdentity: identity, leaseDurationSeconds: seconds, acquireTime: now, renewTime: now, leaseTransitions: 0))
        }
        if current != observed {
            observed = current
            observedAt = now
        }
        let heldByOther = current.holderIdentity.map { !$0.isEmpty && $0 != identity } ?? false
        let duration = Duration.seconds(max(1, current.leaseDurationSeconds))
        if heldByOther && observedAt + duration > now {
            if isLeader { isLeader = false }
            return .wait
        }
        var next = current
        next.leaseDurationSeconds = seconds
        next.renewTime = now
        if current.holderIdentity != identity {
            next.holderIdentity = identity
            next.acquireTime = now
            next.leaseTransitions = current.leaseTransitions + 1
        }
        return .update(next)
    }

    /// The write of `record` succeeded at `now`: this replica leads.
    public mutating func wrote(_ record: LeaseRecord, now: Duration) {
        observed = record
        observedAt = now
        lastRenewal = now
        isLeader = true
    }

    /// A read or write failed (or lost a conflict) at `now`. Returns true when this replica just stopped
    /// leading: it could not renew within `renewDeadline`.
    public mutating func failed(now: Duration) -> Bool {
        guard isLeader, let last = lastRenewal, now - last >= renewDeadline else { return false }
        isLeader = false
        return true
    }

    /// Leadership given up (shutdown): the Lease to write so that another replica takes over at once,
    /// as client-go's `ReleaseOnCancel` does; nil when this replica does not lead.
    public mutating func release(now: Duration) -> LeaseRecord? {
        guard isLeader, var record = observed else { return nil }
        isLeader = false
        record.holderIdentity = ""
        record.leaseDurationSeconds = 1
        record.renewTime = now
        return record
    }
}
