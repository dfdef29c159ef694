import FerryKubernetes
import FerryKubernetesClient
import Foundation
import Testing

/// The exec credential plugin run for real: its answer cached until it expires, a failure named.
@Suite struct ExecCredentialsTests {
    @Test func runsThePluginAndCachesUntilExpiry() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-exec-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A plugin that counts its runs and answers a token that expires at a fixed time.
        let plugin = dir + "/plugin.sh"
        try """
        #!/bin/sh
        echo run >> "\(dir)/runs"
        case "$KUBERNETES_EXEC_INFO" in *ExecCredential*) ;; *) exit 3 ;; esac
        printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok-%s","expirationTimestamp":"2030-01-01T00:00:00Z"}}' "$REGION"
        """.write(toFile: plugin, atomically: true, encoding: .utf8)
        chmod(plugin, 0o755)
        let exec = ExecCredentials(config: Kubeconfig.ExecConfig(apiVersion: "client.authentication.k8s.io/v1", command: plugin, args: [], env: ["REGION": "eu"]), clusterServer: "https://x")
        let expiry: Int64 = 1_893_456_000  // 2030-01-01T00:00:00Z
        #expect(try exec.credential(now: expiry - 3600).token == "tok-eu")
        #expect(try exec.credential(now: expiry - 3000).token == "tok-eu")
        #expect(try String(contentsOfFile: dir + "/runs", encoding: .utf8) == "run\n", "cached until it expires")
        _ = try exec.credential(now: expiry - 5)
        #expect(try String(contentsOfFile: dir + "/runs", encoding: .utf8) == "run\nrun\n", "run again near expiry")
    }

    @Test func aFailingPluginIsNamed() {
        let exec = ExecCredentials(config: Kubeconfig.ExecConfig(apiVersion: "client.authentication.k8s.io/v1", command: "/bin/false", args: [], env: [:]), clusterServer: "https://x")
        #expect(throws: KubeconfigError.self) { try exec.credential() }
        do { _ = try exec.credential() } catch { #expect("\(error)".contains("exec credential plugin /bin/false exited with status 1")) }
    }
}
