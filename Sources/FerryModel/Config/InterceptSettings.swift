/// A listener that accepts connections the kernel redirected to it (transparent egress capture): the
/// original destination comes from the connection itself, and the listener's forward-proxy policy decides
/// on the request's Host (plain HTTP), the ClientHello's server name (TLS, never terminated) or the address.
public struct InterceptSettings: Sendable, Hashable, Encodable {
    public enum Mode: String, Sendable, Hashable, Encodable, CaseIterable {
        /// iptables `REDIRECT`/`DNAT`, nftables `redirect`/`dnat`: the destination is read with `SO_ORIGINAL_DST`.
        case redirect
        /// TPROXY: the connection keeps its destination, which is the accepted socket's own address; the
        /// listening socket is made `IP_TRANSPARENT` (needs CAP_NET_ADMIN).
        case tproxy
    }

    public var mode: Mode
    /// How long to wait for the client's first bytes (a ClientHello or a request line) before deciding on
    /// the address alone, for protocols whose server speaks first.
    public var firstBytesTimeout: Duration

    public init(mode: Mode = .redirect, firstBytesTimeout: Duration = .seconds(1)) {
        self.mode = mode
        self.firstBytesTimeout = firstBytesTimeout
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case mode, firstBytesTimeout = "first_bytes_timeout" }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(mode, forKey: .mode)
        try c.encode(DurationText(firstBytesTimeout), forKey: .firstBytesTimeout)
    }
}
