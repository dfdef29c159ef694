import FerryTestSupport
import Foundation
import Testing

/// Clusters with `tls:`: Ferry verifies the upstream's certificate against the configured CA and name.
@Suite(.serialized)
struct UpstreamTLSTests {
    @Test func aClusterOverTLSIsVerifiedByCAAndName() async throws {
        guard Prerequisites.have("curl", "openssl", "python3"), let binary = Prerequisites.ferryBinary() else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-utls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try await Subprocess.run(Prerequisites.path(of: "openssl")!, [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=secure.test",
            "-addext", "subjectAltName=DNS:secure.test", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        try EgressProcessTests.tlsOrigin.write(toFile: dir + "/tls.py", atomically: true, encoding: .utf8)
        let origin = try Subprocess(Prerequisites.path(of: "python3")!, [dir + "/tls.py", dir + "/cert.pem", dir + "/key.pem"])
        defer { origin.signal(SIGTERM) }
        #expect(await Waiting.until { !origin.stdout.isEmpty })
        let port = try #require(Int(origin.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        func config(serverName: String) -> String {
            """
            admin: {address: "127.0.0.1:0"}
            listeners:
              - name: web
                address: "127.0.0.1:0"
                http:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                        - match: {prefix: /}
                          forward: {cluster: secure}
            clusters:
              - name: secure
                endpoints: ["127.0.0.3:\(port)"]
                tls: {ca_file: cert.pem, server_name: \(serverName)}
            """
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
