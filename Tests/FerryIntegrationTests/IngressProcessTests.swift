import FerryTestSupport
import Foundation
import Testing

/// `ferry ingress` on manifests in a temporary folder, with EndpointSlices pointing at origins on
/// loopback addresses, and `curl` as the client.
@Suite(.serialized)
struct IngressProcessTests {
    /// Two origins behind Service `web` (same port, 127.0.0.2 and .3), one behind `api` (127.0.0.4).
    struct Origins {
        let webA: TestOrigin
        let webB: TestOrigin
        let api: TestOrigin
        init() throws {
            // webB needs webA's port on another address; another test may hold that port there, so a few
            // ports are tried.
            var pair: (TestOrigin, TestOrigin)?
            for _ in 0..<20 where pair == nil {
                let a = try TestOrigin(name: "web-a", group: Fixtures.originGroup, host: "127.0.0.2")
                if let b = try? TestOrigin(name: "web-b", group: Fixtures.originGroup, host: "127.0.0.3", port: a.port) {
                    pair = (a, b)
                } else {
                    a.close()
                }
            }
            guard let pair else { throw POSIXError(.EADDRINUSE) }
            (webA, webB) = pair
            api = try TestOrigin(name: "api", group: Fixtures.originGroup, host: "127.0.0.4")
        }
        func close() {
            webA.close()
            webB.close()
            api.close()
        }
    }

    static func services(_ o: Origins) -> String {
        """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec:
          ports: [{name: http, port: 80, targetPort: http}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: api, namespace: shop}
        spec:
          ports: [{port: 8080}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: web-1
          namespace: shop
          labels: {kubernetes.io/service-name: web}
        addressType: IPv4
        ports: [{name: http, port: \(o.webA.port)}]
        endpoints:
          - {addresses: ["127.0.0.2"], conditions: {ready: true}}
          - {addresses: ["127.0.0.3"], conditions: {ready: true}}
          - {addresses: ["127.0.0.9"], conditions: {ready: false}}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: api-1
          namespace: shop
          labels: {kubernetes.io/service-name: api}
        addressType: IPv4
        ports: [{name: "", port: \(o.api.port)}]
        endpoints:
          - {addresses: ["127.0.0.4"]}
        """
    }

