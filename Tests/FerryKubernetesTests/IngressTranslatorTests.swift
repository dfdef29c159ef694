import FerryKubernetes
import FerryModel
import Testing

@Suite struct IngressClassSelectionTests {
    func selected(_ ingress: Ingress, classes: [IngressClass] = [], options: IngressOptions = IngressOptions()) -> Bool {
        let t = IngressTranslator.translate(K.set([ingress], services: ["web"], classes: classes), options: options)
        return t.selection.first?.selected ?? false
    }

    func rule() -> [IngressRule] { [IngressRule(host: "a.example.com", paths: [K.path("/", to: "web")])] }

    @Test func bySpecIngressClassName() {
        #expect(selected(K.ingress("a", className: "ferry", rules: rule())))
        #expect(!selected(K.ingress("a", className: "nginx", rules: rule())))
        #expect(selected(K.ingress("a", className: "edge", rules: rule()), options: IngressOptions(ingressClass: "edge")))
    }

    @Test func byLegacyAnnotation() {
        #expect(selected(K.ingress("a", className: nil, annotations: ["kubernetes.io/ingress.class": "ferry"], rules: rule())))
        #expect(!selected(K.ingress("a", className: nil, annotations: ["kubernetes.io/ingress.class": "nginx"], rules: rule())))
    }

    @Test func classlessIngressesNeedTheDefaultClassOrTheFlag() {
        let classless = K.ingress("a", className: nil, rules: rule())
        #expect(!selected(classless))
        #expect(selected(classless, options: IngressOptions(watchIngressWithoutClass: true)))
        let ferryDefault = IngressClass(metadata: ObjectMeta(name: "ferry", namespace: "", annotations: ["ingressclass.kubernetes.io/is-default-class": "true"]))
        #expect(selected(classless, classes: [ferryDefault]))
        let nginxDefault = IngressClass(metadata: ObjectMeta(name: "nginx", namespace: "", annotations: ["ingressclass.kubernetes.io/is-default-class": "true"]))
        #expect(!selected(classless, classes: [nginxDefault]))
        // Two defaults: Kubernetes refuses class-less Ingresses, so Ferry does not take them either.
        #expect(!selected(classless, classes: [ferryDefault, nginxDefault]))
    }

    @Test func unselectedIngressesDoNotRoute() {
        let mine = K.ingress("mine", rules: [IngressRule(host: "a.example.com", paths: [K.path("/", to: "web")])])
        let theirs = K.ingress("theirs", className: "nginx", rules: [IngressRule(host: "b.example.com", paths: [K.path("/", to: "web")])])
        let t = IngressTranslator.translate(K.set([mine, theirs], services: ["web"]), options: IngressOptions())
        #expect(K.route(t, host: "a.example.com", path: "/") != nil)
        #expect(K.route(t, host: "b.example.com", path: "/") == nil)
        #expect(t.selection.first { $0.ingress == "default/theirs" }?.reason == "spec.ingressClassName is nginx, not ferry")
    }
}

@Suite struct IngressMergeTests {
    @Test func ingressesForOneHostMerge() {
        let a = K.ingress("a", created: "2024-01-01T00:00:00Z", rules: [IngressRule(host: "shop.example.com", paths: [K.path("/cart", to: "cart")])])
        let b = K.ingress("b", created: "2024-01-02T00:00:00Z", rules: [IngressRule(host: "shop.example.com", paths: [K.path("/", to: "web")])])
        let t = IngressTranslator.translate(K.set([b, a], services: ["cart", "web"]), options: IngressOptions())
        #expect(t.virtualHosts.count == 1)
        #expect(K.service(of: K.route(t, host: "shop.example.com", path: "/cart/1")) == "cart")
        #expect(K.service(of: K.route(t, host: "shop.example.com", path: "/other")) == "web")
    }

