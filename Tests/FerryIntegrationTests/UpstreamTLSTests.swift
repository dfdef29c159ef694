import FerryTestSupport
import Foundation
import Testing

/// Clusters with `tls:`: Ferry verifies the upstream's certificate against the configured CA and name.
@Suite(.serialized)
struct UpstreamTLSTests {
    @Test(.requires("curl", "openssl", "python3")) func aClusterOverTLSIsVerifiedByCAAndName() async throws {
        guard Prerequisites.have("curl", "openssl", "python3"), let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("utls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try await TLSFixtures.certificate(in: dir, name: "secure.test")
        let (origin, port) = try await TLSFixtures.startOrigin(in: dir, cert: cert, key: key)
        defer { origin.signal(SIGKILL) }
        func config(serverName: String) -> String {
            Fixtures.config(
                routes: "- match: {prefix: /}\n  forward: {cluster: secure}",
                clusters: "- name: secure\n  endpoints: [\"127.0.0.3:\(port)\"]\n  tls: {ca_file: cert.pem, server_name: \(serverName)}")
        }
        try config(serverName: "secure.test").write(toFile: dir + "/ferry.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", dir + "/ferry.yaml", "--threads", "1"], configPath: dir + "/ferry.yaml")
        defer { Task { await ferry.stop() } }
        let ok = try await Curl.request(ferry.url("/x"))
        #expect(ok.status == 200 && ok.body.hasPrefix("secure hello via"), "\(ok.status) \(ok.body)")
        // The wrong name: the certificate does not verify and nothing is sent.
        try ferry.rewriteConfig(config(serverName: "other.test"))
        #expect(await Waiting.until { ferry.appliedReloads >= 1 })
        let bad = try await Curl.request(ferry.url("/x"))
        #expect(bad.status == 502 || bad.status == 503, "\(bad.status) \(bad.body)")
    }
}
