import FerryTestSupport
import Foundation
import Testing

/// `ferry ingress` as a cluster member: two replicas elect one status writer through a Lease, the leader
/// writes `status.loadBalancer.ingress` and Warning Events, a killed leader is replaced within the lease
/// duration, and a graceful stop clears the status it wrote; kubectl drives the changes; API faults never
/// interrupt the traffic.
@Suite(.serialized)
struct IngressClusterTests {
    static let collections = ["v1/services", "discovery.k8s.io/v1/endpointslices", "networking.k8s.io/v1/ingresses", "networking.k8s.io/v1/ingressclasses", "v1/secrets", "coordination.k8s.io/v1/leases", "v1/events"]
    static let ingresses = "networking.k8s.io/v1/ingresses"

    /// The addresses in an Ingress's status, as the fake stores it.
    static func published(_ api: FakeAPIServer, _ name: String) -> [String] {
        let status = api.object(ingresses, namespace: "demo", name: name)?["status"] as? [String: Any]
        let list = (status?["loadBalancer"] as? [String: Any])?["ingress"] as? [[String: Any]] ?? []
        return list.compactMap { ($0["ip"] ?? $0["hostname"]) as? String }
    }

    static func holder(_ api: FakeAPIServer) -> String? {
        ((api.object("coordination.k8s.io/v1/leases", namespace: "ferry", name: "ferry-ingress-leader")?["spec"] as? [String: Any])?["holderIdentity"]) as? String
    }

    static func replica(_ binary: String, _ dir: String, _ name: String, extra: [String] = []) async throws -> FerryProcess {
        // Quick election timing so that the takeover fits a test: lease 3 s, renew 2 s, retry 0.5 s.
        try await FerryProcess(binary: binary, arguments: ["ingress", "--kubeconfig", dir + "/config", "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1",
                                                           "--election-namespace", "ferry", "--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s",
                                                           "--leader-elect-retry-period", "500ms"] + extra, environment: ["POD_NAME": name])
    }

