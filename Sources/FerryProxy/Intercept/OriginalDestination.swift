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
        var found: SocketAddress?
        // On the channel's loop the option is read at once: the future is already complete.
        switch local {
        case .v4:
            let future: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_IP), name: SocketOptionName(soOriginalDst))
            future.assumeIsolated().whenSuccess { found = SocketAddress($0) }
        case .v6:
            let future: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_IPV6), name: SocketOptionName(soOriginalDst))
            future.assumeIsolated().whenSuccess { found = SocketAddress($0) }
        default:
            return nil
        }
        // Conntrack answers for every NATed connection; one that was not redirected reads as the listener's own address.
        if let found, found == local { return nil }
        return found
    }
}