    @Test func theOldestIngressWinsAConflictAndTheLoserIsReported() {
        let newer = K.ingress("newer", created: "2024-03-01T00:00:00Z", rules: [IngressRule(host: "shop.example.com", paths: [K.path("/api", to: "new-api")])])
        let older = K.ingress("older", created: "2024-01-01T00:00:00Z", rules: [IngressRule(host: "shop.example.com", paths: [K.path("/api", to: "old-api")])])
        let t = IngressTranslator.translate(K.set([newer, older], services: ["new-api", "old-api"]), options: IngressOptions())
        #expect(K.service(of: K.route(t, host: "shop.example.com", path: "/api")) == "old-api")
        #expect(t.notes.contains { $0.contains("Ingress default/newer") && $0.contains("also defined by Ingress default/older, which is older") })
    }

    @Test func onEqualTimestampsNamespaceThenNameDecides() {
        let b = K.ingress("b", namespace: "team", created: "2024-01-01T00:00:00Z", rules: [IngressRule(host: "h.example.com", paths: [K.path("/", to: "b")])])
        let a = K.ingress("a", namespace: "team", created: "2024-01-01T00:00:00Z", rules: [IngressRule(host: "h.example.com", paths: [K.path("/", to: "a")])])
        var set = K.set([b, a], services: [])
        for name in ["a", "b"] {
            set.services.append(K.service(name, namespace: "team"))
            set.endpointSlices.append(K.slice(name, namespace: "team", [K.ready("10.1.0.1")]))
        }
        let t = IngressTranslator.translate(set, options: IngressOptions())
        #expect(K.service(of: K.route(t, host: "h.example.com", path: "/")) == "a")
    }

    @Test func differentPathTypesOnTheSamePathAreNoConflict() {
        let a = K.ingress("a", created: "2024-01-01T00:00:00Z", rules: [IngressRule(host: "h.example.com", paths: [K.path("/foo", .prefix, to: "prefix")])])
        let b = K.ingress("b", created: "2024-01-02T00:00:00Z", rules: [IngressRule(host: "h.example.com", paths: [K.path("/foo", .exact, to: "exact")])])
        let t = IngressTranslator.translate(K.set([a, b], services: ["prefix", "exact"]), options: IngressOptions())
        #expect(K.service(of: K.route(t, host: "h.example.com", path: "/foo")) == "exact")
        #expect(K.service(of: K.route(t, host: "h.example.com", path: "/foo/x")) == "prefix")
        #expect(t.notes.isEmpty)
    }

    @Test func timestampsCompareAsInstants() {
        // 01:00+02:00 is 23:00 the day before, so "late" is older.
        let late = K.ingress("late", created: "2024-01-02T01:00:00+02:00", rules: [IngressRule(host: "h.example.com", paths: [K.path("/", to: "late")])])
        let early = K.ingress("early", created: "2024-01-01T23:30:00Z", rules: [IngressRule(host: "h.example.com", paths: [K.path("/", to: "early")])])
        let t = IngressTranslator.translate(K.set([early, late], services: ["late", "early"]), options: IngressOptions())
        #expect(K.service(of: K.route(t, host: "h.example.com", path: "/")) == "late")
    }
}

@Suite struct IngressBackendTests {
    @Test func servicePortByNumberOrNameThroughTheSlicePortName() {
        var set = ManifestSet()
        set.services = [K.service("web", ports: [ServicePort(name: "http", port: 80, targetPort: .name("web")), ServicePort(name: "metrics", port: 9090)])]
        set.endpointSlices = [EndpointSlice(
            metadata: ObjectMeta(name: "web-1", labels: ["kubernetes.io/service-name": "web"]),
            endpoints: [K.ready("10.0.0.1"), K.ready("10.0.0.2")],
            ports: [EndpointPort(name: "http", port: 8080), EndpointPort(name: "metrics", port: 9100)])]
        set.ingresses = [K.ingress("web", rules: [IngressRule(host: "h.example.com", paths: [
            HTTPIngressPath(path: "/", pathType: .prefix, backend: .service(ServiceBackend(name: "web", port: .number(80)))),
            HTTPIngressPath(path: "/metrics", pathType: .prefix, backend: .service(ServiceBackend(name: "web", port: .name("metrics")))),
        ])])]
        let t = IngressTranslator.translate(set, options: IngressOptions())
        let main = t.clusters.first { $0.name == K.cluster(K.route(t, host: "h.example.com", path: "/")) }
        let metrics = t.clusters.first { $0.name == K.cluster(K.route(t, host: "h.example.com", path: "/metrics")) }
        #expect(main?.endpoints.map(\.description) == ["10.0.0.1:8080", "10.0.0.2:8080"])
        #expect(metrics?.endpoints.map(\.description) == ["10.0.0.1:9100", "10.0.0.2:9100"])
    }