    /// The shop Ingress: `/` to `root`, `/api` (Prefix) to api, `/gone` to a Service that does not exist.
    static func ingress(root: String = "web", rootPort: String = "number: 80") -> String {
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: shop
          namespace: shop
          creationTimestamp: "2024-01-01T00:00:00Z"
          annotations:
            nginx.ingress.kubernetes.io/server-snippet: "return 200;"
        spec:
          ingressClassName: ferry
          rules:
            - host: shop.test
              http:
                paths:
                  - {path: /, pathType: Prefix, backend: {service: {name: \(root), port: {\(rootPort)}}}}
                  - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
                  - {path: /gone, pathType: Exact, backend: {service: {name: gone, port: {number: 80}}}}
        """
    }

    static func withIngress(_ body: (Origins, String, FerryProcess) async throws -> Void) async throws {
        guard Prerequisites.have("curl"), let binary = Prerequisites.ferryBinary() else { return }
        let origins = try Origins()
        defer { origins.close() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-ingress-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/apps", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try services(origins).write(toFile: dir + "/services.yaml", atomically: true, encoding: .utf8)
        try ingress().write(toFile: dir + "/apps/shop.yml", atomically: true, encoding: .utf8)
        try "not a manifest".write(toFile: dir + "/README.md", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: ["ingress", "--manifests", dir, "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1"])
        do {
            try await body(origins, dir, ferry)
        } catch {
            await ferry.stop()
            throw error
        }
        await ferry.stop()
    }

    static func get(_ ferry: FerryProcess, host: String, _ path: String, _ extra: [String] = []) async throws -> Curl.Response {
        try await Curl.request(ferry.url(path, listener: "ingress-http"), ["-H", "Host: \(host)"] + extra)
    }

    @Test func routesByHostAndPathToReadyEndpoints() async throws {
        try await Self.withIngress { origins, _, ferry in
            var served: [String] = []
            for _ in 0..<4 {
                let r = try await Self.get(ferry, host: "shop.test", "/products/1")
                #expect(r.status == 200)
                served.append(r.header("x-origin") ?? "?")
            }
            #expect(Set(served) == ["web-a", "web-b"], "both ready endpoints serve, the not-ready one never: \(served)")
            let api = try await Self.get(ferry, host: "shop.test", "/api/v1/items")
            #expect(api.status == 200 && api.header("x-origin") == "api")
            #expect(api.body.contains("\"uri\":\"\\/api\\/v1\\/items\""))
            #expect(try await Self.get(ferry, host: "SHOP.test:8080", "/apix").header("x-origin")?.hasPrefix("web") == true)
            let gone = try await Self.get(ferry, host: "shop.test", "/gone")
            #expect(gone.status == 503)
            #expect(try await Self.get(ferry, host: "other.test", "/").status == 404)

            // The missing Service and the ignored snippet are reported once, in the log and in /config_dump.
            #expect(await Waiting.until { ferry.stderr.contains("server-snippet ignored") && ferry.stderr.contains("Service shop/gone not found") })
            #expect(ferry.stderr.components(separatedBy: "Service shop/gone not found").count == 2)
            let dump = try await Curl.request("http://127.0.0.1:\(ferry.adminPort ?? 0)/config_dump")
            #expect(dump.body.contains("Service shop/gone not found"))

            let log = ferry.accessLog.last { $0.contains("/gone") } ?? ""
            #expect(log.contains("\"route\":\"shop/shop#0.2\"") && log.contains("\"response_flags\":\"UH\""), "\(log)")
        }
    }

    @Test func editingAddingAndRemovingManifestsReroutesLiveWithoutCuttingAStream() async throws {
        try await Self.withIngress { origins, dir, ferry in
            // A streaming response that starts before the edit: 40 bytes, one per 100 ms.
            let hold = try Subprocess(Curl.curlPath, ["-sS", "-H", "Host: shop.test", "-w", "\n%{http_code}", ferry.url("/hold/40", listener: "ingress-http")])
            #expect(await Waiting.until { origins.webA.requestsStarted + origins.webB.requestsStarted >= 1 })

            // Edit: "/" now goes to api (by port number).
            try Self.ingress(root: "api", rootPort: "number: 8080").write(toFile: dir + "/apps/shop.yml", atomically: true, encoding: .utf8)
            #expect(await Waiting.until { ferry.appliedReloads >= 1 })
            #expect(try await Self.get(ferry, host: "shop.test", "/products/1").header("x-origin") == "api")

            // Add a file: a new host appears.
            let extra = dir + "/apps/blog.json"
            try """
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
             "metadata": {"name": "blog", "namespace": "shop"},
             "spec": {"ingressClassName": "ferry", "rules": [{"host": "blog.test", "http": {"paths": [
               {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}}
            """.write(toFile: extra, atomically: true, encoding: .utf8)
            #expect(await Waiting.until { ferry.appliedReloads >= 2 })
            #expect(try await Self.get(ferry, host: "blog.test", "/").header("x-origin")?.hasPrefix("web") == true)

            // A broken edit is refused; routing stays as it was.
            try "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bad}\nspec:\n  rules: [{http: {paths: [{path: x, pathType: Prefix, backend: {service: {name: a, port: {number: 1}}}}]}}]\n"
                .write(toFile: dir + "/apps/bad.yaml", atomically: true, encoding: .utf8)
            #expect(await Waiting.until { ferry.stderr.contains("configuration refused") })
            #expect(ferry.stderr.contains("document 1: Ingress default/bad: spec.rules[0].http.paths[0].path: must start with \"/\""))
            #expect(try await Self.get(ferry, host: "blog.test", "/").status == 200)
            try FileManager.default.removeItem(atPath: dir + "/apps/bad.yaml")
            #expect(await Waiting.until { ferry.appliedReloads >= 3 })

            // Remove a file: its host is gone.
            try FileManager.default.removeItem(atPath: extra)
            #expect(await Waiting.until { ferry.appliedReloads >= 4 })
            #expect(try await Self.get(ferry, host: "blog.test", "/").status == 404)

            // The stream that began before all this finished whole.
            #expect(await hold.waitForExit(timeout: .seconds(30)) == 0)
            #expect(hold.stdout == String(repeating: ".", count: 40) + "\n200")
        }
    }

    @Test func explainOnTheSameManifests() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let origins = try Origins()
        defer { origins.close() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-explain-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try (Self.services(origins) + "\n---\n" + Self.ingress()).write(toFile: dir + "/all.yaml", atomically: true, encoding: .utf8)

        let r = try await Subprocess.run(binary, ["explain", "--manifests", dir, "http://shop.test/api/x", "--header", "X-Debug: 1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("→ /api (Prefix) of Ingress shop/shop rule 0 path 1"))
        #expect(r.stdout.contains("endpoints: 127.0.0.4:\(origins.api.port)"))
        let none = try await Subprocess.run(binary, ["explain", "--manifests", dir, "http://nowhere.test/"])
        #expect(none.stdout.contains("answer: 404 from Ferry (no route)"))
        let bad = try await Subprocess.run(binary, ["explain", "--manifests", dir + "/missing", "http://shop.test/"])
        #expect(bad.status == 1 && bad.stderr.contains("no such file or folder"))
    }
}
