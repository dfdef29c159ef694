import FerryModel
import Testing

/// A deterministic generator so load-balancing tests are repeatable.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct LoadBalancerTests {
    let endpoints = (1...4).map { HostPort(host: "10.0.0.\($0)", port: 8080) }

    @Test func roundRobinVisitsEveryEndpointInTurn() {
        let lb = LoadBalancer(policy: .roundRobin, endpoints: endpoints)
        var state = LoadBalancerState(endpointCount: 4)
        var random = SeededRandom(state: 1)
        let picks = (0..<8).compactMap { _ in lb.pick(state: &state, hashKey: nil, using: &random) }
        #expect(picks == [0, 1, 2, 3, 0, 1, 2, 3])
    }

    @Test(arguments: [LoadBalancingPolicy.roundRobin, .random, .leastRequest, .ringHash(.sourceAddress)])
    func excludedEndpointsAreNeverPicked(policy: LoadBalancingPolicy) {
        let lb = LoadBalancer(policy: policy, endpoints: endpoints)
        var state = LoadBalancerState(endpointCount: 4)
        var random = SeededRandom(state: 7)
        for i in 0..<200 {
            let pick = lb.pick(state: &state, hashKey: UInt64(i) &* 0x9E37_79B9, excluding: [0, 2], using: &random)
            #expect(pick == 1 || pick == 3)
        }
        #expect(lb.pick(state: &state, hashKey: 1, excluding: [0, 1, 2, 3], using: &random) == nil)
    }

    @Test func noEndpointsMeansNoPick() {
        let lb = LoadBalancer(policy: .roundRobin, endpoints: [])
        var state = LoadBalancerState(endpointCount: 0)
        var random = SeededRandom(state: 1)
        #expect(lb.pick(state: &state, hashKey: nil, using: &random) == nil)
    }

    @Test func leastRequestPrefersTheLessBusyOfTwoChoices() {
        let lb = LoadBalancer(policy: .leastRequest, endpoints: Array(endpoints.prefix(2)))
        var state = LoadBalancerState(endpointCount: 2)
        for _ in 0..<5 { state.requestStarted(0) }
        var random = SeededRandom(state: 3)
        for _ in 0..<50 {
            #expect(lb.pick(state: &state, hashKey: nil, using: &random) == 1)
        }
    }

    @Test func randomSpreadsOverAllEndpoints() {
        let lb = LoadBalancer(policy: .random, endpoints: endpoints)
        var state = LoadBalancerState(endpointCount: 4)
        var random = SeededRandom(state: 11)
        var counts = [0, 0, 0, 0]
        for _ in 0..<4000 { counts[lb.pick(state: &state, hashKey: nil, using: &random)!] += 1 }
        for count in counts { #expect(count > 800 && count < 1200) }
    }

    @Test func ringHashIsStickyAndMovesOnlyTheRemovedEndpointsKeys() {
        let full = HashRing(endpoints: endpoints)
        let reduced = HashRing(endpoints: Array(endpoints.prefix(3)))
        var moved = 0
        for key in 0..<2000 {
            let hash = Hashing.hash("user-\(key)")
            let before = full.lookup(hash)!
            #expect(full.lookup(hash) == before)
            let after = reduced.lookup(hash)!
            if before != 3 {
                #expect(after == before)
            } else {
                moved += 1
            }
        }
        #expect(moved > 300 && moved < 700)
    }

    @Test func ringHashUsesTheConfiguredHeader() {
        let lb = LoadBalancer(policy: .ringHash(.header("x-user")), endpoints: endpoints)
        let a = lb.hashKey(header: { $0 == "x-user" ? "alice" : nil }, sourceAddress: "1.2.3.4")
        let b = lb.hashKey(header: { $0 == "x-user" ? "alice" : nil }, sourceAddress: "5.6.7.8")
        #expect(a == b)
        #expect(a != lb.hashKey(header: { $0 == "x-user" ? "bob" : nil }, sourceAddress: "1.2.3.4"))
    }

    @Test func weightedPickFollowsTheWeights() {
        var random = SeededRandom(state: 5)
        let clusters = [WeightedCluster(name: "a", weight: 90), WeightedCluster(name: "b", weight: 10), WeightedCluster(name: "off", weight: 0)]
        var counts: [String: Int] = [:]
        for _ in 0..<10_000 { counts[WeightedPick.pick(clusters, using: &random)!.name, default: 0] += 1 }
        #expect(counts["off"] == nil)
        #expect((8700...9300).contains(counts["a"] ?? 0))
    }
}

/// kube-proxy's `--nodeport-addresses`: CIDRs, `primary`, and what they resolve to on a node.
@Suite struct NodePortAddressesTests {
    let local = ["127.0.0.1", "10.1.2.3", "192.168.0.2", "fd00::2"].compactMap { IPAddress(parsing: $0) }

    func resolve(_ items: [String], nodeIPs: [String] = []) throws -> [String] {
        let spec = try NodePortAddresses.parse(items).get()
        return try NodePortAddresses.resolve(spec, local: local, nodeIPs: nodeIPs.compactMap { IPAddress(parsing: $0) }).get().map(\.description)
    }

    @Test func cidrsSelectTheNodesAddressesInThem() throws {
        #expect(try resolve([]) == [], "unset: every local address")
        #expect(try resolve(["10.0.0.0/8", "fd00::/64"]) == ["10.1.2.3", "fd00::2"])
        #expect(try resolve(["0.0.0.0/0"]) == [], "a zero-length CIDR is every local address")
        #expect(try resolve(["198.51.100.7"]) == ["198.51.100.7"], "an address of one is used as given")
        #expect(try resolve(["primary"], nodeIPs: ["192.168.0.2"]) == ["192.168.0.2"])
    }

    @Test func badValuesSayWhatToFix() {
        #expect(throws: NodePortAddressesError.self) { try NodePortAddresses.parse(["primary", "10.0.0.0/8"]).get() }
        #expect(throws: NodePortAddressesError.self) { try NodePortAddresses.parse(["eth0"]).get() }
        #expect(throws: NodePortAddressesError.self) { try resolve(["203.0.113.0/24"]) }
        #expect(throws: NodePortAddressesError.self) { try resolve(["primary"]) }
    }
}
