import AsyncHTTPClient
import FerryKubernetes
import FerryKubernetesClient
import FerryModel
import FerryProxy
import FerryTestSupport
import Foundation
import Logging
import NIOSSL
import NIOConcurrencyHelpers
import Testing

/// List + watch against the fake API server, over TLS with a bearer token: pages, events, a dropped
/// watch, compaction (410), 429/500 with Retry-After — the cache ends equal to the server's state.
@Suite(.serialized)
struct ResourceWatcherTests {
    /// The latest cache a watcher reported, and every change.
    final class Observed: Sendable {
        let box = NIOLockedValueBox<(cache: InformerCache?, changes: [InformerCache.Change], updates: Int)>((nil, [], 0))
        var names: [String] { box.withLockedValue { $0.cache.map { $0.manifestSet.services.map(\.metadata.name) } ?? [] } }
        var clusterIPs: [String: String] {
            box.withLockedValue { state in
                Dictionary(uniqueKeysWithValues: (state.cache?.manifestSet.services ?? []).map { ($0.metadata.name, $0.clusterIP ?? "") })
            }
        }
    }

    static func service(_ name: String, ip: String) -> [String: Any] {
        ["apiVersion": "v1", "kind": "Service", "metadata": ["labels": ["app": name]], "spec": ["clusterIP": ip, "ports": [["name": "http", "port": 80, "targetPort": 8080]]]]
    }

