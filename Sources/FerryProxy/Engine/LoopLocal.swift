import FerryModel
import NIOCore

/// State that belongs to one event loop and is only touched on it: the upstream pool, load-balancer
/// cursors and active-request counts, and a fast random source.
final class LoopLocal {
    let pool = UpstreamPool()
    var random = FastRandom()
    /// The loop whose clock this loop's connections read, when it is a test's hand-advanced clock
    /// (`EmbeddedEventLoop`); nil: the system's monotonic clock, which is what a real loop's `now` reads,
    /// without the call through the loop's existential on every read.
    private let manualClock: (any EventLoop)?

    init(manualClock: (any EventLoop)? = nil) {
        self.manualClock = manualClock
    }

    /// The time on this loop.
    var now: NIODeadline {
        if let manualClock { return manualClock.now }
        return .now()
    }
    /// Open downstream connections by listener: tracked here, on the loop, without locks, for draining
    /// and for the deadline sweep.
    private var connections: [ObjectIdentifier: [ObjectIdentifier: TrackedConnection]] = [:]
    private var trackedCount = 0
    private var sweepInterval: TimeAmount = .seconds(5)
    private var sweep: Scheduled<Void>?

    func track(_ connection: TrackedConnection, id: ObjectIdentifier, listener: ObjectIdentifier, sweepEvery interval: TimeAmount, on loop: EventLoop) {
        if connections[listener, default: [:]].updateValue(connection, forKey: id) == nil { trackedCount += 1 }
        let shorter = interval < sweepInterval
        if shorter { sweepInterval = interval }
        if sweep == nil || shorter { scheduleSweep(on: loop, restart: true) }
    }

    func untrack(id: ObjectIdentifier, listener: ObjectIdentifier) {
        if connections[listener]?.removeValue(forKey: id) != nil { trackedCount -= 1 }
    }

    /// Asks the connections of `listener` (all listeners when nil) to finish their current request and close.
    func quiesce(listener: ObjectIdentifier?) {
        for connection in tracked(listener) { connection.quiesce() }
    }

    func closeAll(listener: ObjectIdentifier?) {
        for connection in tracked(listener) { connection.closeNow() }
    }

    func openCount(listener: ObjectIdentifier?) -> Int {
        if let listener { return connections[listener]?.count ?? 0 }
        return trackedCount
    }

    private func tracked(_ listener: ObjectIdentifier?) -> [TrackedConnection] {
        if let listener { return Array(connections[listener]?.values ?? [:].values) }
        return connections.values.flatMap { $0.values }
    }

    /// One timer per loop checks every connection's deadlines, instead of a timer per connection.
    private func scheduleSweep(on loop: EventLoop, restart: Bool) {
        if restart { sweep?.cancel() }
        sweep = loop.assumeIsolated().scheduleTask(in: sweepInterval) { [self] in
            sweep = nil
            let now = self.now
            for connection in tracked(nil) { connection.checkDeadlines(now: now) }
            if trackedCount > 0 {
                scheduleSweep(on: loop, restart: false)
            } else {
                sweepInterval = .seconds(5)
            }
        }
    }

    /// Connections with writes to flush at the end of this event-loop tick.
    private var flushQueue: [HTTPProxyHandler] = []
    /// HTTP/2 connections to upstreams, shared by this loop's requests.
    let http2Upstreams = HTTP2UpstreamPool()

    /// Flushes `handler`'s dirty channels after the I/O events of this tick are handled, so the peers
    /// are woken once per tick rather than once per connection event.
    func flushAtEndOfTick(_ handler: HTTPProxyHandler, on loop: EventLoop) {
        flushQueue.append(handler)
        if flushQueue.count == 1 {
            loop.assumeIsolated().execute { self.drainFlushQueue() }
        }
    }

    /// The queue being drained; swapped with `flushQueue` so that neither array is reallocated per tick.
    private var draining: [HTTPProxyHandler] = []

    private func drainFlushQueue() {
        swap(&flushQueue, &draining)
        isDraining = true
        for handler in draining { handler.flushQueued() }
        isDraining = false
        draining.removeAll(keepingCapacity: true)
        if !afterDrain.isEmpty {
            let flushes = afterDrain
            afterDrain.removeAll(keepingCapacity: true)
            for flush in flushes { flush() }
        }
    }

