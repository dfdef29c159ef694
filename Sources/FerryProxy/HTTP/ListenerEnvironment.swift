import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// What every downstream connection of a listener shares with the server.
final class ListenerEnvironment: Sendable {
    let listenerName: String
    let store: SnapshotStore
    let metrics: ProxyMetrics
    let accessLog: AccessLogWriter
    let loops: LoopLocals
    /// The snapshot at the time the listener was bound: used when a newer snapshot no longer has this listener (it is draining).
    let boundSnapshot: CompiledSnapshot
    /// Open downstream connections of this listener, across event loops.
    let openConnections = Atomic<Int>(0)
    /// How upstream connections are made (sockets, or a test's own channels).
    let connector: any UpstreamConnector

    init(listenerName: String, store: SnapshotStore, metrics: ProxyMetrics, accessLog: AccessLogWriter, loops: LoopLocals, boundSnapshot: CompiledSnapshot,
         connector: any UpstreamConnector = SocketConnector()) {
        self.connector = connector
        self.listenerName = listenerName
        self.store = store
        self.metrics = metrics
        self.accessLog = accessLog
        self.loops = loops
        self.boundSnapshot = boundSnapshot
    }

    /// This listener's compiled form in `snapshot`, or in the snapshot it was bound with when a newer one dropped it.
    func resolve(_ snapshot: CompiledSnapshot) -> (CompiledSnapshot, CompiledListener) {
        if let listener = snapshot.listeners[listenerName] { return (snapshot, listener) }
        return (boundSnapshot, boundSnapshot.listeners[listenerName]!)
    }
}
