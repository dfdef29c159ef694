import FerryModel
import FerryProxy
import Foundation
import NIOConcurrencyHelpers
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// `ferry sidecar`: the proxy beside one application, both directions in one process. Inbound: a listener in
/// front of the app's port (`inbound`, to the cluster `app` on 127.0.0.1), optionally limited to source
/// ranges. Outbound: the app's connections captured by the Pod's rules (`ferry rules capture`), decided by
/// an egress policy on Host, server name or address (`outbound`, an intercept listener). Each direction has
/// its own listener name in metrics and the access log. `/ready` waits for the app.
public enum SidecarRole {
    public static let defaultInbound = HostPort(host: "0.0.0.0", port: 15006)
    public static let defaultOutbound = HostPort(host: "0.0.0.0", port: 15001)
    public static let defaultAdmin = HostPort(host: "127.0.0.1", port: 15000)

    public struct Settings: Sendable {
        /// The app's port on 127.0.0.1: inbound traffic goes there, and readiness waits for it.
        public var appPort: Int?
        public var inbound: HostPort? = SidecarRole.defaultInbound
        public var outbound: HostPort? = SidecarRole.defaultOutbound
        public var admin: HostPort = SidecarRole.defaultAdmin
        /// Client addresses allowed inbound (empty: every client).
        public var inboundSources: [IPRange] = []
        /// The outbound policy (the forward proxy's rules); hosts from `hostsFile` first.
        public var policy: AccessPolicy
        public var hosts: [String: [IPAddress]] = [:]
        public var intercept = InterceptSettings()

        public init(appPort: Int?, policy: AccessPolicy) {
            self.appPort = appPort
            self.policy = policy
        }
    }

    /// The two listeners and the app's cluster.
    public static func snapshot(_ settings: Settings) -> ConfigSnapshot {
        var listeners: [Listener] = []
        var clusters: [Cluster] = []
        if let inbound = settings.inbound, let port = settings.appPort {
            clusters.append(Cluster(name: "app", endpoints: [HostPort(host: "127.0.0.1", port: port)], connectTimeout: .seconds(1)))
            var route = Route(name: "inbound", match: RouteMatch(path: .prefix("/")), action: .forward([WeightedCluster(name: "app")]), timeout: .seconds(60))
            route.allowedSources = settings.inboundSources
            listeners.append(Listener(name: "inbound", address: inbound, http: HTTPConnectionManager(virtualHosts: [VirtualHost(name: "app", domains: [.any], routes: [route])])))
        }
        if let outbound = settings.outbound {
            var listener = Listener(name: "outbound", address: outbound, http: HTTPConnectionManager(virtualHosts: [], forwardProxy: ForwardProxySettings(policy: settings.policy, hosts: settings.hosts)))
            listener.intercept = settings.intercept
            listeners.append(listener)
        }
        var config = ConfigSnapshot(source: "ferry sidecar flags", admin: AdminSettings(address: settings.admin), listeners: listeners, clusters: clusters)
        config.accessLog.format = .json
        return config
    }

    /// `/ready` answers 503 until the app accepts connections on its port, checked every half second (a
    /// TCP connect to 127.0.0.1), so a Pod is Ready only when the app behind its sidecar is.
    public final class AppProbe: ServiceLifecycle.Service, Sendable {
        public let port: Int
        private let ready = NIOLockedValueBox(false)

        public init(port: Int) { self.port = port }

        public var isReady: Bool { ready.withLockedValue { $0 } }

        public func run() async throws {
            while !Task.isCancelled {
                let accepts = Self.accepts(port: port)
                ready.withLockedValue { $0 = accepts }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }

        /// Whether 127.0.0.1:`port` accepts a TCP connection now (loopback: refused or accepted at once).
        static func accepts(port: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
        }

        /// Installs the check on the server.
        public func gate(_ server: ProxyServer) {
            let port = self.port
            server.setReadinessCheck { [self] in
                isReady ? nil : "not ready: the app does not accept connections on 127.0.0.1:\(port) yet"
            }
        }
    }
}