    @Test func oneLeaderWritesStatusAndTheOtherTakesOver() async throws {
        guard let binary = Prerequisites.ferryBinary(), Prerequisites.have("curl") else { return }
        let origin = try TestOrigin(name: "web", group: Fixtures.originGroup)
        defer { origin.close() }
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(Self.collections)
            api.put("v1/services", namespace: "demo", name: "web", object: IngressAPITests.service)
            api.put("discovery.k8s.io/v1/endpointslices", namespace: "demo", name: "web-1", object: IngressAPITests.slice(port: origin.port))
            api.put(Self.ingresses, namespace: "demo", name: "shop", object: IngressAPITests.ingress(host: "shop.example"))
            // Served by another controller: its status is not Ferry's to write.
            var theirs = IngressAPITests.ingress(host: "theirs.example")
            theirs["spec"] = ["ingressClassName": "nginx", "rules": [] as [Any]]
            api.put(Self.ingresses, namespace: "demo", name: "theirs", object: theirs)
            // The Service in front of Ferry, with the load balancer's address.
            api.put("v1/services", namespace: "ferry", name: "ferry-ingress", object: ["apiVersion": "v1", "kind": "Service",
                "spec": ["type": "LoadBalancer", "clusterIP": "10.96.0.50", "ports": [["port": 80]]], "status": ["loadBalancer": ["ingress": [["ip": "203.0.113.7"]]]]])
            let publish = ["--publish-service", "ferry/ferry-ingress"]
            let a = try await Self.replica(binary, dir, "ferry-a", extra: publish)
            let b = try await Self.replica(binary, dir, "ferry-b", extra: publish)
            var stopped: [FerryProcess] = []
            do {
                #expect(await Waiting.until(timeout: .seconds(10)) { Self.published(api, "shop") == ["203.0.113.7"] }, "\(a.stderr)\(b.stderr)")
                #expect(Self.published(api, "theirs").isEmpty)
                let first = try #require(Self.holder(api))
                #expect(["ferry-a", "ferry-b"].contains(first))
                let (leader, follower) = first == "ferry-a" ? (a, b) : (b, a)
                // Only the leader writes: one status write for the Ingress.
                #expect(api.requests.filter { $0.hasPrefix("PUT /apis/networking.k8s.io/v1/namespaces/demo/ingresses/shop/status") }.count == 1)
                // Every replica serves.
                for replica in [a, b] {
                    let port = try #require(replica.port("ingress-http"))
                    #expect(try IngressAPITests.blockingStatus(port: port) == 200)
                }
                let metrics = try await Curl.request("http://127.0.0.1:\(try #require(leader.adminPort))/metrics")
                #expect(metrics.body.contains("ferry_leader{lease=\"ferry/ferry-ingress-leader\"} 1"), "\(metrics.body)")
                #expect(metrics.body.contains("ferry_kubernetes_lists_total{resource=\"ingresses\"} 1"))
                // The load balancer's address changes: the leader follows it.
                api.put("v1/services", namespace: "ferry", name: "ferry-ingress", object: ["apiVersion": "v1", "kind": "Service",
                    "spec": ["type": "LoadBalancer", "clusterIP": "10.96.0.50", "ports": [["port": 80]]], "status": ["loadBalancer": ["ingress": [["hostname": "lb.example.net"]]]]])
                api.put(Self.ingresses, namespace: "demo", name: "cart", object: IngressAPITests.ingress(host: "cart.example"))
                #expect(await Waiting.until(timeout: .seconds(10)) { Self.published(api, "cart") == ["lb.example.net"] && Self.published(api, "shop") == ["lb.example.net"] })
                // The leader dies without releasing: the other takes over within the lease duration (3 s) plus a retry.
                leader.signal(SIGKILL)
                _ = await leader.waitForExit(timeout: .seconds(5))
                stopped.append(leader)
                let killedAt = ContinuousClock.now
                #expect(await Waiting.until(timeout: .seconds(10)) { Self.holder(api) == (first == "ferry-a" ? "ferry-b" : "ferry-a") }, "\(follower.stderr)")
                #expect(ContinuousClock.now - killedAt < .seconds(6))
                let lease = api.object("coordination.k8s.io/v1/leases", namespace: "ferry", name: "ferry-ingress-leader")?["spec"] as? [String: Any]
                #expect(lease?["leaseTransitions"] as? Int == 1)
                // The new leader says so once it leads (after its Lease write is answered): its Event.
                let second = first == "ferry-a" ? "ferry-b" : "ferry-a"
                @Sendable func events() -> [String] { api.objects("v1/events").filter { ($0["reason"] as? String) == "LeaderElection" }.compactMap { $0["message"] as? String } }
                #expect(await Waiting.until(timeout: .seconds(10)) { events().contains("\(second) became leader") }, "\(events())")
                #expect(events().contains("\(first) became leader"))
                // A graceful stop of the new leader clears the status it published (one address) and releases the Lease.
                follower.signal(SIGTERM)
                #expect(await follower.waitForExit(timeout: .seconds(15)) == 0, "\(follower.stderr)")
                stopped.append(follower)
                #expect(Self.published(api, "shop").isEmpty && Self.published(api, "cart").isEmpty, "\(follower.stderr)")
                #expect(Self.holder(api) == "")
            } catch {
                for p in [a, b] where !stopped.contains(where: { $0 === p }) { await p.stop() }
                throw error
            }
            for p in [a, b] where !stopped.contains(where: { $0 === p }) { await p.stop() }
        }
    }

    @Test func warningEventsForRefusedIngressesAndStatusConflictsRetried() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(Self.collections)
            api.put(Self.ingresses, namespace: "demo", name: "shop", object: IngressAPITests.ingress(host: "shop.example"))
            let ferry = try await Self.replica(binary, dir, "ferry-a", extra: ["--publish-status-address", "198.51.100.4, edge.example.com"])
            do {
                #expect(await Waiting.until(timeout: .seconds(10)) { Self.published(api, "shop") == ["edge.example.com", "198.51.100.4"] }, "\(ferry.stderr)")
                // The Service it names does not exist: one Warning Event on the Ingress, however often it syncs.
                #expect(await Waiting.until(timeout: .seconds(10)) { api.objects("v1/events").contains { ($0["reason"] as? String) == "ServiceNotFound" } })
                let warning = try #require(api.objects("v1/events").first { ($0["reason"] as? String) == "ServiceNotFound" })
                let involved = warning["involvedObject"] as? [String: Any]
                #expect(involved?["kind"] as? String == "Ingress" && involved?["name"] as? String == "shop" && involved?["namespace"] as? String == "demo")
                #expect(warning["type"] as? String == "Warning")
                #expect((warning["message"] as? String)?.contains("Service demo/web not found") == true, "\(warning)")
                // Its status changes under Ferry (another writer): Ferry's write conflicts, reads again, and wins.
                let served = api.faultsServed
                api.failNextWrites(2, status: 409, pathSuffix: "/ingresses/shop/status")
                api.put(Self.ingresses, namespace: "demo", name: "shop", object: IngressAPITests.ingress(host: "shop.example"))
                #expect(await Waiting.until(timeout: .seconds(10)) { Self.published(api, "shop") == ["edge.example.com", "198.51.100.4"] }, "\(ferry.stderr)")
                #expect(api.faultsServed == served + 2, "both conflicts were met and retried")
                // An Ingress Ferry cannot read is refused alone, with an Event, and the watch goes on.
                var bad = IngressAPITests.ingress(host: "bad.example")
                bad["spec"] = ["ingressClassName": "ferry", "rules": [["host": "bad.example", "http": ["paths": [["path": "nope", "pathType": "Prefix", "backend": ["service": ["name": "web", "port": ["number": 80]]]]]]]]]
                api.put(Self.ingresses, namespace: "demo", name: "bad", object: bad)
                #expect(await Waiting.until(timeout: .seconds(10)) { api.objects("v1/events").contains { ($0["reason"] as? String) == "Invalid" } }, "\(ferry.stderr)")
                api.put(Self.ingresses, namespace: "demo", name: "cart", object: IngressAPITests.ingress(host: "cart.example"))
                #expect(await Waiting.until(timeout: .seconds(10)) { Self.published(api, "cart").count == 2 }, "the watch went on after the refused object")
                let count = api.objects("v1/events").filter { ($0["reason"] as? String) == "ServiceNotFound" && (($0["involvedObject"] as? [String: Any])?["name"] as? String) == "shop" }.count
                #expect(count == 1, "repeated problems are not sent again")
            } catch {
                await ferry.stop()
                throw error
            }
            await ferry.stop()
        }
    }
}

