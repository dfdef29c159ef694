/// A consistent-hash ring (Envoy `ring_hash`): each endpoint owns many points; a key goes to the
/// first point at or after its hash. Adding or removing one endpoint moves only its share of keys.
public struct HashRing: Sendable {
    /// Points per endpoint. Fixed (not derived from the endpoint count) so that removing one endpoint
    /// leaves every other endpoint's points where they were: only the removed endpoint's keys move.
    public static let pointsPerEndpoint = 256

    private let points: [(hash: UInt64, endpoint: Int)]

    public init(endpoints: [HostPort]) {
        let perEndpoint = HashRing.pointsPerEndpoint
        var points: [(UInt64, Int)] = []
        points.reserveCapacity(perEndpoint * endpoints.count)
        for (index, endpoint) in endpoints.enumerated() {
            let base = endpoint.description
            for replica in 0..<perEndpoint {
                points.append((Hashing.hash("\(base)_\(replica)"), index))
            }
        }
        self.points = points.sorted { $0.0 < $1.0 }
    }

    public var isEmpty: Bool { points.isEmpty }

    /// The endpoint owning `hash`, walking on past excluded endpoints.
    public func lookup(_ hash: UInt64, excluding: [Int] = []) -> Int? {
        guard !points.isEmpty else { return nil }
        var low = 0
        var high = points.count
        while low < high {
            let mid = (low + high) / 2
            if points[mid].hash < hash { low = mid + 1 } else { high = mid }
        }
        for step in 0..<points.count {
            let endpoint = points[(low + step) % points.count].endpoint
            if !excluding.contains(endpoint) { return endpoint }
        }
        return nil
    }
}

/// A stable 64-bit string hash (FNV-1a with a murmur finaliser), the same in every process and run.
public enum Hashing {
    public static func hash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h = h &* 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }
}
