import FerryModel
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Where an intercepted connection was going before the kernel sent it to Ferry.
enum OriginalDestination {
    /// `SO_ORIGINAL_DST` (linux/netfilter_ipv4.h) and `IP6T_SO_ORIGINAL_DST` (linux/netfilter_ipv6/ip6_tables.h).
    static let soOriginalDst: Int32 = 80

    /// REDIRECT/DNAT: the pre-NAT destination from conntrack; TPROXY: the accepted socket's own address
    /// (the packets kept their destination). Nil when the connection was not redirected — a client that
    /// dialed the intercept port itself — or the address cannot be read.
    static func of(_ channel: Channel, mode: InterceptSettings.Mode) -> SocketAddress? {
        guard let local = channel.localAddress else { return nil }
        if mode == .tproxy { return local }
        guard let provider = channel as? SocketOptionProvider else { return nil }
        // A dual-stack listener sees IPv4 clients as IPv4-mapped IPv6: their NAT entry is IPv4's.
        let mapped: Bool = if case .v6 = local, let ip = local.ipValue, case .v4 = ip.unmappingIPv4 { true } else { false }
        let ipv4: Bool = if case .v4 = local { true } else { mapped }
        var found: SocketAddress?
        // On the channel's loop the option is read at once: the future is already complete.
        if ipv4 {
            let future: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_IP), name: SocketOptionName(soOriginalDst))
            future.assumeIsolated().whenSuccess { found = SocketAddress($0) }
        } else if case .v6 = local {
            let future: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_IPV6), name: SocketOptionName(soOriginalDst))
            future.assumeIsolated().whenSuccess { found = SocketAddress($0) }
        } else {
            return nil
        }
        // Conntrack answers for every NATed connection; one that was not redirected reads as the listener's own address.
        if let found, found == local || (mapped && found.ipValue == local.ipValue?.unmappingIPv4 && found.port == local.port) { return nil }
        return found
    }
}