/// kubectl drives the cluster (the fake) while curl keeps requesting through `ferry ingress`: every change
/// is followed, and API faults (429 with Retry-After, 500s, an API server restart that drops every watch, a
/// compaction) never fail a request; the routing ends equal to the cluster's state.
@Suite(.serialized)
struct IngressKubectlTests {
    static func manifests(host: String, port: Int) -> String {
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: shop, namespace: demo}
        spec:
          ingressClassName: ferry
          rules:
          - host: \(host)
            http:
              paths:
              - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: demo}
        spec:
          clusterIP: 10.96.0.10
          ports: [{name: http, port: 80, targetPort: 8080}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: web-1
          namespace: demo
          labels: {kubernetes.io/service-name: web}
        addressType: IPv4
        ports: [{name: http, port: \(port), protocol: TCP}]
        endpoints:
        - addresses: [127.0.0.1]
          conditions: {ready: true}
        """
    }

    @Test func kubectlChangesAreFollowedThroughAPIFaults() async throws {
        guard let binary = Prerequisites.ferryBinary(), Prerequisites.have("curl", "kubectl"), let kubectl = Prerequisites.path(of: "kubectl") else { return }
        let blue = try TestOrigin(name: "blue", group: Fixtures.originGroup)
        let green = try TestOrigin(name: "green", group: Fixtures.originGroup)
        defer { blue.close(); green.close() }
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(IngressClusterTests.collections)
            let file = dir + "/app.yaml"
            func apply(host: String, port: Int) async throws {
                try Self.manifests(host: host, port: port).write(toFile: file, atomically: true, encoding: .utf8)
                // The fake serves no OpenAPI documents, which client-side validation downloads.
                let r = try await Subprocess.run(kubectl, ["--kubeconfig", dir + "/config", "apply", "--validate=false", "-f", file])
                #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            }
            try await apply(host: "shop.example", port: blue.port)
            let ferry = try await FerryProcess(binary: binary, arguments: ["ingress", "--kubeconfig", dir + "/config", "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                                                                           "--threads", "1", "--update-status", "false"])
            do {
                let port = try #require(ferry.port("ingress-http"))
                let ready = try await Curl.request("http://127.0.0.1:\(try #require(ferry.adminPort))/ready")
                #expect(ready.status == 200 && ready.body == "ready\n")
                // Traffic throughout: a bounded loop of requests, every one must succeed. At least 20 are
                // made whenever the faults end (on a busy machine they can be over within a few requests).
                let traffic = Task { () -> [Int] in
                    var statuses: [Int] = []
                    for i in 0..<400 where i < 20 || !Task.isCancelled {
                        statuses.append((try? IngressAPITests.blockingStatus(port: port)) ?? 0)
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    return statuses
                }
                // The endpoint moves to green with kubectl apply: followed.
                try await apply(host: "shop.example", port: green.port)
                #expect(await Waiting.until(timeout: .seconds(10)) { green.requestsServed > 0 })
                // Faults: the next watch requests get 429 (Retry-After 1) and 500s, then the API server
                // "restarts" (every watch dropped) and compacts its history while the endpoint moves back.
                api.failNext(2, status: 429, retryAfter: 1)
                api.failNext(2, status: 500)
                api.dropWatches()
                try await apply(host: "shop.example", port: blue.port)
                api.compact()
                let blueBefore = blue.requestsServed
                #expect(await Waiting.until(timeout: .seconds(20)) { blue.requestsServed > blueBefore + 2 }, "\(ferry.stderr)")
                traffic.cancel()
                let statuses = await traffic.value
                let failed = statuses.filter { $0 != 200 }
                #expect(failed.isEmpty, "requests failed during API faults: \(failed)")
                #expect(statuses.count > 10)
                #expect(api.faultsServed == 4)
                // The host changed by kubectl, then everything deleted by kubectl.
                try await apply(host: "shop2.example", port: blue.port)
                #expect(await Waiting.until(timeout: .seconds(10)) { (try? IngressAPITests.blockingStatus(port: port, host: "shop2.example")) == 200 })
                #expect(try IngressAPITests.blockingStatus(port: port) == 404)
                let deleted = try await Subprocess.run(kubectl, ["--kubeconfig", dir + "/config", "delete", "-f", file])
                #expect(deleted.status == 0, "\(deleted.stderr)")
                #expect(await Waiting.until(timeout: .seconds(10)) { (try? IngressAPITests.blockingStatus(port: port, host: "shop2.example")) == 404 })
                let metrics = try await Curl.request("http://127.0.0.1:\(try #require(ferry.adminPort))/metrics")
                #expect(metrics.body.contains("ferry_kubernetes_watch_restarts_total{resource=\"ingresses\"}"), "\(metrics.body)")
                #expect(metrics.body.contains("ferry_kubernetes_watch_events_total{resource=\"endpointslices\"}"))
            } catch {
                await ferry.stop()
                throw error
            }
            await ferry.stop()
        }
    }
}
