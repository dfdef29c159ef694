import FerryTestSupport
import Foundation
import Testing

/// `ferry sidecar` as a process beside an app (a test origin): inbound to the app, /ready waiting for it,
/// the inbound source ranges, both directions named in the access log; and an Envoy bootstrap run as the
/// sidecar's configuration.
@Suite(.serialized)
struct SidecarProcessTests {
    @Test(.requires("curl")) func inboundWaitsForTheAppAndNamesItsDirection() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        let appPort = LocalPorts.unused()
        let sidecar = try await FerryProcess(binary: binary, arguments: [
            "sidecar", "--app-port", "\(appPort)", "--inbound", "127.0.0.1:0", "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            "--allow", ".example.com", "--threads", "1",
        ])
        defer { Task { await sidecar.stop() } }
        let admin = try #require(sidecar.adminPort)
        let inbound = try #require(sidecar.port("inbound"))
        #expect(sidecar.port("outbound") != nil)
        // No app yet: not ready, and inbound requests fail upstream.
        let before = try await Curl.request("http://127.0.0.1:\(admin)/ready")
        #expect(before.status == 503 && before.body.contains("does not accept connections on 127.0.0.1:\(appPort)"), "\(before.body)")
        // The app starts: ready within a probe period, and inbound reaches it.
        let app = try TestOrigin(name: "app", group: Fixtures.originGroup, port: appPort)
        defer { try? app.channel.close().wait() }
        #expect(await Waiting.untilAsync(timeout: .seconds(10)) { (try? await Curl.request("http://127.0.0.1:\(admin)/ready").status) == 200 })
        let through = try await Curl.request("http://127.0.0.1:\(inbound)/hello")
        #expect(through.status == 200 && through.body.contains("\"origin\":\"app\""), "\(through.body)")
        #expect(await Waiting.until { sidecar.accessLog.contains { $0.contains(#""listener":"inbound""#) && $0.contains(#""path":"/hello""#) } }, "\(sidecar.accessLog)")
    }

    @Test(.requires("curl")) func inboundSourcesAreEnforced() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        let app = try TestOrigin(name: "app", group: Fixtures.originGroup)
        defer { try? app.channel.close().wait() }
        let sidecar = try await FerryProcess(binary: binary, arguments: [
            "sidecar", "--app-port", "\(app.port)", "--inbound", "127.0.0.1:0", "--outbound", "none", "--admin", "127.0.0.1:0",
            "--inbound-allow-source", "10.0.0.0/8", "--threads", "1",
        ])
        defer { Task { await sidecar.stop() } }
        let refused = try await Curl.request("http://127.0.0.1:\(try #require(sidecar.port("inbound")))/")
        #expect(refused.status == 403, "\(refused.body)")
        #expect(sidecar.port("outbound") == nil)
    }

    @Test(.requires("curl")) func anEnvoyBootstrapIsTheSidecarsConfiguration() async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        let app = try TestOrigin(name: "site", group: Fixtures.originGroup)
        defer { try? app.channel.close().wait() }
        let dir = try TLSFixtures.folder("sidecar")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try EnvoyBootstrapTests.bootstrap(listenPort: 0, adminPort: 0, origin: app.address).write(toFile: dir + "/envoy.yaml", atomically: true, encoding: .utf8)
        let sidecar = try await FerryProcess(binary: binary, arguments: ["sidecar", "--envoy-config", dir + "/envoy.yaml", "--app-port", "\(app.port)", "--threads", "1"],
                                             configPath: dir + "/envoy.yaml")
        defer { Task { await sidecar.stop() } }
        let port = try #require(sidecar.port("airgap_egress"))
        #expect(try await Curl.request("http://127.0.0.1:\(port)/", ["-H", "Host: allowed.test"]).status == 200)
        #expect(try await Curl.request("http://127.0.0.1:\(port)/", ["-H", "Host: evil.test"]).status == 403)
        #expect(await Waiting.untilAsync(timeout: .seconds(10)) { (try? await Curl.request("http://127.0.0.1:\(try #require(sidecar.adminPort))/ready").status) == 200 })
        // Flags that belong in the file are refused with --envoy-config.
        let mixed = try await Subprocess.run(binary, ["sidecar", "--envoy-config", dir + "/envoy.yaml", "--allow", "x.test"], timeout: .seconds(20))
        #expect(mixed.status != 0 && mixed.stderr.contains("--envoy-config is the whole configuration"), "\(mixed.stderr)")
    }
}
