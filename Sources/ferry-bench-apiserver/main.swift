import FerryTestSupport
import Foundation
import NIOPosix

// A fake Kubernetes API server filled with a cluster of a given size, for bench/kube-scale.py: it prints
// `port N` once serving, then serves until killed (kubectl and Ferry talk to it over TLS with the token
// `bench`). Objects: SERVICES Services (demo/svc-N, ClusterIP 10.96.x.y, port 80 → 8080), one EndpointSlice
// each with ENDPOINTS ready endpoints (unused loopback addresses), and INGRESSES Ingresses of class ferry, each routing host-N.bench
// to svc-N.
//
//   ferry-bench-apiserver CERT KEY SERVICES ENDPOINTS INGRESSES [UNIX-SOCKET]

let arguments = CommandLine.arguments
guard arguments.count >= 6, let services = Int(arguments[3]), let endpoints = Int(arguments[4]), let ingresses = Int(arguments[5]) else {
    FileHandle.standardError.write(Data("usage: ferry-bench-apiserver CERT KEY SERVICES ENDPOINTS INGRESSES [UNIX-SOCKET]\n".utf8))
    exit(2)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
let api = try FakeAPIServer(group: group, certificate: arguments[1], key: arguments[2], token: "bench", unixSocketPath: arguments.count > 6 ? arguments[6] : nil)
api.serve(["v1/services", "discovery.k8s.io/v1/endpointslices", "networking.k8s.io/v1/ingresses", "networking.k8s.io/v1/ingressclasses",
           "v1/secrets", "networking.k8s.io/v1/servicecidrs", "v1/nodes", "coordination.k8s.io/v1/leases", "v1/events"])
api.put("networking.k8s.io/v1/ingressclasses", namespace: nil, name: "ferry", object: ["apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "spec": ["controller": "ferry.dev/ingress-controller"]])
for i in 0..<services {
    let ip = "10.96.\(i / 250).\(i % 250 + 1)"
    api.put("v1/services", namespace: "demo", name: "svc-\(i)", object: ["apiVersion": "v1", "kind": "Service",
        "spec": ["clusterIP": ip, "ports": [["name": "http", "port": 80, "targetPort": 8080]]]])
    let addresses = (0..<endpoints).map { e -> [String: Any] in
        let n = i * endpoints + e
        // Loopback addresses nothing listens on: a request that reaches one is refused on this machine,
        // never sent to a network.
        return ["addresses": ["127.\(128 + n / 65536).\(n / 256 % 256).\(n % 256)"], "conditions": ["ready": true], "nodeName": "node-\(e)"]
    }
    api.put("discovery.k8s.io/v1/endpointslices", namespace: "demo", name: "svc-\(i)-1", object: ["apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": ["labels": ["kubernetes.io/service-name": "svc-\(i)"]], "addressType": "IPv4",
        "ports": [["name": "http", "port": 8080, "protocol": "TCP"]], "endpoints": addresses])
}
for i in 0..<ingresses {
    api.put("networking.k8s.io/v1/ingresses", namespace: "demo", name: "ing-\(i)", object: ["apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "spec": ["ingressClassName": "ferry", "rules": [["host": "host-\(i).bench", "http": ["paths": [["path": "/", "pathType": "Prefix",
            "backend": ["service": ["name": "svc-\(i % max(services, 1))", "port": ["number": 80]]]]]]]]]])
}
FileHandle.standardOutput.write(Data("port \(api.port)\n".utf8))
while true { sleep(3600) }
