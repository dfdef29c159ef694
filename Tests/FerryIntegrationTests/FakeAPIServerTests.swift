import FerryTestSupport
import Foundation
import Testing

/// The fake API server the api-proxy tests will use, checked with curl: TLS, token, shapes, and a watch
/// whose events arrive as they are produced.
@Suite(.serialized)
struct FakeAPIServerTests {
    @Test(.requires("curl", "openssl")) func servesTheAPIShapesOverTLSWithAToken() async throws {
        guard Prerequisites.have("curl", "openssl") else { return }
        let dir = try TLSFixtures.folder("fakeapi")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try await TLSFixtures.certificate(in: dir, name: "kubernetes", extraSANs: ["IP:127.0.0.1"])
        let server = try FakeAPIServer(group: Fixtures.originGroup, certificate: dir + "/cert.pem", key: dir + "/key.pem", token: "t0k3n")
        defer { server.close() }
        server.addPod(namespace: "default", name: "web-1")
        let base = "https://127.0.0.1:\(server.port)"
        let auth = ["--cacert", dir + "/cert.pem", "-H", "Authorization: Bearer t0k3n"]

        let denied = try await Curl.request(base + "/api/v1/nodes", ["--cacert", dir + "/cert.pem"])
        #expect(denied.status == 401 && denied.body.contains("\"kind\":\"Status\"") && denied.body.contains("\"code\":401"))
        let version = try await Curl.request(base + "/version", auth)
        #expect(version.status == 200 && version.body.contains("\"gitVersion\":\"v1.31.0\""))
        let nodes = try await Curl.request(base + "/api/v1/nodes", auth)
        #expect(nodes.body.contains("\"kind\":\"NodeList\"") && nodes.body.contains("\"name\":\"node-1\""))
        let pods = try await Curl.request(base + "/api/v1/namespaces/default/pods", auth)
        #expect(pods.body.contains("\"kind\":\"PodList\"") && pods.body.contains("\"name\":\"web-1\""))
        let missing = try await Curl.request(base + "/api/v1/namespaces/default/pods/nope", auth)
        #expect(missing.status == 404 && missing.body.contains("\"reason\":\"NotFound\""))

        // A watch: the existing pod first, then each change as it is made.
        let watch = try Subprocess(Curl.curlPath, ["-sSN", "--max-time", "20"] + auth + [base + "/api/v1/namespaces/default/pods?watch=true"])
        defer { watch.signal(SIGKILL) }
        #expect(await Waiting.until { watch.stdout.contains("\"type\":\"ADDED\"") && watch.stdout.contains("web-1") })
        server.addPod(namespace: "default", name: "web-2")
        #expect(await Waiting.until { watch.stdout.contains("web-2") })
        server.deletePod(namespace: "default", name: "web-1")
        #expect(await Waiting.until { watch.stdout.contains("\"type\":\"DELETED\"") })
        server.addPod(namespace: "other", name: "elsewhere")
        server.addPod(namespace: "default", name: "web-3")
        #expect(await Waiting.until { watch.stdout.contains("web-3") })
        #expect(!watch.stdout.contains("elsewhere"), "a watch sees its own namespace only (web-3 came after it)")
    }

    @Test(.requires("curl", "openssl")) func aWatchFromAResourceVersionSeesOnlyLaterChanges() async throws {
        guard Prerequisites.have("curl", "openssl") else { return }
        let dir = try TLSFixtures.folder("fakeapi-rv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try await TLSFixtures.certificate(in: dir, name: "kubernetes", extraSANs: ["IP:127.0.0.1"])
        let server = try FakeAPIServer(group: Fixtures.originGroup, certificate: dir + "/cert.pem", key: dir + "/key.pem", token: "t0k3n")
        defer { server.close() }
        server.addPod(namespace: "default", name: "old")
        let auth = ["--cacert", dir + "/cert.pem", "-H", "Authorization: Bearer t0k3n"]
        let base = "https://127.0.0.1:\(server.port)/api/v1/namespaces/default/pods"
        let list = try await Curl.request(base, auth)
        let rv = try #require(list.body.firstMatch(of: /"metadata":\{"resourceVersion":"(\d+)"\}/)?.1)
        let watch = try Subprocess(Curl.curlPath, ["-sSN", "--max-time", "20"] + auth + [base + "?watch=true&resourceVersion=\(rv)"])
        defer { watch.signal(SIGKILL) }
        server.addPod(namespace: "default", name: "new")
        #expect(await Waiting.until { watch.stdout.contains("\"name\":\"new\"") })
        #expect(!watch.stdout.contains("\"name\":\"old\""), "the list already had it")
    }
}
