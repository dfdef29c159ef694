/// Which peers Ferry believes about the forwarding fields (`X-Forwarded-For`, `X-Forwarded-Proto`,
/// `X-Forwarded-Host`, `Forwarded`) of a request. By default none: Ferry is the edge, so those fields from a
/// client are replaced by what the connection says. With `trustedHops` (Envoy `xff_num_trusted_hops`) or
/// `trustedProxies` (nginx `set_real_ip_from` with `real_ip_recursive on`), a trusted peer's fields are kept,
/// Ferry appends the peer to `X-Forwarded-For`, and the client address is read from that list.
public struct ForwardedTrust: Sendable, Hashable, Encodable {
    /// Proxies in front of Ferry whose `X-Forwarded-For` entries are believed, counted from the right.
    public var trustedHops: Int
    /// Peers (and `X-Forwarded-For` entries) within these ranges are trusted proxies.
    public var trustedProxies: [IPRange]

    public init(trustedHops: Int = 0, trustedProxies: [IPRange] = []) {
        self.trustedHops = trustedHops
        self.trustedProxies = trustedProxies
    }

    /// Whether a connection from `peer` may pass its forwarding fields on (`peer` is only worked out when
    /// trusted ranges are set).
    public func trusts(peer: @autoclosure () -> IPAddress?) -> Bool {
        if trustedHops > 0 { return true }
        guard !trustedProxies.isEmpty, let peer = peer() else { return false }
        return trustedProxies.contains { $0.contains(peer) }
    }

    /// The original client, given the client's `X-Forwarded-For` (all values, comma-joined) and the peer.
    /// With N trusted hops it is the Nth address from the right of the received list (Envoy); with trusted
    /// ranges, the rightmost address that is not in them. The peer when the list is too short or not an
    /// address, or when the peer is not trusted.
    public func clientAddress(forwardedFor: String?, peer: IPAddress?) -> IPAddress? {
        guard trusts(peer: peer), let forwardedFor else { return peer }
        let entries = forwardedFor.split(separator: ",").map { $0.trimmingSpaces }
        if trustedHops > 0 {
            guard entries.count >= trustedHops else { return peer }
            return IPAddress(parsing: entries[entries.count - trustedHops]) ?? peer
        }
        for entry in entries.reversed() {
            guard let address = IPAddress(parsing: entry) else { return peer }
            if !trustedProxies.contains(where: { $0.contains(address) }) { return address }
        }
        return entries.first.flatMap { IPAddress(parsing: $0) } ?? peer
    }

    enum CodingKeys: String, CodingKey {
        case trustedHops = "xff_trusted_hops", trustedProxies = "trusted_proxies"
    }
}

/// The protocols an `Upgrade` request may ask for on a listener (default: `websocket` only). Any other token
/// — `h2c` above all — is removed, and the request goes on as plain HTTP/1.1, so no tunnel opens.
public struct UpgradeProtocols: Sendable, Hashable, Encodable {
    /// Lower-case tokens; an entry without a version (`spdy`) allows every version of it (`SPDY/3.1`).
    public var allowed: [String]

    public init(_ allowed: [String] = ["websocket"]) {
        self.allowed = allowed.map { $0.lowercased() }
    }

    public func allows<S: StringProtocol>(_ token: S) -> Bool {
        let lower = token.lowercased()
        let name = lower.split(separator: "/", maxSplits: 1).first.map(String.init) ?? lower
        return allowed.contains { $0 == lower || (!$0.contains("/") && $0 == name) }
    }

    /// The `Upgrade` value with only allowed protocols, in order; nil when none is left.
    public func filter(_ value: String) -> String? {
        let kept = value.split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty && allows($0) }
        return kept.isEmpty ? nil : kept.joined(separator: ", ")
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(allowed)
    }
}
