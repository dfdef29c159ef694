import FerryKubernetes
import FerryModel
import Testing

@Suite struct ManifestDecoderTests {
    @Test func multiDocumentYAMLWithEveryKindAndUnknownOnesSkipped() throws {
        let text = """
        apiVersion: networking.k8s.io/v1
        kind: IngressClass
        metadata:
          name: ferry
          annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
        spec: {controller: ferry.dev/ingress-controller}
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: web, namespace: shop, creationTimestamp: "2024-01-01T00:00:00Z"}
        spec:
          rules:
            - host: shop.example.com
              http:
                paths:
                  - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
          tls: [{hosts: [shop.example.com], secretName: shop-tls}]
        ---
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: web-x, namespace: shop, labels: {kubernetes.io/service-name: web}}
        addressType: IPv4
        ports: [{name: http, port: 8080, protocol: TCP}]
        endpoints: [{addresses: [10.0.0.1], conditions: {ready: true}}]
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: shop-tls, namespace: shop}
        type: kubernetes.io/tls
        data: {tls.crt: AAAA, tls.key: BBBB}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        """
        let set = try ManifestDecoder.decode(text: text, file: "all.yaml")
        #expect(set.ingressClasses.count == 1 && set.ingressClasses[0].isDefault)
        #expect(set.ingresses.count == 1)
        #expect(set.ingresses[0].metadata.key == "shop/web")
        #expect(set.ingresses[0].rules[0].paths[0].backend == .service(ServiceBackend(name: "web", port: .name("http"))))
        #expect(set.ingresses[0].tls == [IngressTLS(hosts: ["shop.example.com"], secretName: "shop-tls")])
        #expect(set.services[0].ports == [ServicePort(name: "http", port: 80, targetPort: .number(8080))])
        #expect(set.endpointSlices[0].serviceName == "web")
        #expect(set.secrets[0].keys == ["tls.crt", "tls.key"])
        #expect(set.skippedKinds == ["Deployment": 1])
    }

    @Test func jsonAndKindList() throws {
        let text = """
        {"apiVersion": "v1", "kind": "List", "items": [
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}},
          {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
           "spec": {"defaultBackend": {"service": {"name": "a", "port": {"number": 80}}}}}
        ]}
        """
        let set = try ManifestDecoder.decode(text: text, file: "list.json")
        #expect(set.services.map(\.metadata.key) == ["default/a"])
        #expect(set.ingresses[0].defaultBackend == .service(ServiceBackend(name: "a", port: .number(80))))
    }

    func problems(_ text: String) -> [String] {
        do {
            _ = try ManifestDecoder.decode(text: text, file: "bad.yaml")
            return []
        } catch let error as ManifestError {
            return error.diagnostics.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    @Test func aMalformedObjectNamesFileDocumentObjectAndField() {
        let text = """
        apiVersion: v1
        kind: Service
        metadata: {name: fine}
        spec: {ports: [{port: 80}]}
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: web
          namespace: shop
        spec:
          rules:
            - host: shop.example.com
              http:
                paths:
                  - path: /ok
                    pathType: Prefix
                    backend: {service: {name: web, port: {number: 80}}}
                  - path: api
                    pathType: Prefix
                    backend: {service: {name: web, port: {number: 80}}}
                  - path: /x
                    pathType: Regex
                    backend: {service: {name: web, port: {number: 80}}}
                  - path: /y
                    pathType: Exact
                    backend: {service: {name: web, port: {number: 80, name: http}}}
        """
        let p = problems(text)
        #expect(p == [
            "bad.yaml:19: document 2: Ingress shop/web: spec.rules[0].http.paths[1].path: must start with \"/\" (\"api\")",
            "bad.yaml:23: document 2: Ingress shop/web: spec.rules[0].http.paths[2].pathType: must be Exact, Prefix or ImplementationSpecific, not \"Regex\"",
            "bad.yaml:27: document 2: Ingress shop/web: spec.rules[0].http.paths[3].backend.service.port: has both number and name; use one",
        ])
    }

    @Test(arguments: [
        ("1.2.3.4", "is an IP address"),
        ("*", "leave host out"),
        ("a.*.example.com", "wildcard must be the whole first label"),
        ("shop.example.com:80", "has a port"),
        ("bad_name.example.com", "is not a DNS name"),
    ])
    func invalidHosts(host: String, message: String) {
        let text = """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: web}
        spec:
          rules: [{host: "\(host)", http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: w, port: {number: 80}}}}]}}]
        """
        let p = problems(text)
        #expect(p.count == 1 && p[0].contains("Ingress default/web: spec.rules[0].host:") && p[0].contains(message), "\(p)")
    }

    @Test func missingPieces() {
        #expect(problems("apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n") == ["bad.yaml:3: document 1: metadata.name: is required (metadata.name)"])
        #expect(problems("apiVersion: v1\nmetadata: {name: x}\n") == ["bad.yaml:1: document 1: kind: is required (the object's kind, e.g. Ingress)"])
        #expect(problems("apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: {name: x}\n")[0].contains("Ingress is read as networking.k8s.io/v1"))
        #expect(problems("- just\n- a list\n").first?.contains("must be a Kubernetes object") == true)
        #expect(problems("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\na: [unclosed\n").first?.hasPrefix("bad.yaml:6: document 2: YAML syntax") == true)
    }
}
