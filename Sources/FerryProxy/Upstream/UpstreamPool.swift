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

    /// The idle connections of one key. A connection keeps a reference to its bucket and a downstream
    /// connection to the bucket of its last upstream, so that the keep-alive path (release, then acquire
    /// for the same destination) needs no dictionary lookup.
    final class Bucket {
        let key: Key
        fileprivate(set) var connections: [UpstreamConnection] = []
        init(key: Key) { self.key = key }
    }

    /// Idle connections kept per endpoint; more are closed on release. Enough for the requests one loop has
    /// in flight at once when HTTP/2 clients multiplex (4 connections × 100 streams would churn through a
    /// smaller pool, dialing a new connection for most requests); Envoy keeps every idle connection.
    static let maxIdlePerEndpoint = 1024
    /// Idle connections older than this are closed instead of reused (upstreams close idle ones too).
    static let maxIdleTime: TimeAmount = .seconds(50)

    private var idle: [Key: Bucket] = [:]

    /// A live idle connection for `key` (address, TLS context, parent), or nil. The most recently used one comes first.
    func acquire(_ key: Key, now: NIODeadline) -> UpstreamConnection? {
        acquire(from: idle[key], now: now)
    }

    /// The same from a bucket already at hand (see `Bucket`).
    func acquire(from bucket: Bucket?, now: NIODeadline) -> UpstreamConnection? {
        guard let bucket else { return nil }
        while let connection = bucket.connections.popLast() {
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
        let bucket = connection.poolBucket ?? bucket(for: connection.poolKey)
        connection.poolBucket = bucket
        guard bucket.connections.count < UpstreamPool.maxIdlePerEndpoint else {
            connection.close()
            return
        }
        connection.isIdleInPool = true
        connection.idleSince = now
        bucket.connections.append(connection)
    }

    private func bucket(for key: Key) -> Bucket {
        if let bucket = idle[key] { return bucket }
        let bucket = Bucket(key: key)
        idle[key] = bucket
        return bucket
    }

    /// Forgets a connection that closed while idle.
    func remove(_ connection: UpstreamConnection) {
        guard connection.isIdleInPool else { return }
        connection.poolBucket?.connections.removeAll { $0 === connection }
        connection.isIdleInPool = false
    }

    /// Closes every idle connection (shutdown).
    func closeAll() {
        let all = idle.values.flatMap { $0.connections }
        for bucket in idle.values { bucket.connections.removeAll() }
        idle.removeAll()
        for connection in all { connection.close() }
    }
}

@available(*, unavailable)
extension UpstreamPool: Sendable {}
