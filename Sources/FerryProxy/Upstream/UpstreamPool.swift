import NIOCore

/// Idle upstream connections of one event loop, by endpoint address and TLS settings (a connection made
/// with one cluster's TLS context is never handed to another). Only touched on its loop.
final class UpstreamPool {
    struct Key: Hashable {
        let address: SocketAddress
        /// The `UpstreamTLSContext` the connection was made with; nil for plain TCP.
        let tls: ObjectIdentifier?
        /// The `host:port` a connection to a parent proxy was tunnelled to; nil for a direct connection.
        var via: String? = nil
    }

    /// Idle connections kept per endpoint; more are closed on release.
    static let maxIdlePerEndpoint = 256
    /// Idle connections older than this are closed instead of reused (upstreams close idle ones too).
    static let maxIdleTime: TimeAmount = .seconds(50)

    private var idle: [Key: [UpstreamConnection]] = [:]

    /// A live idle connection to `address` made with `tls`, or nil. The most recently used one comes first.
    func acquire(_ address: SocketAddress, tls: ObjectIdentifier? = nil, via: String? = nil, now: NIODeadline) -> UpstreamConnection? {
        let key = Key(address: address, tls: tls, via: via)
        while let connection = idle[key]?.popLast() {
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
        let count = idle[connection.poolKey]?.count ?? 0
        guard count < UpstreamPool.maxIdlePerEndpoint else {
            connection.close()
            return
        }
        connection.isIdleInPool = true
        connection.idleSince = now
        idle[connection.poolKey, default: []].append(connection)
    }

    /// Forgets a connection that closed while idle.
    func remove(_ connection: UpstreamConnection) {
        guard connection.isIdleInPool else { return }
        idle[connection.poolKey]?.removeAll { $0 === connection }
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
