import FerryTestSupport
import Foundation
import Testing

/// kubectl as a client of the fake API server: apply (create, then a strategic merge patch), server-side
/// apply, get, delete — the writes the cluster tests drive Ferry with.
@Suite(.serialized)
struct KubectlWritesTests {
    @Test(.requires("kubectl")) func applyChangeAndDelete() async throws {
        guard Prerequisites.have("kubectl") else { return }
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(["v1/services", "discovery.k8s.io/v1/endpointslices", "networking.k8s.io/v1/ingresses"])
            let manifest = dir + "/web.yaml"
            func write(_ port: Int) throws {
                try """
                apiVersion: v1
                kind: Service
                metadata: {name: web, namespace: demo}
                spec:
                  clusterIP: 10.96.0.10
                  ports: [{name: http, port: 80, targetPort: \(port)}]
                """.write(toFile: manifest, atomically: true, encoding: .utf8)
            }
            try write(8080)
            let kubectl = ["--kubeconfig", dir + "/config"]
            // The fake serves no OpenAPI documents, which client-side validation downloads.
            let created = try await Subprocess.run(Prerequisites.path(of: "kubectl")!, kubectl + ["apply", "--validate=false", "-f", manifest])
            #expect(created.status == 0, "\(created.stdout)\(created.stderr)\n\(api.requests.joined(separator: "\n"))")
            try write(8081)
            let changed = try await Subprocess.run(Prerequisites.path(of: "kubectl")!, kubectl + ["apply", "--validate=false", "-f", manifest])
            #expect(changed.status == 0, "\(changed.stdout)\(changed.stderr)\n\(api.requests.joined(separator: "\n"))")
            let spec = api.object("v1/services", namespace: "demo", name: "web")?["spec"] as? [String: Any]
            let ports = spec?["ports"] as? [[String: Any]]
            #expect(ports?.first?["targetPort"] as? Int == 8081, "\(String(describing: spec))")
            #expect(ports?.first?["name"] as? String == "http")
            let deleted = try await Subprocess.run(Prerequisites.path(of: "kubectl")!, kubectl + ["delete", "-f", manifest])
            #expect(deleted.status == 0, "\(deleted.stdout)\(deleted.stderr)")
            #expect(api.object("v1/services", namespace: "demo", name: "web") == nil)
        }
    }
}