    func endpoints(_ slice: [SliceEndpoint]) -> (endpoints: [String], notes: [String]) {
        var set = ManifestSet()
        set.services = [K.service("web")]
        set.endpointSlices = [K.slice("web", slice)]
        set.ingresses = [K.ingress("web", rules: [IngressRule(host: "h.example.com", paths: [K.path("/", to: "web")])])]
        let t = IngressTranslator.translate(set, options: IngressOptions())
        return (t.clusters.first?.endpoints.map(\.host) ?? [], t.notes)
    }

    @Test func readyEndpointsOnly() {
        let r = endpoints([
            K.ready("10.0.0.1"),
            SliceEndpoint(addresses: ["10.0.0.2"], ready: false, serving: false, terminating: false),
            SliceEndpoint(addresses: ["10.0.0.3"], ready: false, serving: true, terminating: true),
            SliceEndpoint(addresses: ["10.0.0.4"]),  // conditions unknown: ready
        ])
        #expect(r.endpoints == ["10.0.0.1", "10.0.0.4"])
    }

    @Test func terminatingButServingOnlyWhenNoneIsReady() {
        let r = endpoints([
            SliceEndpoint(addresses: ["10.0.0.2"], ready: false, serving: false, terminating: true),
            SliceEndpoint(addresses: ["10.0.0.3"], ready: false, serving: true, terminating: true),
        ])
        #expect(r.endpoints == ["10.0.0.3"])
    }

    @Test func noReadyEndpointAnswers503AndIsReported() {
        let r = endpoints([SliceEndpoint(addresses: ["10.0.0.2"], ready: false, serving: false, terminating: false)])
        #expect(r.endpoints.isEmpty)
        #expect(r.notes == ["Service default/web port 80 (http) has no ready endpoints (used by Ingress default/web path /); requests for it answer 503"])
    }

    @Test func aMissingServiceIsReportedOnceHoweverManyPathsUseIt() {
        let ingress = K.ingress("web", rules: [IngressRule(host: "h.example.com", paths: [K.path("/a", to: "gone"), K.path("/b", to: "gone")]),
                                               IngressRule(host: "i.example.com", paths: [K.path("/", to: "gone")])])
        let t = IngressTranslator.translate(K.set([ingress], services: []), options: IngressOptions())
        #expect(t.notes.filter { $0.contains("Service default/gone not found") }.count == 1)
        #expect(t.clusters.count == 1 && t.clusters[0].endpoints.isEmpty)
    }

    @Test func aMissingServicePortIsReported() {
        let ingress = K.ingress("web", rules: [IngressRule(host: "h.example.com", paths: [K.path("/", to: "web", port: 81)])])
        let t = IngressTranslator.translate(K.set([ingress], services: ["web"]), options: IngressOptions())
        #expect(t.notes.count == 1 && t.notes[0].contains("has no port 81"))
    }

    @Test func slicesOfOtherServicesOrNamespacesAreNotUsed() {
        var set = K.set([K.ingress("web", rules: [IngressRule(host: "h.example.com", paths: [K.path("/", to: "web")])])], services: ["web"])
        set.endpointSlices.append(K.slice("web", namespace: "other", [K.ready("10.9.9.9")]))
        set.endpointSlices.append(K.slice("webx", [K.ready("10.9.9.8")]))
        let t = IngressTranslator.translate(set, options: IngressOptions())
        #expect(t.clusters[0].endpoints.map(\.host) == ["10.0.0.1"])
    }
}
