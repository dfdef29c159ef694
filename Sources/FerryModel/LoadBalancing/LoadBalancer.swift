/// Picks an endpoint index of a cluster. Pure: the mutable part lives in `LoadBalancerState`,
/// which the data plane keeps per event loop (as Envoy keeps it per worker).
public struct LoadBalancer: Sendable {
    public let policy: LoadBalancingPolicy
    public let endpointCount: Int
    /// Built once per snapshot for `ring_hash` clusters.
    public let ring: HashRing?

    public init(policy: LoadBalancingPolicy, endpoints: [HostPort]) {
        self.policy = policy
        self.endpointCount = endpoints.count
        if case .ringHash = policy {
            self.ring = HashRing(endpoints: endpoints)
        } else {
            self.ring = nil
        }
    }

    /// The hash key for `ring_hash`, from the request; nil for other policies.
    public func hashKey(header: (String) -> String?, sourceAddress: String, requestURI: String = "") -> UInt64? {
        guard case .ringHash(let key) = policy else { return nil }
        switch key {
        case .header(let name): return Hashing.hash(header(name) ?? "")
        case .sourceAddress: return Hashing.hash(sourceAddress)
        case .cookie(let name): return Hashing.hash(String(CookieMatch.value(of: name, inCookieHeader: header("cookie")) ?? ""))
        case .requestURI: return Hashing.hash(requestURI)
        }
    }

    /// An endpoint index not in `excluding`, or nil when every endpoint is excluded (or there is none).
    public func pick<R: RandomNumberGenerator>(
        state: inout LoadBalancerState,
        hashKey: UInt64?,
        excluding: [Int] = [],
        using random: inout R
    ) -> Int? {
        let count = endpointCount
        guard count > excluding.count || (count > 0 && excluding.isEmpty) else { return nil }
        if excluding.count >= count { return nil }
        switch policy {
        case .roundRobin:
            for _ in 0..<count {
                let index = state.cursor % count
                state.cursor &+= 1
                if !excluding.contains(index) { return index }
            }
            return nil
        case .random:
            return randomAllowed(count: count, excluding: excluding, using: &random)
        case .leastRequest:
            guard let first = randomAllowed(count: count, excluding: excluding, using: &random) else { return nil }
            guard count - excluding.count > 1 else { return first }
            var second = first
            while second == first {
                guard let s = randomAllowed(count: count, excluding: excluding, using: &random) else { return first }
                second = s
            }
            return state.active(second) < state.active(first) ? second : first
        case .ringHash:
            guard let ring else { return nil }
            return ring.lookup(hashKey ?? 0, excluding: excluding)
        }
    }

    private func randomAllowed<R: RandomNumberGenerator>(count: Int, excluding: [Int], using random: inout R) -> Int? {
        if excluding.isEmpty { return Int.random(in: 0..<count, using: &random) }
        let allowed = (0..<count).filter { !excluding.contains($0) }
        return allowed.randomElement(using: &random)
    }
}

/// The per-event-loop mutable side of load balancing: a round-robin cursor and active request counts.
public struct LoadBalancerState: Sendable {
    public var cursor: Int
    public private(set) var activeRequests: [Int]

    public init(endpointCount: Int, startingAt cursor: Int = 0) {
        self.cursor = cursor
        self.activeRequests = Array(repeating: 0, count: endpointCount)
    }

    public func active(_ index: Int) -> Int {
        index < activeRequests.count ? activeRequests[index] : 0
    }

    public mutating func requestStarted(_ index: Int) {
        if index < activeRequests.count { activeRequests[index] += 1 }
    }

    public mutating func requestFinished(_ index: Int) {
        if index < activeRequests.count, activeRequests[index] > 0 { activeRequests[index] -= 1 }
    }
}

/// Picks one of several weighted clusters.
public enum WeightedPick {
    public static func pick<R: RandomNumberGenerator>(_ clusters: [WeightedCluster], using random: inout R) -> WeightedCluster? {
        pickIndex(clusters, using: &random).map { clusters[$0] }
    }

    /// The index of the chosen cluster; weight 0 is never chosen unless every weight is 0.
    public static func pickIndex<R: RandomNumberGenerator>(_ clusters: [WeightedCluster], using random: inout R) -> Int? {
        if clusters.count <= 1 { return clusters.isEmpty ? nil : 0 }
        let total = clusters.reduce(0) { $0 + max(0, $1.weight) }
        guard total > 0 else { return 0 }
        var roll = Int.random(in: 0..<total, using: &random)
        for (index, cluster) in clusters.enumerated() where cluster.weight > 0 {
            if roll < cluster.weight { return index }
            roll -= cluster.weight
        }
        return clusters.count - 1
    }
}