    /// Whether the end-of-tick flushes are running (an HTTP/2 connection then flushes once after them).
    private(set) var isDraining = false
    private var afterDrain: [() -> Void] = []

    /// Runs `flush` once the end-of-tick flushes are done: the streams of one HTTP/2 connection, each flushed
    /// by its own exchange, then reach the socket in one write.
    func flushAfterDrain(_ flush: @escaping () -> Void) {
        afterDrain.append(flush)
    }
    private var balancers: [String: (version: Int, endpoints: Int, state: LoadBalancerState)] = [:]

    /// The load-balancer state of `cluster` for `snapshotVersion`; reset when the endpoint list changes size.
    func withBalancerState<T>(cluster: String, snapshotVersion: Int, endpoints: Int, _ body: (inout LoadBalancerState, inout FastRandom) -> T) -> T {
        var entry = balancers[cluster]
        if entry == nil || entry!.endpoints != endpoints {
            // Start round robin at a different place on each loop so loops do not move in step.
            entry = (snapshotVersion, endpoints, LoadBalancerState(endpointCount: endpoints, startingAt: Int(random.next() % UInt64(max(endpoints, 1)))))
        }
        let result = body(&entry!.state, &random)
        balancers[cluster] = entry
        return result
    }
}

/// The `LoopLocal` of every event loop of a group, built once at start.
final class LoopLocals: Sendable {
    private let byLoop: [ObjectIdentifier: NIOLoopBound<LoopLocal>]

    /// `clockFromLoop`: connections read the time from their loop (tests that advance an `EmbeddedEventLoop`'s
    /// clock by hand); otherwise from the system's monotonic clock, as a real loop does.
    init(group: EventLoopGroup, clockFromLoop: Bool = false) throws {
        var byLoop: [ObjectIdentifier: NIOLoopBound<LoopLocal>] = [:]
        for loop in group.makeIterator() {
            if loop.inEventLoop {
                byLoop[ObjectIdentifier(loop)] = NIOLoopBound(LoopLocal(manualClock: clockFromLoop ? loop : nil), eventLoop: loop)
            } else {
                // Built once when the server is made, on the caller's thread (never an event loop).
                byLoop[ObjectIdentifier(loop)] = try loop.submit { NIOLoopBound(LoopLocal(manualClock: clockFromLoop ? loop : nil), eventLoop: loop) }.wait()
            }
        }
        self.byLoop = byLoop
    }

    /// The state of `loop`; call on that loop.
    func local(for loop: EventLoop) -> LoopLocal {
        byLoop[ObjectIdentifier(loop)]!.value
    }

    func closeIdleUpstreams() {
        for bound in byLoop.values {
            bound.eventLoop.execute { bound.value.pool.closeAll() }
        }
    }

    /// Sends the quiesce event to the open connections of `listener` (all when nil) on every loop.
    func quiesce(listener: ObjectIdentifier?) {
        for bound in byLoop.values {
            bound.eventLoop.execute { bound.value.quiesce(listener: listener) }
        }
    }

    func closeAll(listener: ObjectIdentifier?) {
        for bound in byLoop.values {
            bound.eventLoop.execute { bound.value.closeAll(listener: listener) }
        }
    }

    /// How many downstream connections of `listener` (all when nil) are still open.
    func openCount(listener: ObjectIdentifier?) async -> Int {
        var total = 0
        for bound in byLoop.values {
            total += (try? await bound.eventLoop.submit { bound.value.openCount(listener: listener) }.get()) ?? 0
        }
        return total
    }
}

/// xoshiro256** seeded from the system generator: fast, per loop, not for secrets.
struct FastRandom: RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init() {
        var g = SystemRandomNumberGenerator()
        s = (g.next(), g.next(), g.next(), g.next() | 1)
    }

    mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }
}

/// A downstream connection the loop keeps track of: an HTTP connection or a tunnel made from one.
protocol TrackedConnection: AnyObject {
    /// Finish what is in flight, then close.
    func quiesce()
    func closeNow()
    /// Enforce the connection's deadlines.
    func checkDeadlines(now: NIODeadline)
}

@available(*, unavailable)
extension LoopLocal: Sendable {}
