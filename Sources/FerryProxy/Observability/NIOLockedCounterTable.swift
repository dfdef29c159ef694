import NIOConcurrencyHelpers
import Prometheus

/// A small cache of counters by (cluster, status class), so a request finds its counter without
/// building label arrays. Lookups after the first take one uncontended lock.
final class NIOLockedCounterTable: Sendable {
    private struct Key: Hashable {
        let cluster: String
        let statusClass: Int
    }
    private let table = NIOLockedValueBox<[Key: Counter]>([:])

    func counter(cluster: String, statusClass: Int, make: () -> Counter) -> Counter {
        let key = Key(cluster: cluster, statusClass: statusClass)
        return table.withLockedValue { table in
            if let existing = table[key] { return existing }
            let counter = make()
            table[key] = counter
            return counter
        }
    }
}
