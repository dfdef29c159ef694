import NIOCore

/// Idle upstream connections of one event loop, by endpoint address. Only touched on its loop.
final class UpstreamPool {
    /// Idle connections kept per endpoint; more are closed on release.
    static let maxIdlePerEndpoint = 256
    /// Idle connections older than this are closed instead of reused (upstreams close idle ones too).
    static let maxIdleTime: TimeAmount = .seconds(50)

    private var idle: [SocketAddress: [UpstreamConnection]] = [:]

    /// A live idle connection to `address`, or nil. The most recently used one comes first.
    func acquire(_ address: SocketAddress, now: NIODeadline) -> UpstreamConnection? {
        while let connection = idle[address]?.popLast() {
            connection.isIdleInPool = false
            if !connection.isClosed, now - connection.idleSince < UpstreamPool.maxIdleTime {
                return connection
            }
            connection.close()
        }
        return nil
    }

    /// Returns a connection after a complete exchange.
    func release(_ connection: UpstreamConnection, now: NIODeadline) {
        guard !connection.isClosed else { return }
        let count = idle[connection.address]?.count ?? 0
        guard count < UpstreamPool.maxIdlePerEndpoint else {
            connection.close()
            return
        }
        connection.isIdleInPool = true
        connection.idleSince = now
        idle[connection.address, default: []].append(connection)
    }

    /// Forgets a connection that closed while idle.
    func remove(_ connection: UpstreamConnection) {
        guard connection.isIdleInPool else { return }
        idle[connection.address]?.removeAll { $0 === connection }
        connection.isIdleInPool = false
    }

    /// Closes every idle connection (shutdown).
    func closeAll() {
        let all = idle.values.flatMap { $0 }
        idle.removeAll()
        for connection in all { connection.close() }
    }
}

@available(*, unavailable)
extension UpstreamPool: Sendable {}
