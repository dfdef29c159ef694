@testable import FerryKubernetes
import FerryModel
import Testing

/// The pure parts of list + watch: decoding events line by line, the cache and its difference on a relist,
/// client-go's retry schedule.
struct WatchEventDecodingTests {
    static func service(_ name: String, rv: String, ip: String = "10.96.0.10") -> String {
        #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"\#(name)","namespace":"demo","resourceVersion":"\#(rv)"},"spec":{"clusterIP":"\#(ip)","ports":[{"name":"http","port":80,"targetPort":8080}]}}"#
    }

    @Test func addedModifiedAndDeletedCarryTheObject() throws {
        let added = try WatchEventDecoder.decode(line: #"{"type":"ADDED","object":\#(Self.service("web", rv: "41"))}"#)
        #expect(added.type == .added && added.key == "demo/web" && added.resourceVersion == "41")
        guard case .service(let service)? = added.object else {
            Issue.record("not a Service: \(String(describing: added.object))")
            return
        }
        #expect(service.clusterIP == "10.96.0.10" && service.metadata.resourceVersion == "41")
        let deleted = try WatchEventDecoder.decode(line: #"{"type":"DELETED","object":\#(Self.service("web", rv: "42"))}"#)
        #expect(deleted.type == .deleted && deleted.key == "demo/web")
    }

    @Test func bookmarksErrorsAndOtherKinds() throws {
        let bookmark = try WatchEventDecoder.decode(line: #"{"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1","metadata":{"resourceVersion":"12345"}}}"#)
        #expect(bookmark.type == .bookmark && bookmark.resourceVersion == "12345" && bookmark.object == nil)
        let gone = try WatchEventDecoder.decode(line: #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (2000)","reason":"Expired","code":410}}"#)
        #expect(gone.status?.isGone == true && gone.status?.reason == "Expired")
        let other = try WatchEventDecoder.decode(line: #"{"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c1","namespace":"demo","resourceVersion":"7"}}}"#)
        #expect(other.object == nil && other.problem == nil && other.key == "demo/c1" && other.resourceVersion == "7")
        // An object Ferry cannot read is an event with a problem, not an error that would end the watch.
        let unnamed = try WatchEventDecoder.decode(line: #"{"type":"ADDED","object":{"apiVersion":"v1","kind":"Service","metadata":{}}}"#)
        #expect(unnamed.object == nil && unnamed.problem?.contains("metadata.name: is required") == true, "\(unnamed)")
    }

    @Test(arguments: ["not json at all {", #"{"type":"SOMETHING","object":{}}"#, #"{"object":{}}"#])
    func badEventsSayWhatIsWrong(line: String) {
        #expect(throws: WatchDecodingError.self) { try WatchEventDecoder.decode(line: line) }
    }

    @Test func linesArriveSplitAnywhereAndAreBounded() throws {
        var splitter = WatchLineSplitter(maxLineBytes: 64)
        let lines1 = try splitter.lines(in: Array(#"{"a":1}"#.utf8).prefix(3))
        #expect(lines1 == [])
        let lines2 = try splitter.lines(in: Array(#"{"a":1}"#.utf8).dropFirst(3) + Array("\n\n{\"b\":2}\n{\"c\"".utf8))
        #expect(lines2 == [#"{"a":1}"#, #"{"b":2}"#])
        let lines3 = try splitter.lines(in: Array(":3}\n".utf8))
        #expect(lines3 == [#"{"c":3}"#])
        #expect(throws: WatchDecodingError.self) { try splitter.lines(in: [UInt8](repeating: 0x61, count: 65)) }
    }
}

struct InformerCacheTests {
    func event(_ type: String, _ name: String, rv: String, ip: String = "10.96.0.10") throws -> WatchEvent {
        try WatchEventDecoder.decode(line: #"{"type":"\#(type)","object":\#(WatchEventDecodingTests.service(name, rv: rv, ip: ip))}"#)
    }

    func object(_ name: String, rv: String) throws -> KubernetesObject {
        try event("ADDED", name, rv: rv).object!
    }

    @Test func eventsChangeTheCacheAndMoveTheResourceVersion() throws {
        var cache = InformerCache()
        let change4 = cache.apply(try event("ADDED", "web", rv: "1"))
        #expect(change4 == .added("demo/web"))
        let change5 = cache.apply(try event("MODIFIED", "web", rv: "1"))
        #expect(change5 == nil, "the same version again changes nothing")
        let change6 = cache.apply(try event("MODIFIED", "web", rv: "2", ip: "10.96.0.11"))
        #expect(change6 == .updated("demo/web"))
        let change7 = cache.apply(try WatchEventDecoder.decode(line: #"{"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1","metadata":{"resourceVersion":"9"}}}"#))
        #expect(change7 == nil)
        #expect(cache.resourceVersion == "9")
        if case .service(let s)? = cache.objects["demo/web"] { #expect(s.clusterIP == "10.96.0.11") } else { Issue.record("missing") }
        let change8 = cache.apply(try event("DELETED", "web", rv: "10"))
        #expect(change8 == .deleted("demo/web"))
        #expect(cache.objects.isEmpty && cache.resourceVersion == "10")
        let change9 = cache.apply(try event("DELETED", "web", rv: "11"))
        #expect(change9 == nil)
    }

    @Test func aRelistReplacesTheCacheAndSaysOnlyWhatChanged() throws {
        var cache = InformerCache()
        #expect(!cache.synced)
        _ = cache.replace(with: [try object("a", rv: "1"), try object("b", rv: "1"), try object("c", rv: "1")], resourceVersion: "5")
        #expect(cache.synced && cache.resourceVersion == "5")
        let changes = cache.replace(with: [try object("a", rv: "1"), try object("b", rv: "7"), try object("d", rv: "8")], resourceVersion: "9")
        #expect(changes == [.updated("demo/b"), .deleted("demo/c"), .added("demo/d")])
        #expect(cache.manifestSet.services.map(\.metadata.name) == ["a", "b", "d"], "the translators' input, in key order")
    }
}

struct RetryScheduleTests {
    /// A fixed-seed generator, so the jitter is reproducible.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func theWaitDoublesFrom800msTo30sWithJitterAndStartsOver() {
        var schedule = RetrySchedule()
        var random = SplitMix(state: 1)
        var bases: [Duration] = []
        var now = Duration.zero
        for _ in 0..<8 {
            let delay = schedule.delay(now: now, using: &random)
            let base = bases.last.map { min(.seconds(30), $0 * 2) } ?? .milliseconds(800)
            #expect(delay >= base && delay < base * 2, "\(delay) for a base of \(base)")
            bases.append(base)
            now += delay
        }
        #expect(bases.last == .seconds(30))
        // Two minutes without a failure: back to 800 ms.
        let fresh = schedule.delay(now: now + .seconds(121), using: &random)
        #expect(fresh < .milliseconds(1600))
        // Retry-After is honoured as given, up to the maximum.
        let wait10 = schedule.delay(now: now + .seconds(122), retryAfter: .seconds(3), using: &random)
        #expect(wait10 == .seconds(3))
        let wait11 = schedule.delay(now: now + .seconds(123), retryAfter: .seconds(300), using: &random)
        #expect(wait11 == .seconds(30))
        schedule.succeeded()
        let wait12 = schedule.delay(now: now + .seconds(124), using: &random)
        #expect(wait12 < .milliseconds(1600))
    }
}

/// client-go's leader election transitions: acquire, renew, respect a valid Lease, take over an expired
/// one, lose leadership past the renew deadline, release on shutdown.
struct LeaderElectionTests {
    @Test func acquireRenewAndTakeOver() {
        var a = LeaderElection(identity: "a")
        var b = LeaderElection(identity: "b")
        // a creates the Lease.
        guard case .create(let created) = a.attempt(read: nil, now: .zero) else { Issue.record("no create"); return }
        #expect(created.holderIdentity == "a" && created.leaseDurationSeconds == 15 && created.leaseTransitions == 0)
        a.wrote(created, now: .zero)
        #expect(a.isLeader)
        // b sees a valid Lease and waits, however old the Lease's own times are.
        let action13 = b.attempt(read: created, now: .seconds(100))
        #expect(action13 == .wait)
        // a renews: holder and transitions kept, renewTime moves.
        guard case .update(let renewed) = a.attempt(read: created, now: .seconds(2)) else { Issue.record("no renew"); return }
        #expect(renewed.holderIdentity == "a" && renewed.acquireTime == .zero && renewed.renewTime == .seconds(2) && renewed.leaseTransitions == 0)
        a.wrote(renewed, now: .seconds(2))
        // b saw the record change at 102 s: still valid at 116 s, expired at 117 s; then b takes over.
        let action14 = b.attempt(read: renewed, now: .seconds(102))
        #expect(action14 == .wait)
        let action15 = b.attempt(read: renewed, now: .seconds(116))
        #expect(action15 == .wait)
        guard case .update(let taken) = b.attempt(read: renewed, now: .seconds(117)) else { Issue.record("no take-over"); return }
        #expect(taken.holderIdentity == "b" && taken.acquireTime == .seconds(117) && taken.leaseTransitions == 1)
        b.wrote(taken, now: .seconds(117))
        #expect(b.isLeader)
        // a, which could not renew meanwhile, reads b's Lease and no longer leads.
        let action16 = a.attempt(read: taken, now: .seconds(118))
        #expect(action16 == .wait)
        #expect(!a.isLeader)
    }

    @Test func aLeaderThatCannotRenewStopsAtTheRenewDeadline() {
        var a = LeaderElection(identity: "a")
        guard case .create(let created) = a.attempt(read: nil, now: .zero) else { return }
        a.wrote(created, now: .zero)
        let lost17 = a.failed(now: .seconds(9))
        #expect(!lost17)
        #expect(a.isLeader)
        let lost18 = a.failed(now: .seconds(10))
        #expect(lost18)
        #expect(!a.isLeader)
        let lost19 = a.failed(now: .seconds(11))
        #expect(!lost19, "said once")
    }

    @Test func releasingHandsTheLeaseOverAtOnce() {
        var a = LeaderElection(identity: "a")
        var b = LeaderElection(identity: "b")
        guard case .create(let created) = a.attempt(read: nil, now: .zero) else { return }
        a.wrote(created, now: .zero)
        let action20 = b.attempt(read: created, now: .seconds(1))
        #expect(action20 == .wait)
        let released = a.release(now: .seconds(3))
        #expect(released?.holderIdentity == "" && released?.leaseDurationSeconds == 1 && !a.isLeader)
        guard let released, case .update(let taken) = b.attempt(read: released, now: .seconds(3)) else { Issue.record("b did not take over"); return }
        #expect(taken.holderIdentity == "b" && taken.leaseTransitions == 1)
    }
}

struct ClusterWriteTests {
    @Test func microTimeRoundTripsAtMicrosecondPrecision() {
        let t = Duration.seconds(1_796_517_915) + .microseconds(123_456)
        #expect(MicroTime.format(t) == "2026-12-06T00:45:15.123456Z")
        #expect(MicroTime.parse("2026-12-06T00:45:15.123456Z") == t)
        #expect(MicroTime.parse("2026-12-06T00:45:15Z") == .seconds(1_796_517_915))
        #expect(MicroTime.parse("2026-12-06T00:45:15.5Z") == .seconds(1_796_517_915) + .milliseconds(500))
        #expect(MicroTime.parse("2026-12-06T01:45:15.5+01:00") == .seconds(1_796_517_915) + .milliseconds(500), "an offset, as RFC 3339 allows")
        #expect(MicroTime.parse("yesterday") == nil)
        #expect(MicroTime.parse("2026-13-06T00:45:15Z") == nil)
    }

    @Test func eventLimiterDropsRepeatsAndBoundsEachObject() {
        var limiter = EventLimiter()
        let t0 = Duration.seconds(1000)
        do { let r = limiter.admit(object: "Ingress demo/shop", type: "Warning", reason: "ServiceNotFound", message: "m", now: t0); #expect(r) }
        // The same Event again within ten minutes: not sent.
        do { let r = limiter.admit(object: "Ingress demo/shop", type: "Warning", reason: "ServiceNotFound", message: "m", now: t0 + .seconds(60)); #expect(!r) }
        do { let r = limiter.admit(object: "Ingress demo/shop", type: "Warning", reason: "ServiceNotFound", message: "m", now: t0 + .seconds(601)); #expect(r) }
        // 25 different Events per object at once, then one per five minutes.
        var sent = 0
        for i in 0..<40 where limiter.admit(object: "Ingress demo/cart", type: "Warning", reason: "R", message: "\(i)", now: t0) { sent += 1 }
        #expect(sent == 25)
        do { let r = limiter.admit(object: "Ingress demo/cart", type: "Warning", reason: "R", message: "late", now: t0 + .seconds(200)); #expect(!r) }
        do { let r = limiter.admit(object: "Ingress demo/cart", type: "Warning", reason: "R", message: "later", now: t0 + .seconds(301)); #expect(r) }
        // Another object has its own bucket.
        do { let r = limiter.admit(object: "Ingress demo/other", type: "Warning", reason: "R", message: "0", now: t0); #expect(r) }
    }

    @Test func statusAddressesAsIngressNginxComputesThem() {
        #expect(IngressStatus.addresses(publishStatusAddress: "10.0.0.2, lb.example.com,10.0.0.1") ==
                [LoadBalancerAddress(hostname: "lb.example.com"), LoadBalancerAddress(ip: "10.0.0.1"), LoadBalancerAddress(ip: "10.0.0.2")])
        var lb = Service(metadata: ObjectMeta(name: "ferry"), type: "LoadBalancer", ports: [])
        lb.loadBalancer = [LoadBalancerAddress(ip: "203.0.113.7")]
        lb.externalIPs = ["203.0.113.7", "198.51.100.9"]
        #expect(IngressStatus.addresses(of: lb) == [LoadBalancerAddress(ip: "198.51.100.9"), LoadBalancerAddress(ip: "203.0.113.7")])
        var nodePort = Service(metadata: ObjectMeta(name: "ferry"), type: "NodePort", ports: [])
        nodePort.clusterIP = "10.96.0.5"
        #expect(IngressStatus.addresses(of: nodePort) == [LoadBalancerAddress(ip: "10.96.0.5")])
        nodePort.externalIPs = ["192.0.2.1"]
        #expect(IngressStatus.addresses(of: nodePort) == [LoadBalancerAddress(ip: "192.0.2.1")])
        let external = Service(metadata: ObjectMeta(name: "ferry"), type: "ExternalName", ports: [], externalName: "edge.example.net")
        #expect(IngressStatus.addresses(of: external) == [LoadBalancerAddress(hostname: "edge.example.net")])
        var headless = Service(metadata: ObjectMeta(name: "ferry"), ports: [])
        headless.clusterIP = "None"
        #expect(IngressStatus.addresses(of: headless).isEmpty)
        // Only served Ingresses whose addresses differ (in any order) are written.
        var done = Ingress(metadata: ObjectMeta(name: "done", namespace: "demo"))
        done.loadBalancer = [LoadBalancerAddress(ip: "10.0.0.2"), LoadBalancerAddress(ip: "10.0.0.1")]
        let stale = Ingress(metadata: ObjectMeta(name: "stale", namespace: "demo"))
        let theirs = Ingress(metadata: ObjectMeta(name: "theirs", namespace: "demo"))
        let outdated = IngressStatus.outdated([done, stale, theirs], served: ["demo/done", "demo/stale"], addresses: [LoadBalancerAddress(ip: "10.0.0.1"), LoadBalancerAddress(ip: "10.0.0.2")])
        #expect(outdated.map(\.metadata.name) == ["stale"])
    }

    @Test func anUnreadableObjectIsRefusedAloneAndItsLastVersionKept() throws {
        var cache = InformerCache()
        let good = #"{"type":"ADDED","object":{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"shop","namespace":"demo","resourceVersion":"5"},"spec":{"rules":[{"host":"shop.example","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}}}"#
        let bad = #"{"type":"MODIFIED","object":{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"shop","namespace":"demo","resourceVersion":"6"},"spec":{"rules":[{"host":"shop.example","http":{"paths":[{"path":"nope","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}}}"#
        do { let r = cache.apply(try WatchEventDecoder.decode(line: good)); #expect(r == .added("demo/shop")) }
        let event = try WatchEventDecoder.decode(line: bad)
        #expect(event.object == nil && event.problem?.contains("must start with \"/\"") == true)
        do { let r = cache.apply(event); #expect(r == .updated("demo/shop")) }
        #expect(cache.refused["demo/shop"]?.kind == "Ingress")
        #expect(cache.manifestSet.ingresses.first?.rules.first?.paths.first?.path == "/", "the last readable version serves")
        #expect(cache.resourceVersion == "6", "the watch goes on past it")
        // Fixed: readable again, no longer refused.
        do { let r = cache.apply(try WatchEventDecoder.decode(line: good.replacingOccurrences(of: "\"5\"", with: "\"7\""))); #expect(r == .updated("demo/shop")) }
        #expect(cache.refused.isEmpty)
        // A list with an unreadable item: the rest is listed.
        let page = try WatchEventDecoder.decodeList(#"{"metadata":{"resourceVersion":"9"},"items":[{"metadata":{"name":"a","namespace":"demo"},"spec":{"rules":[{"http":{"paths":[{"path":"x","pathType":"Prefix","backend":{"service":{"name":"w","port":{"number":80}}}}]}}]}},{"metadata":{"name":"b","namespace":"demo"},"spec":{"defaultBackend":{"service":{"name":"w","port":{"number":80}}}}}]}"#, kind: "Ingress", apiVersion: "networking.k8s.io/v1")
        #expect(page.items.map(\.metadata.name) == ["b"])
        #expect(page.refused.map(\.key) == ["demo/a"])
    }

    @Test func translationProblemsBecomeEventsOnTheirIngress() {
        let ingress = Ingress(metadata: ObjectMeta(name: "shop", namespace: "demo", annotations: ["nginx.ingress.kubernetes.io/server-snippet": "x"]), ingressClassName: "ferry",
                              rules: [IngressRule(host: "shop.example", paths: [HTTPIngressPath(path: "/", pathType: .prefix, backend: .service(ServiceBackend(name: "missing", port: .number(80))))])])
        var set = ManifestSet()
        set.ingresses = [ingress]
        let translation = IngressTranslator.translate(set, options: IngressOptions())
        #expect(translation.events.contains { $0.ingress == "demo/shop" && $0.reason == "ServiceNotFound" && $0.message.contains("Service demo/missing not found") }, "\(translation.events)")
        #expect(translation.events.contains { $0.ingress == "demo/shop" && $0.reason == "AnnotationIgnored" }, "\(translation.events)")
    }
}

/// Which Pod holds an address: scheduled Pods with their IPs; host-network and finished Pods hold none; of
/// two Pods claiming one address, the newer.
struct PodAddressTableTests {
    static func pod(_ namespace: String, _ name: String, ips: [String], version: Int, phase: String = "Running", hostNetwork: Bool = false) -> Pod {
        var pod = Pod(metadata: ObjectMeta(name: name, namespace: namespace, labels: ["app": name], resourceVersion: String(version)))
        pod.ips = ips.compactMap(IPAddress.init(parsing:))
        pod.phase = phase
        pod.hostNetwork = hostNetwork
        return pod
    }

    @Test func theNewestPodHoldingAnAddressNamesIt() {
        let table = PodAddressTable.build([
            Self.pod("shop", "old", ips: ["10.244.1.5"], version: 10),
            Self.pod("web", "new", ips: ["10.244.1.5", "fd00::5"], version: 20),
            Self.pod("shop", "done", ips: ["10.244.1.6"], version: 30, phase: "Succeeded"),
            Self.pod("kube-system", "proxy", ips: ["192.168.1.10"], version: 40, hostNetwork: true),
            Self.pod("shop", "pending", ips: [], version: 50, phase: "Pending"),
        ])
        #expect(table[IPAddress(parsing: "10.244.1.5")!] == SourceIdentity(namespace: "web", pod: "new", labels: ["app": "new"]))
        #expect(table[IPAddress(parsing: "fd00::5")!]?.pod == "new")
        #expect(table[IPAddress(parsing: "10.244.1.6")!] == nil && table[IPAddress(parsing: "192.168.1.10")!] == nil)
        #expect(table.count == 2)
    }

    @Test func aPodIsDecodedFromItsWatchEvent() throws {
        let event = try WatchEventDecoder.decode(line: #"{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"cart","namespace":"shop","resourceVersion":"7","labels":{"app":"cart"}},"spec":{"containers":[{"name":"a","image":"a"}]},"status":{"phase":"Running","podIP":"10.244.1.5","podIPs":[{"ip":"10.244.1.5"},{"ip":"fd00::5"}]}}}"#)
        guard case .pod(let pod)? = event.object else { Issue.record("expected a Pod: \(event)"); return }
        #expect(pod.ips.map(\.description) == ["10.244.1.5", "fd00::5"] && pod.metadata.labels == ["app": "cart"] && pod.holdsAddresses)
    }
}
