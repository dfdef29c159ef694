import FerryKubernetes
import FerryModel
import Testing

/// Services and EndpointSlices as kube-proxy reads them.
@Suite struct ServiceProxyTranslatorTests {
    static func translate(_ text: String) throws -> ServiceProxyTranslator.Translation {
        ServiceProxyTranslator.translate(try ManifestDecoder.decode(text: text, file: "test.yaml"))
    }

    @Test func portsByNameAndProtocolAndTheReadyFallback() throws {
        let t = try Self.translate("""
        apiVersion: v1
        kind: Service
        metadata: {name: dns, namespace: kube-system}
        spec: {clusterIP: 10.96.0.53, ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: dns-1, namespace: kube-system, labels: {kubernetes.io/service-name: dns}}
        addressType: IPv4
        ports: [{name: dns, port: 5353, protocol: UDP}, {name: dns-tcp, port: 5353, protocol: TCP}]
        endpoints:
          - {addresses: [10.244.1.5], conditions: {ready: false, serving: true, terminating: true}}
          - {addresses: [10.244.2.7], conditions: {ready: false, serving: false, terminating: true}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: headless, namespace: default}
        spec: {clusterIP: None, ports: [{port: 80}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: pending, namespace: default}
        spec: {ports: [{port: 80}]}
        """)
        #expect(t.table.ports.map(\.name) == ["kube-system/dns:dns", "kube-system/dns:dns-tcp"])
        #expect(t.table.ports.map(\.protocol) == [.udp, .tcp])
        // No endpoint is ready: the serving and terminating one is used, the other not.
        let (cluster, _, hasEndpoints) = t.table.ports[0].categorized(node: "n")
        #expect(hasEndpoints && cluster.map(\.hostPort) == ["10.244.1.5:5353"])
        #expect(t.notes == ["Service default/pending has no spec.clusterIP: a service proxy needs the address the API server allocated; it is left out"])
    }

    /// A dual-stack Service: an entry per family, each with its family's external IPs, source ranges and the
    /// endpoints of the slices of its address type.
    @Test func aDualStackServiceHasAnEntryPerFamily() throws {
        let t = try Self.translate("""
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: demo}
        spec:
          type: LoadBalancer
          clusterIP: 10.96.0.10
          clusterIPs: [10.96.0.10, "fd00:10:96::10"]
          ipFamilies: [IPv4, IPv6]
          externalIPs: [192.168.99.10, "2001:db8::10"]
          loadBalancerSourceRanges: [203.0.113.0/24, "2001:db8:1::/48"]
          ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]
        status: {loadBalancer: {ingress: [{ip: 1.2.3.4}, {ip: "2001:db8::1234"}]}}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: web-v4, namespace: demo, labels: {kubernetes.io/service-name: web}}
        addressType: IPv4
        ports: [{name: http, port: 8080}]
        endpoints: [{addresses: [10.244.1.5]}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: web-v6, namespace: demo, labels: {kubernetes.io/service-name: web}}
        addressType: IPv6
        ports: [{name: http, port: 8080}]
        endpoints: [{addresses: ["fd00:10:244:1::5"]}, {addresses: ["fd00:10:244:2::7"]}]
        """)
        #expect(t.table.ports.count == 2)
        let (v4, v6) = (t.table.ports[0], t.table.ports[1])
        #expect(!v4.isIPv6 && v6.isIPv6)
        #expect(v4.clusterIP?.description == "10.96.0.10" && v6.clusterIP?.description == "fd00:10:96::10")
        #expect(v4.externalIPs.map(\.description) == ["192.168.99.10"] && v6.externalIPs.map(\.description) == ["2001:db8::10"])
        #expect(v4.loadBalancerIPs.map(\.description) == ["1.2.3.4"] && v6.loadBalancerIPs.map(\.description) == ["2001:db8::1234"])
        #expect(v4.loadBalancerSourceRanges.map(\.description) == ["203.0.113.0/24"] && v6.loadBalancerSourceRanges.map(\.description) == ["2001:db8:1::/48"])
        #expect(v4.endpoints.map(\.hostPort) == ["10.244.1.5:8080"])
        #expect(v6.endpoints.map(\.hostPort) == ["[fd00:10:244:1::5]:8080", "[fd00:10:244:2::7]:8080"])
        #expect(v4.nodePort == 30080 && v6.nodePort == 30080)
    }
}