    static func withWatcher(pageSize: Int = 2, _ body: (FakeAPIServer, Observed) async throws -> Void) async throws {
        guard Prerequisites.have("openssl") else { return }
        let dir = try TLSFixtures.folder("watch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try await TLSFixtures.certificate(in: dir, name: "kubernetes", extraSANs: ["IP:127.0.0.1"])
        let api = try FakeAPIServer(group: Fixtures.originGroup, certificate: cert, key: key, token: "t0k3n")
        defer { api.close() }
        api.serve(["v1/services"])
        for i in 1...5 { api.put("v1/services", namespace: "demo", name: "svc-\(i)", object: service("svc-\(i)", ip: "10.96.0.\(i)")) }
        let server = APIServer(scheme: "https", host: "127.0.0.1", port: api.port, path: "", tls: UpstreamTLS(caFile: cert), authorization: "Bearer t0k3n", describedAs: "fake")
        let client = APIClient(server: server, tls: try TLSConfiguration.client(server.tls!))
        let watcher = ResourceWatcher(resource: .services, api: client, logger: Logger(label: "test"), pageSize: pageSize, watchTimeout: .seconds(30))
        let observed = Observed()
        let task = Task {
            await watcher.run { cache, changes in
                observed.box.withLockedValue { $0 = (cache, $0.changes + changes, $0.updates + 1) }
            }
        }
        do {
            try await body(api, observed)
        } catch {
            task.cancel()
            await client.shutdown()
            throw error
        }
        // Cancelling ends the watcher at once; the fake's connections are closed so that the client's
        // shutdown need not wait for them to end (about 5 s for a TLS connection).
        task.cancel()
        _ = await task.value
        api.dropWatches()
        await client.shutdown()
    }

    @Test func aPagedListThenEventsAsTheyHappen() async throws {
        try await Self.withWatcher { api, observed in
            #expect(await Waiting.until { observed.names.count == 5 }, "\(observed.names)")
            #expect(api.requests.filter { $0.contains("/api/v1/services?") && $0.contains("limit=2") }.count == 3, "5 objects in pages of 2: \(api.requests)")
            api.put("v1/services", namespace: "demo", name: "svc-6", object: Self.service("svc-6", ip: "10.96.0.6"))
            api.put("v1/services", namespace: "demo", name: "svc-1", object: Self.service("svc-1", ip: "10.96.1.1"))
            api.remove("v1/services", namespace: "demo", name: "svc-2")
            #expect(await Waiting.until { observed.names == ["svc-1", "svc-3", "svc-4", "svc-5", "svc-6"] && observed.clusterIPs["svc-1"] == "10.96.1.1" }, "\(observed.names)")
            let changes = observed.box.withLockedValue { $0.changes }
            #expect(changes.suffix(3) == [.added("demo/svc-6"), .updated("demo/svc-1"), .deleted("demo/svc-2")])
        }
    }

    @Test func aDroppedWatchResumesFromTheLastResourceVersion() async throws {
        try await Self.withWatcher { api, observed in
            #expect(await Waiting.until { observed.names.count == 5 && api.openWatches == 1 })
            let listsBefore = api.requests.filter { !$0.contains("watch=") && $0.contains("/api/v1/services") }.count
            api.sendBookmarks()
            api.dropWatches()
            api.put("v1/services", namespace: "demo", name: "svc-7", object: Self.service("svc-7", ip: "10.96.0.7"))
            #expect(await Waiting.until { observed.names.contains("svc-7") })
            #expect(api.watchRequests("v1/services") >= 2)
            let listsAfter = api.requests.filter { !$0.contains("watch=") && $0.contains("/api/v1/services") }.count
            #expect(listsAfter == listsBefore, "a resumed watch needs no new list")
        }
    }

    @Test func aCompactedResourceVersionIsListedAgainAndOnlyTheDifferenceIsReported() async throws {
        try await Self.withWatcher { api, observed in
            #expect(await Waiting.until { observed.names.count == 5 && api.openWatches == 1 })
            api.dropWatches()
            // While no watch is open: changes, then a compaction that forgets them.
            api.failNext(1, status: 500)
            api.put("v1/services", namespace: "demo", name: "svc-3", object: Self.service("svc-3", ip: "10.96.3.3"))
            api.remove("v1/services", namespace: "demo", name: "svc-4")
            api.compact()
            #expect(await Waiting.until(timeout: .seconds(15)) { observed.names == ["svc-1", "svc-2", "svc-3", "svc-5"] && observed.clusterIPs["svc-3"] == "10.96.3.3" }, "\(observed.names)")
            let changes = observed.box.withLockedValue { $0.changes }
            #expect(changes.suffix(2) == [.updated("demo/svc-3"), .deleted("demo/svc-4")], "the relist reports only what changed: \(changes)")
            let lists = api.requests.filter { !$0.contains("watch=") && $0.contains("/api/v1/services") }
            #expect(lists.count == 5, "3 pages of the first list, 2 of the relist (4 objects): \(api.requests)")
        }
    }

    @Test func retryAfterIsHonoured() async throws {
        try await Self.withWatcher(pageSize: 500) { api, observed in
            #expect(await Waiting.until { observed.names.count == 5 && api.openWatches == 1 })
            api.failNext(2, status: 429, retryAfter: 1)
            let started = ContinuousClock.now
            api.dropWatches()
            api.put("v1/services", namespace: "demo", name: "svc-8", object: Self.service("svc-8", ip: "10.96.0.8"))
            #expect(await Waiting.until(timeout: .seconds(15)) { observed.names.contains("svc-8") })
            #expect(ContinuousClock.now - started >= .seconds(2), "two answers of 429 with Retry-After: 1")
        }
    }
}

/// A token read from a file (the service account's projected token, which the kubelet rotates) is read
/// again after the refresh interval: requests start working once the file holds the valid token.
@Suite struct RotatedTokenTests {
    @Test(.requires("openssl")) func aRotatedTokenFileIsReadAgain() async throws {
        guard Prerequisites.have("openssl") else { return }
        let dir = try TLSFixtures.folder("token")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try await TLSFixtures.certificate(in: dir, name: "kubernetes", extraSANs: ["IP:127.0.0.1"])
        let api = try FakeAPIServer(group: Fixtures.originGroup, certificate: cert, key: key, token: "t0k3n")
        defer { api.close() }
        api.serve(["v1/services"])
        try "expired-token\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        var server = APIServer(scheme: "https", host: "127.0.0.1", port: api.port, path: "", tls: UpstreamTLS(caFile: cert), authorization: "Bearer expired-token", describedAs: "fake")
        server.credentialFiles = [dir + "/token"]
        let client = APIClient(server: server, tls: try TLSConfiguration.client(server.tls!), tokenRefresh: .milliseconds(200))
        do {
            await #expect(throws: APIRequestError.self) { try await client.get("/api/v1/namespaces/demo/services/web") }
            // The kubelet writes the new token: once the refresh interval has passed, requests carry it (and
            // are authenticated: the Service is simply not there).
            try "t0k3n\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
            #expect(await Waiting.untilAsync(timeout: .seconds(5)) {
                do { return try await client.get("/api/v1/namespaces/demo/services/web") == nil } catch { return false }
            })
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
    }
}
