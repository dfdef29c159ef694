import FerryTestSupport
import Foundation
import Testing

/// An Envoy static bootstrap (an airgapped workload's allowlist: allowed sites to a cluster, every other
/// host answered 403 by a catch-all virtual host) run by `ferry run -c envoy.yaml` and by Envoy itself, with
/// the same requests to both and the same answers expected.
@Suite(.serialized)
struct EnvoyBootstrapTests {
    static func bootstrap(listenPort: Int, adminPort: Int, origin: String) -> String {
        let (host, port) = (String(origin.split(separator: ":")[0]), String(origin.split(separator: ":")[1]))
        return """
        admin:
          address:
            socket_address: {address: 127.0.0.1, port_value: \(adminPort)}
        static_resources:
          listeners:
          - name: airgap_egress
            address:
              socket_address: {address: 127.0.0.1, port_value: \(listenPort)}
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: egress_http
                  codec_type: AUTO
                  route_config:
                    name: allowlist
                    virtual_hosts:
                    - name: allowed
                      domains: ["allowed.test", "*.allowed.test", "mirror.*"]
                      routes:
                      - match: {path: "/exact"}
                        direct_response: {status: 200, body: {inline_string: "exact\\n"}}
                      - match: {prefix: "/api"}
                        route: {cluster: allowed_sites, prefix_rewrite: "/v2"}
                      - match: {safe_regex: {regex: "/files/[a-z]+\\\\.txt"}}
                        route: {cluster: allowed_sites}
                      - match: {prefix: "/"}
                        route: {cluster: allowed_sites, timeout: 5s}
                    - name: blocked
                      domains: ["*"]
                      routes:
                      - match: {prefix: "/"}
                        direct_response: {status: 403, body: {inline_string: "blocked by the airgap allowlist\\n"}}
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: allowed_sites
            connect_timeout: 0.25s
            type: STRICT_DNS
            lb_policy: ROUND_ROBIN
            load_assignment:
              cluster_name: allowed_sites
              endpoints:
              - lb_endpoints:
                - endpoint:
                    address:
                      socket_address: {address: \(host), port_value: \(port)}
        """
    }

    /// Requests as (Host, path) and what each proxy answers: status and, for the origin, the path it saw.
    static let requests: [(host: String, path: String)] = [
        ("allowed.test", "/"), ("a.b.allowed.test", "/x"), ("allowed.test", "/exact"), ("allowed.test", "/exactly"),
        ("allowed.test", "/api/users?q=1"), ("allowed.test", "/apix"), ("allowed.test", "/files/notes.txt"), ("allowed.test", "/files/NOTES.txt"),
        ("mirror.example", "/"), ("mirror", "/"), ("allowed.test.evil", "/"), ("evil.test", "/"),
    ]

    static func answers(port: Int) async throws -> [String] {
        var out: [String] = []
        for (host, path) in requests {
            let r = try await Curl.request("http://127.0.0.1:\(port)\(path)", ["-H", "Host: \(host)"])
            // The origin echoes the path it received; a direct response is its body.
            let body = r.body.contains("\"uri\"") ? (r.body.components(separatedBy: "\"uri\":\"").last?.split(separator: "\"").first.map(String.init) ?? "?") : r.body.trimmingCharacters(in: .whitespacesAndNewlines)
            out.append("\(host)\(path) -> \(r.status) \(body.replacingOccurrences(of: "\\/", with: "/"))")
        }
        return out
    }

    @Test(.requires("curl", "envoy")) func ferryAnswersAsEnvoyOnTheSameBootstrap() async throws {
        guard Prerequisites.have("curl", "envoy"), let binary = Prerequisites.ferryBinary() else { return }
        let origin = try TestOrigin(name: "site", group: Fixtures.originGroup)
        defer { try? origin.channel.close().wait() }
        let dir = try TLSFixtures.folder("envoy")
        defer { try? FileManager.default.removeItem(atPath: dir) }

        try Self.bootstrap(listenPort: 0, adminPort: 0, origin: origin.address).write(toFile: dir + "/ferry-envoy.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", dir + "/ferry-envoy.yaml", "--threads", "1"], configPath: dir + "/ferry-envoy.yaml")
        defer { Task { await ferry.stop() } }
        let ferryAnswers = try await Self.answers(port: try #require(ferry.port("airgap_egress")))

        let (listenPort, adminPort) = (LocalPorts.unused(), LocalPorts.unused())
        try Self.bootstrap(listenPort: listenPort, adminPort: adminPort, origin: origin.address).write(toFile: dir + "/envoy.yaml", atomically: true, encoding: .utf8)
        let envoy = try Subprocess(Prerequisites.path(of: "envoy")!, ["-c", dir + "/envoy.yaml", "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn", "--base-id", "\(getpid() % 60000)"])
        defer { envoy.signal(SIGKILL) }
        #expect(await Waiting.untilAsync(timeout: .seconds(30)) { (try? await Curl.request("http://127.0.0.1:\(adminPort)/ready").status) == 200 }, "\(envoy.stderr)")
        let envoyAnswers = try await Self.answers(port: listenPort)

        #expect(ferryAnswers == envoyAnswers)
        // And what those answers are (so that agreeing on something wrong does not pass).
        #expect(ferryAnswers == [
            "allowed.test/ -> 200 /", "a.b.allowed.test/x -> 200 /x", "allowed.test/exact -> 200 exact", "allowed.test/exactly -> 200 /exactly",
            "allowed.test/api/users?q=1 -> 200 /v2/users?q=1", "allowed.test/apix -> 200 /v2x", "allowed.test/files/notes.txt -> 200 /files/notes.txt",
            "allowed.test/files/NOTES.txt -> 200 /files/NOTES.txt", "mirror.example/ -> 200 /", "mirror/ -> 403 blocked by the airgap allowlist",
            "allowed.test.evil/ -> 403 blocked by the airgap allowlist", "evil.test/ -> 403 blocked by the airgap allowlist",
        ])
    }

    @Test func whatIsOutsideTheSubsetIsRefusedWithItsPath() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("envoy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = Self.bootstrap(listenPort: 0, adminPort: 0, origin: "127.0.0.1:9")
        text = text.replacingOccurrences(of: "stat_prefix: egress_http", with: "stat_prefix: egress_http\n          use_remote_address: true")
        text = text.replacingOccurrences(of: "type: STRICT_DNS", with: "type: EDS")
        text = text.replacingOccurrences(of: "- name: envoy.filters.http.router", with: "- name: envoy.filters.http.lua\n            typed_config: {}\n          - name: envoy.filters.http.router")
        try text.write(toFile: dir + "/envoy.yaml", atomically: true, encoding: .utf8)
        let r = try await Subprocess.run(binary, ["validate", "-c", dir + "/envoy.yaml"], timeout: .seconds(30))
        #expect(r.status == 1)
        for expected in [
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.use_remote_address: not supported",
            "static_resources.clusters[0].type: EDS: not supported (STATIC, STRICT_DNS or LOGICAL_DNS)",
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].name: envoy.filters.http.lua: not supported",
        ] {
            #expect(r.stdout.contains(expected) || r.stderr.contains(expected), "missing \(expected) in \(r.stdout) \(r.stderr)")
        }
    }
}
