@testable import FerryProxy
import NIOCore
import Testing

/// The per-loop pool of idle upstream connections: by address and TLS settings, most recent first, a
/// connection's bucket reused without a lookup, idle age and size limits. (Connections here have no
/// channel: only the pool's bookkeeping is exercised.)
struct UpstreamPoolTests {
    let a = try! SocketAddress(ipAddress: "127.0.0.1", port: 8080)
    let b = try! SocketAddress(ipAddress: "127.0.0.1", port: 8081)

    func connection(_ address: SocketAddress, in pool: UpstreamPool, tls: ObjectIdentifier? = nil) -> UpstreamConnection {
        UpstreamConnection(address: address, tls: tls, writer: UpstreamRequestWriter(), decoder: HTTP1ResponseDecoder(), pool: pool)
    }

    @Test func aReleasedConnectionIsAcquiredAgainForItsAddressOnly() {
        let pool = UpstreamPool()
        let now = NIODeadline.now()
        let first = connection(a, in: pool)
        let second = connection(a, in: pool)
        #expect(pool.acquire(.init(address: a, tls: nil), now: now) == nil)
        pool.release(first, now: now)
        pool.release(second, now: now)
        #expect(pool.acquire(.init(address: b, tls: nil), now: now) == nil)
        #expect(pool.acquire(.init(address: a, tls: ObjectIdentifier(pool)), now: now) == nil, "another TLS context is another key")
        #expect(pool.acquire(.init(address: a, tls: nil), now: now) === second, "the most recently used first")
        // The bucket a connection went back to serves the next acquire without a lookup.
        let bucket = first.poolBucket
        #expect(bucket != nil && bucket === second.poolBucket)
        #expect(pool.acquire(from: bucket, now: now) === first)
        #expect(pool.acquire(from: bucket, now: now) == nil)
        #expect(first.isIdleInPool == false)
    }

    @Test func oldAndRemovedConnectionsAreNotHandedOut() {
        let pool = UpstreamPool()
        let start = NIODeadline.now()
        let old = connection(a, in: pool)
        pool.release(old, now: start)
        #expect(pool.acquire(.init(address: a, tls: nil), now: start + UpstreamPool.maxIdleTime + .seconds(1)) == nil, "idle too long: closed, not reused")
        let gone = connection(a, in: pool)
        pool.release(gone, now: start)
        pool.remove(gone)
        #expect(pool.acquire(.init(address: a, tls: nil), now: start) == nil)
        #expect(!gone.isIdleInPool)
    }

    @Test func anEndpointKeepsAtMostItsLimitOfIdleConnections() {
        let pool = UpstreamPool()
        let now = NIODeadline.now()
        let connections = (0...UpstreamPool.maxIdlePerEndpoint).map { _ in connection(a, in: pool) }
        for c in connections { pool.release(c, now: now) }
        #expect(connections.filter(\.isIdleInPool).count == UpstreamPool.maxIdlePerEndpoint)
        #expect(!connections.last!.isIdleInPool, "one over the limit is closed on release")
        pool.closeAll()
        #expect(pool.acquire(from: connections[0].poolBucket, now: now) == nil, "closeAll empties the buckets too")
    }
}
