import NIOConcurrencyHelpers

/// Holds the snapshot in force. Readers take a reference (one uncontended lock); a reload swaps it whole.
public final class SnapshotStore: Sendable {
    private let box: NIOLockedValueBox<CompiledSnapshot>

    public init(_ initial: CompiledSnapshot) {
        self.box = NIOLockedValueBox(initial)
    }

    public var current: CompiledSnapshot {
        box.withLockedValue { $0 }
    }

    public func publish(_ snapshot: CompiledSnapshot) {
        box.withLockedValue { $0 = snapshot }
    }
}
