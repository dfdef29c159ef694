import FerryModel
import FerryProxy
import NIOCore
import NIOPosix

/// `ferry demo`: a proxy on 127.0.0.1:8080 in front of two in-process origins, with host and path routes,
/// a weighted split and a direct response, plus the admin listener. Needs no files.
public enum DemoRole {
    public static let defaultAddress = HostPort(host: "127.0.0.1", port: 8080)

    /// The demo configuration for origins listening on `bluePort` and `greenPort`.
    public static func configuration(listen: HostPort = defaultAddress, admin: HostPort = AdminSettings().address, bluePort: Int, greenPort: Int) -> ConfigSnapshot {
        let demoHost = VirtualHost(
            name: "demo",
            domains: [.any],
            routes: [
                Route(name: "healthz", match: RouteMatch(path: .exact("/healthz")), action: .directResponse(status: 200, body: "ok\n")),
                Route(name: "blue", match: RouteMatch(path: .prefix("/blue")), action: .forward([WeightedCluster(name: "blue")])),
                Route(name: "green", match: RouteMatch(path: .prefix("/green")), action: .forward([WeightedCluster(name: "green")])),
                Route(name: "old", match: RouteMatch(path: .prefix("/old")), action: .redirect(Redirect(path: "/blue", status: 301))),
                Route(
                    name: "split", match: RouteMatch(path: .prefix("/")),
                    action: .forward([WeightedCluster(name: "blue", weight: 80), WeightedCluster(name: "green", weight: 20)])),
            ])
        let apiHost = VirtualHost(
            name: "api",
            domains: [.exact("api.demo.local"), .wildcard(suffix: ".api.demo.local")],
            routes: [Route(name: "api", match: RouteMatch(path: .prefix("/")), action: .forward([WeightedCluster(name: "green")]))])
        return ConfigSnapshot(
            source: "demo (built in)",
            admin: AdminSettings(address: admin),
            listeners: [Listener(name: "demo", address: listen, http: HTTPConnectionManager(virtualHosts: [apiHost, demoHost]))],
            clusters: [
                Cluster(name: "blue", endpoints: [HostPort(host: "127.0.0.1", port: bluePort)]),
                Cluster(name: "green", endpoints: [HostPort(host: "127.0.0.1", port: greenPort)]),
            ])
    }

    /// Starts the two origins on `group` and returns the configuration that fronts them.
    public static func startOrigins(group: EventLoopGroup, listen: HostPort, admin: HostPort) throws -> ConfigSnapshot {
        let blue = try DemoOrigin.start(name: "blue", group: group)
        let green = try DemoOrigin.start(name: "green", group: group)
        return configuration(listen: listen, admin: admin, bluePort: blue.port, greenPort: green.port)
    }

    /// The commands printed for the user to try.
    public static func tryCommands(listen: HostPort, admin: HostPort) -> String {
        let p = "http://\(listen)"
        return """
        Ferry demo is running: a proxy on \(listen) in front of two origins, "blue" and "green".
        Try:
          curl -s \(p)/                                  # weighted split: 80% blue, 20% green
          curl -s \(p)/blue/anything                     # path route to blue
          curl -s \(p)/green                             # path route to green
          curl -s -H 'Host: api.demo.local' \(p)/        # host route to green
          curl -si \(p)/old                              # redirect (301)
          curl -s \(p)/healthz                           # direct response
          curl -s http://\(admin)/metrics                # Prometheus metrics
          curl -s http://\(admin)/config_dump            # the configuration in force
        Access log lines (JSON) follow below. Ctrl-C stops (in-flight requests finish first).

        """
    }
}
