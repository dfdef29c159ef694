import FerryTestSupport
import Foundation
import Testing
import Yams

/// deploy/: every Kustomize base and overlay renders with kubectl's built-in kustomize; the workloads pass
/// the lint (resources, probes, read-only root filesystem, non-root except the service proxy, pinned
/// images); the Ingress controller's RBAC is exactly what docs/kubernetes.md says it reads and writes; the
/// Containerfile has the structure the README promises.
@Suite struct DeployManifestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var deploy: String { root.appendingPathComponent("deploy").path }

    /// Every folder with a kustomization.yaml, relative to deploy/.
    static func kustomizations() throws -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: deploy)
        var found: [String] = []
        while let item = enumerator?.nextObject() as? String {
            if item.hasSuffix("kustomization.yaml") { found.append(String(item.dropLast("/kustomization.yaml".count))) }
        }
        return found.sorted()
    }

    /// `kubectl kustomize DIR`, as objects.
    static func render(_ dir: String) async throws -> [[String: Any]] {
        let kubectl = try #require(Prerequisites.path(of: "kubectl"))
        let r = try await Subprocess.run(kubectl, ["kustomize", deploy + "/" + dir])
        #expect(r.status == 0, "kubectl kustomize \(dir): \(r.stderr)")
        return try Yams.load_all(yaml: r.stdout).compactMap { $0 as? [String: Any] }
    }

    @Test(.requires("kubectl")) func everyBaseAndOverlayRenders() async throws {
        guard Prerequisites.have("kubectl") else { return }
        let dirs = try Self.kustomizations()
        #expect(Set(dirs).isSuperset(of: ["ingress/base", "ingress/overlays/production", "ingress/overlays/single-node", "service-proxy/base",
                                          "egress/base", "egress/overlays/production", "egress/overlays/single-node", "egress/lockdown", "api-proxy/base"]), "\(dirs)")
        for dir in dirs {
            let objects = try await Self.render(dir)
            #expect(!objects.isEmpty, "\(dir) renders no object")
            for object in objects {
                #expect(object["apiVersion"] is String && object["kind"] is String, "\(dir): \(object)")
                let name = (object["metadata"] as? [String: Any])?["name"] as? String
                #expect(name?.isEmpty == false, "\(dir): an object without a name")
            }
        }
        // The overlays differ from the base where they say they do.
        let single = try await Self.render("ingress/overlays/single-node")
        let deployment = try #require(single.first { $0["kind"] as? String == "Deployment" })
        #expect((deployment["spec"] as? [String: Any])?["replicas"] as? Int == 1)
        #expect(!single.contains { $0["kind"] as? String == "PodDisruptionBudget" })
        let service = try #require(single.first { $0["kind"] as? String == "Service" && (($0["metadata"] as? [String: Any])?["name"] as? String) == "ferry-ingress" })
        #expect((service["spec"] as? [String: Any])?["type"] as? String == "NodePort")
        let production = try await Self.render("ingress/overlays/production")
        #expect(production.contains { $0["kind"] as? String == "PodDisruptionBudget" })
    }

    /// The Kubernetes releases whose OpenAPI schemas the manifests must satisfy: the newest the validator
    /// knows, and the kubectl this repository is tested with.
    static let schemaReleases = ["1.37", "1.32"]

    /// Every base and overlay, and `ferry deploy render` with its options, validate strictly (no unknown
    /// field, every type right) against the Kubernetes OpenAPI schemas (kubernetes-validate, which carries them).
    @Test(.requires("kubectl")) func everyRenderingValidatesAgainstTheKubernetesSchemas() async throws {
        guard Prerequisites.have("kubectl"), let kubectl = Prerequisites.path(of: "kubectl"), let binary = Prerequisites.ferryBinary(),
              let python = Prerequisites.python(with: "kubernetes_validate", install: "python3 -m pip install kubernetes-validate") else { return }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var files: [(String, String)] = []
        for dir in try Self.kustomizations() {
            let r = try await Subprocess.run(kubectl, ["kustomize", Self.deploy + "/" + dir])
            #expect(r.status == 0, "\(dir): \(r.stderr)")
            files.append(("deploy/\(dir)", r.stdout))
        }
        let renders: [[String]] = [["ingress", "--namespace", "edge", "--replicas", "3", "--set", "publish-status-address=198.51.100.7"],
                                   ["service-proxy", "--set", "mode=nftables"], ["egress", "--profile", "single-node", "--image", "registry.example/ferry:0.2.0"],
                                   ["api-proxy", "--namespace", "legacy"], ["egress", "--namespace", "gw", "--lock-namespace", "shop", "--lock-namespace", "web"],
                                   ["egress", "--watch-pods", "--api-server", "192.168.1.10/32:6443"]]
        for arguments in renders {
            let r = try await Subprocess.run(binary, ["deploy", "render"] + arguments)
            #expect(r.status == 0, "\(arguments): \(r.stderr)")
            files.append(("ferry deploy render " + arguments.joined(separator: " "), r.stdout))
        }
        for (i, (name, yaml)) in files.enumerated() {
            let path = scratch.appendingPathComponent("\(i).yaml").path
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            for release in Self.schemaReleases {
                let r = try await Subprocess.run(python, ["-m", "kubernetes_validate", "--strict", "--quiet", "-k", release, path])
                #expect(r.status == 0, "\(name) against Kubernetes \(release): \(r.stdout)\(r.stderr)")
                #expect(!r.stdout.contains("ERROR"), "\(name): \(r.stdout)")
            }
        }
        // The validator does refuse: a wrong type and an unknown field are reported with their path.
        let bad = scratch.appendingPathComponent("bad.yaml").path
        try files[0].1.replacingOccurrences(of: "  replicas: ", with: "  replicass: ").write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try await Subprocess.run(python, ["-m", "kubernetes_validate", "--strict", "--quiet", bad])
        #expect(refused.status != 0 && refused.stdout.contains("replicass"), "\(refused.stdout)")
    }

    /// The containers of a workload object (Deployment, DaemonSet), with the Pod's securityContext.
    static func containers(_ object: [String: Any]) -> (pod: [String: Any], containers: [[String: Any]])? {
        guard ["Deployment", "DaemonSet", "StatefulSet"].contains(object["kind"] as? String ?? ""),
              let template = (object["spec"] as? [String: Any])?["template"] as? [String: Any],
              let spec = template["spec"] as? [String: Any] else { return nil }
        return (spec, spec["containers"] as? [[String: Any]] ?? [])
    }

    @Test(.requires("kubectl")) func workloadsPassTheLint() async throws {
        guard Prerequisites.have("kubectl") else { return }
        var workloads = 0
        for dir in try Self.kustomizations() {
            for object in try await Self.render(dir) {
                guard let (pod, containers) = Self.containers(object) else { continue }
                workloads += 1
                let name = "\(dir) \(object["kind"] ?? "") \((object["metadata"] as? [String: Any])?["name"] ?? "")"
                let serviceProxy = ((object["metadata"] as? [String: Any])?["labels"] as? [String: String])?["k8s-app"] == "ferry-service-proxy"
                for container in containers {
                    let label = "\(name) container \(container["name"] ?? "")"
                    let image = container["image"] as? String ?? ""
                    let tag = image.split(separator: "/").last.flatMap { $0.contains(":") ? $0.split(separator: ":").last : nil }
                    #expect(tag != nil && tag != "latest", "\(label): image \(image) must name a version")
                    let resources = container["resources"] as? [String: Any]
                    #expect(resources?["requests"] != nil && (resources?["limits"] as? [String: Any])?["memory"] != nil, "\(label): resources")
                    #expect(container["readinessProbe"] != nil && container["livenessProbe"] != nil, "\(label): probes")
                    let security = container["securityContext"] as? [String: Any] ?? [:]
                    #expect(security["readOnlyRootFilesystem"] as? Bool == true, "\(label): read-only root filesystem")
                    let podSecurity = pod["securityContext"] as? [String: Any] ?? [:]
                    let nonRoot = (security["runAsNonRoot"] ?? podSecurity["runAsNonRoot"]) as? Bool == true
                    let uid = (security["runAsUser"] ?? podSecurity["runAsUser"]) as? Int
                    if serviceProxy {
                        // Kernel rules need root, as kube-proxy's DaemonSet has it.
                        #expect(security["privileged"] as? Bool == true, "\(label)")
                    } else {
                        #expect(nonRoot && uid != 0, "\(label): must not run as root")
                        #expect(security["allowPrivilegeEscalation"] as? Bool == false, "\(label): no privilege escalation")
                        #expect((security["capabilities"] as? [String: Any])?["drop"] as? [String] == ["ALL"], "\(label): drop all capabilities")
                    }
                }
            }
        }
        #expect(workloads >= 6, "ingress ×3, service-proxy, egress ×3, api-proxy")
    }

    /// `apiGroup/resource` → verbs, from every rule of the given Roles and ClusterRoles.
    static func grants(_ objects: [[String: Any]], kinds: Set<String>) -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for object in objects where kinds.contains(object["kind"] as? String ?? "") {
            for rule in object["rules"] as? [[String: Any]] ?? [] {
                for group in rule["apiGroups"] as? [String] ?? [] {
                    for resource in rule["resources"] as? [String] ?? [] {
                        result["\(group)/\(resource)", default: []].formUnion(rule["verbs"] as? [String] ?? [])
                    }
                }
            }
        }
        return result
    }

    @Test(.requires("kubectl")) func theIngressControllersPermissionsAreWhatItUses() async throws {
        guard Prerequisites.have("kubectl") else { return }
        let objects = try await Self.render("ingress/base")
        // docs/kubernetes.md, "What is read and written": the watches, the publish Service, Ingress status
        // (get the Ingress, update its status), Events; the Lease in its own namespace only.
        #expect(Self.grants(objects, kinds: ["ClusterRole"]) == [
            "networking.k8s.io/ingressclasses": ["list", "watch"],
            "networking.k8s.io/ingresses": ["get", "list", "watch"],
            "networking.k8s.io/ingresses/status": ["update"],
            "/services": ["get", "list", "watch"],
            "/secrets": ["list", "watch"],
            "discovery.k8s.io/endpointslices": ["list", "watch"],
            "/events": ["create"],
        ])
        #expect(Self.grants(objects, kinds: ["Role"]) == ["coordination.k8s.io/leases": ["create", "get", "update"]])
        let deployment = try #require(objects.first { $0["kind"] as? String == "Deployment" })
        let args = Self.containers(deployment)?.containers.first?["args"] as? [String] ?? []
        #expect(args.contains("--election-id=ferry-ingress-leader") && args.contains("--publish-service=$(POD_NAMESPACE)/ferry-ingress"))
        let role = try #require(objects.first { $0["kind"] as? String == "Role" })
        let leaseNames = (role["rules"] as? [[String: Any]])?.compactMap { $0["resourceNames"] as? [String] }.flatMap { $0 }
        #expect(leaseNames == ["ferry-ingress-leader"], "the Lease it may update is its own")
        let classes = objects.filter { $0["kind"] as? String == "IngressClass" }
        #expect((classes.first?["spec"] as? [String: Any])?["controller"] as? String == "ferry.dev/ingress-controller")
    }

    @Test func theContainerfileBuildsAStaticBinaryOntoAnEmptyImage() throws {
        let text = try String(contentsOfFile: Self.root.appendingPathComponent("Containerfile").path, encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
        let stages = lines.filter { $0.hasPrefix("FROM ") }
        #expect(stages.count == 2, "a build stage and a runtime stage: \(stages)")
        #expect(stages.first?.hasPrefix("FROM swift:") == true && stages.first?.hasSuffix(" AS build") == true)
        #expect(stages.last == "FROM scratch AS runtime", "nothing in the runtime image but what is copied")
        #expect(text.contains("--static-swift-stdlib"))
        #expect(lines.contains("USER 65532:65532"))
        #expect(lines.contains(#"ENTRYPOINT ["/usr/local/bin/ferry"]"#))
        #expect(text.contains("LABEL org.opencontainers.image.title=\"ferry\""))
        #expect(!text.contains(":latest"))
    }

    @Test func theWorkloadEnvSendsTheInternetThroughTheProxyAndTheClusterAround() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let env = try Yams.load(yaml: String(contentsOfFile: Self.deploy + "/egress/lockdown/pod-env.yaml", encoding: .utf8)) as? [[String: String]] ?? []
        let values = Dictionary(env.compactMap { e in e["name"].flatMap { n in e["value"].map { (n, $0) } } }, uniquingKeysWith: { a, _ in a })
        #expect(values["HTTP_PROXY"] == values["http_proxy"] && values["NO_PROXY"] == values["no_proxy"], "both cases, the same")
        func verdicts(_ url: String) async throws -> [String: Bool] {
            let r = try await Subprocess.run(binary, ["env", url, "--http-proxy", values["HTTP_PROXY"]!, "--https-proxy", values["HTTPS_PROXY"]!,
                                                      "--no-proxy", values["NO_PROXY"]!, "--output", "json"])
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            let clients = json?["clients"] as? [String: [String: Any]] ?? [:]
            return clients.compactMapValues { $0["uses_proxy"] as? Bool }
        }
        let internet = try await verdicts("https://api.github.com/")
        #expect(internet["go"] == true && internet["curl"] == true && internet["python"] == true, "\(internet)")
        let service = try await verdicts("http://web.demo.svc.cluster.local/")
        #expect(service["go"] == false && service["curl"] == false && service["python"] == false, "\(service)")
        let clusterIP = try await verdicts("http://10.96.0.10/")
        #expect(clusterIP["go"] == false && clusterIP["curl"] == false, "\(clusterIP)")
    }

    /// `ferry env --lint` approves the snippet as shipped (its CIDRs are notes: no spelling makes Python's
    /// urllib match addresses) and refuses it with an entry every client could read alike but does not.
    @Test func theWorkloadEnvPassesTheLint() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let snippet = Self.deploy + "/egress/lockdown/pod-env.yaml"
        let ok = try await Subprocess.run(binary, ["env", "--lint", "--file", snippet])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("ok: Go, curl and Python read these variables alike") && !ok.stdout.contains("fix "), "\(ok.stdout)")
        let spoiled = try String(contentsOfFile: snippet, encoding: .utf8).replacingOccurrences(of: ",svc,", with: ",*.svc,")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-env-\(UUID().uuidString).yaml").path
        try spoiled.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let refused = try await Subprocess.run(binary, ["env", "--lint", "-f", path])
        #expect(refused.status == 1 && refused.stdout.contains("fix  *.svc") && refused.stdout.contains("write svc"), "\(refused.stdout)")
    }
}

/// The egress policy as a ConfigMap volume delivers it (`..data` a symlink to a timestamped folder, the
/// file a symlink through it; an update swaps `..data` atomically): `ferry run` applies the new policy
/// without a restart, as deploy/egress promises.
@Suite struct ConfigMapReloadTests {
    static func policy(allow host: String) -> String {
        """
        admin: {address: 127.0.0.1:0}
        listeners:
          - name: egress
            address: 127.0.0.1:0
            forward_proxy: {policy: outbound}
        policies:
          - name: outbound
            default: deny
            rules:
              - allow: \(host)
        clusters: []
        """
    }

    @Test func aSwappedConfigMapVolumeIsApplied() async throws {
        guard let binary = Prerequisites.ferryBinary(), Prerequisites.have("curl") else { return }
        let dir = try TLSFixtures.folder("configmap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/..2026_12_06_v1", withIntermediateDirectories: true)
        try Self.policy(allow: "first.example").write(toFile: dir + "/..2026_12_06_v1/egress.yaml", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: dir + "/..data", withDestinationPath: "..2026_12_06_v1")
        try fm.createSymbolicLink(atPath: dir + "/egress.yaml", withDestinationPath: "..data/egress.yaml")
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", dir + "/egress.yaml", "--threads", "1"])
        do {
            let admin = try #require(ferry.adminPort)
            #expect(try await Curl.request("http://127.0.0.1:\(admin)/config_dump").body.contains("first.example"))
            // The kubelet's update: a new folder, then ..data swapped by rename.
            try fm.createDirectory(atPath: dir + "/..2026_12_06_v2", withIntermediateDirectories: true)
            try Self.policy(allow: "second.example").write(toFile: dir + "/..2026_12_06_v2/egress.yaml", atomically: true, encoding: .utf8)
            try fm.createSymbolicLink(atPath: dir + "/..data_tmp", withDestinationPath: "..2026_12_06_v2")
            #expect(rename(dir + "/..data_tmp", dir + "/..data") == 0)
            try fm.removeItem(atPath: dir + "/..2026_12_06_v1")
            #expect(await Waiting.until(timeout: .seconds(10)) { ferry.appliedReloads >= 1 }, "\(ferry.stderr)")
            let dump = try await Curl.request("http://127.0.0.1:\(admin)/config_dump").body
            #expect(dump.contains("second.example") && !dump.contains("first.example"), "\(dump)")
        } catch {
            await ferry.stop()
            throw error
        }
        await ferry.stop()
    }
}

/// `ferry deploy render` prints the objects kubectl's kustomize renders from deploy/ (the embedded copy
/// is in step with the repository), and its options change what they say.
@Suite struct DeployRenderTests {
    static let renders: [(arguments: [String], dir: String)] = [
        (["ingress"], "ingress/overlays/production"), (["ingress", "--profile", "single-node"], "ingress/overlays/single-node"),
        (["service-proxy"], "service-proxy/base"), (["egress"], "egress/overlays/production"),
        (["egress", "--profile", "single-node"], "egress/overlays/single-node"), (["egress", "--profile", "lockdown"], "egress/lockdown"),
        (["api-proxy"], "api-proxy/base"),
    ]

    /// Objects as canonical JSON text, for comparing what two YAML writers produced.
    static func canonical(_ yaml: String) throws -> [String] {
        try Yams.load_all(yaml: yaml).compactMap { $0 as? [String: Any] }.map {
            String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self)
        }.sorted()
    }

    @Test func theEmbeddedManifestsAreDeploysAsKustomizeRendersThem() async throws {
        guard let binary = Prerequisites.ferryBinary(), Prerequisites.have("kubectl"), let kubectl = Prerequisites.path(of: "kubectl") else { return }
        for (arguments, dir) in Self.renders {
            let ours = try await Subprocess.run(binary, ["deploy", "render"] + arguments)
            #expect(ours.status == 0, "\(ours.stderr)")
            let theirs = try await Subprocess.run(kubectl, ["kustomize", DeployManifestTests.deploy + "/" + dir])
            #expect(try Self.canonical(ours.stdout) == Self.canonical(theirs.stdout),
                    "ferry deploy render \(arguments.joined(separator: " ")) differs from deploy/\(dir): run scripts/embed-deploy.sh")
        }
    }

    @Test func optionsChangeNamespaceImageReplicasAndArguments() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let r = try await Subprocess.run(binary, ["deploy", "render", "ingress", "--namespace", "edge", "--image", "registry.example/ferry:0.2.0",
                                                  "--replicas", "3", "--set", "publish-status-address=198.51.100.7", "--set", "election-id=edge-leader"])
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try Yams.load_all(yaml: r.stdout).compactMap { $0 as? [String: Any] }
        let namespace = objects.first { $0["kind"] as? String == "Namespace" }
        #expect((namespace?["metadata"] as? [String: Any])?["name"] as? String == "edge")
        for object in objects where !["Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass"].contains(object["kind"] as? String ?? "") {
            #expect((object["metadata"] as? [String: Any])?["namespace"] as? String == "edge", "\(object["kind"] ?? "")")
        }
        let binding = objects.first { $0["kind"] as? String == "ClusterRoleBinding" }
        #expect((binding?["subjects"] as? [[String: Any]])?.first?["namespace"] as? String == "edge")
        let deployment = try #require(objects.first { $0["kind"] as? String == "Deployment" })
        #expect((deployment["spec"] as? [String: Any])?["replicas"] as? Int == 3)
        let container = try #require(DeployManifestTests.containers(deployment)?.containers.first)
        #expect(container["image"] as? String == "registry.example/ferry:0.2.0")
        let args = container["args"] as? [String] ?? []
        #expect(args.contains("--publish-status-address=198.51.100.7") && !args.contains { $0.hasPrefix("--publish-service") }, "the two publish flags exclude each other: \(args)")
        #expect(args.contains("--election-id=edge-leader") && !args.contains("--election-id=ferry-ingress-leader"))
        // Mistakes are named.
        let daemonSet = try await Subprocess.run(binary, ["deploy", "render", "service-proxy", "--replicas", "2"])
        #expect(daemonSet.status == 1 && daemonSet.stderr.contains("DaemonSet"), "\(daemonSet.stderr)")
        let unknown = try await Subprocess.run(binary, ["deploy", "render", "mesh"])
        #expect(unknown.status == 1 && unknown.stderr.contains("choose one of: api-proxy, egress"), "\(unknown.stderr)")
        let latest = try await Subprocess.run(binary, ["deploy", "render", "ingress", "--image", "ferry:latest"])
        #expect(latest.status != 0 && latest.stderr.contains("must name a version"))
        // A flag the role's command does not know, or a value it refuses, fails the render, not the Pod.
        let misspelt = try await Subprocess.run(binary, ["deploy", "render", "service-proxy", "--set", "proxy-mode=nftables"])
        #expect(misspelt.status == 1 && misspelt.stderr.contains("Unknown option '--proxy-mode'") && misspelt.stdout.isEmpty, "\(misspelt.stderr)")
        let badValue = try await Subprocess.run(binary, ["deploy", "render", "ingress", "--set", "publish-service=web"])
        #expect(badValue.status == 1 && badValue.stderr.contains("--publish-service expects NAMESPACE/NAME"), "\(badValue.stderr)")
    }
}

extension DeployManifestTests {
    /// The RBAC grants the rendered objects give a ServiceAccount: ClusterRoles bound cluster-wide, Roles (or
    /// ClusterRoles) bound in a namespace for that namespace only.
    static func grants(for serviceAccount: String, namespace: String, in objects: [[String: Any]]) -> [FakeAPIServer.Grant] {
        func rules(_ kind: String, _ name: String) -> [[String: Any]] {
            objects.first { $0["kind"] as? String == kind && (($0["metadata"] as? [String: Any])?["name"] as? String) == name }?["rules"] as? [[String: Any]] ?? []
        }
        var grants: [FakeAPIServer.Grant] = []
        for binding in objects where ["ClusterRoleBinding", "RoleBinding"].contains(binding["kind"] as? String ?? "") {
            let subjects = binding["subjects"] as? [[String: Any]] ?? []
            guard subjects.contains(where: { $0["kind"] as? String == "ServiceAccount" && $0["name"] as? String == serviceAccount && $0["namespace"] as? String == namespace }),
                  let ref = binding["roleRef"] as? [String: Any], let kind = ref["kind"] as? String, let name = ref["name"] as? String else { continue }
            let scope = binding["kind"] as? String == "RoleBinding" ? (binding["metadata"] as? [String: Any])?["namespace"] as? String : nil
            for rule in rules(kind, name) {
                grants.append(FakeAPIServer.Grant(apiGroups: rule["apiGroups"] as? [String] ?? [], resources: rule["resources"] as? [String] ?? [],
                                                  verbs: rule["verbs"] as? [String] ?? [], resourceNames: rule["resourceNames"] as? [String] ?? [], namespace: scope))
            }
        }
        return grants
    }
}

/// The roles run against the fake API server with exactly the permissions deploy/ grants their
/// ServiceAccounts: a missing verb is a refused request (and a failure), and a granted verb never used
/// is over-privilege (also a failure).
@Suite(.serialized)
struct DeployRBACTests {
    @Test func theIngressControllerNeedsEveryGrantAndNoMore() async throws {
        guard let binary = Prerequisites.ferryBinary(), Prerequisites.have("kubectl") else { return }
        let objects = try await DeployManifestTests.render("ingress/base")
        let grants = DeployManifestTests.grants(for: "ferry-ingress", namespace: "ferry-ingress", in: objects)
        #expect(!grants.isEmpty)
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(IngressClusterTests.collections)
            api.put("networking.k8s.io/v1/ingressclasses", namespace: nil, name: "ferry", object: ["apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "spec": ["controller": "ferry.dev/ingress-controller"]])
            api.put("v1/services", namespace: "ferry-ingress", name: "ferry-ingress", object: ["apiVersion": "v1", "kind": "Service",
                "spec": ["type": "LoadBalancer", "clusterIP": "10.96.0.50", "ports": [["port": 80]]], "status": ["loadBalancer": ["ingress": [["ip": "203.0.113.7"]]]]])
            // Its backend Service is missing: a Warning Event is written too.
            api.put(IngressClusterTests.ingresses, namespace: "demo", name: "shop", object: IngressAPITests.ingress(host: "shop.example"))
            api.enforce(grants, user: "system:serviceaccount:ferry-ingress:ferry-ingress")
            let ferry = try await FerryProcess(binary: binary, arguments: ["ingress", "--kubeconfig", dir + "/config", "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                                                                           "--threads", "1", "--publish-service", "ferry-ingress/ferry-ingress", "--election-namespace", "ferry-ingress",
                                                                           "--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "500ms"],
                                               environment: ["POD_NAME": "ferry-ingress-0"])
            #expect(await Waiting.until(timeout: .seconds(10)) { IngressClusterTests.published(api, "shop") == ["203.0.113.7"] && api.objects("v1/events").count >= 2 }, "\(ferry.stderr)")
            ferry.signal(SIGTERM)
            #expect(await ferry.waitForExit(timeout: .seconds(20)) == 0)
            #expect(IngressClusterTests.published(api, "shop").isEmpty, "status cleared on shutdown")
            #expect(api.refused.isEmpty, "missing permissions: \(api.refused)")
            let granted = grants.reduce(into: Set<String>()) { $0.formUnion($1.permissions) }
            #expect(granted.subtracting(api.usedPermissions).isEmpty, "granted but never used: \(granted.subtracting(api.usedPermissions).sorted())")
        }
    }

    /// `ferry deploy render egress --watch-pods`: the configuration it mounts is valid and watches Pods, and
    /// the ServiceAccount's grants are what the running proxy uses (Pods: list, watch) and no more.
    @Test func theEgressProxyWatchingPodsNeedsItsGrantsAndNoMore() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let r = try await Subprocess.run(binary, ["deploy", "render", "egress", "--watch-pods", "--api-server", "192.168.1.10/32:6443"])
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try Yams.load_all(yaml: r.stdout).compactMap { $0 as? [String: Any] }
        let grants = DeployManifestTests.grants(for: "egress-proxy", namespace: "ferry-egress", in: objects)
        #expect(!grants.isEmpty)
        let configs: [String] = objects.compactMap { ($0["data"] as? [String: String])?["egress.yaml"] }
        let config = try #require(configs.first)
        #expect(config.contains("watch_pods: true"))
        let policy = try #require(objects.first { $0["kind"] as? String == "NetworkPolicy" && ($0["metadata"] as? [String: Any])?["name"] as? String == "egress-proxy" })
        #expect("\(policy)".contains("192.168.1.10/32") && "\(policy)".contains("6443"))
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(["v1/pods"])
            api.put("v1/pods", namespace: "shop", name: "cart", object: EgressNamespacePolicyTests.pod(ip: "127.0.0.2", labels: ["app": "cart"]))
            api.enforce(grants, user: "system:serviceaccount:ferry-egress:egress-proxy")
            // The mounted file, on loopback ports.
            try config.replacingOccurrences(of: "0.0.0.0:9901", with: "127.0.0.1:0").replacingOccurrences(of: "0.0.0.0:3128", with: "127.0.0.1:0")
                .write(toFile: dir + "/egress.yaml", atomically: true, encoding: .utf8)
            let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", dir + "/egress.yaml", "--kubeconfig", dir + "/config", "--threads", "1"])
            defer { Task { await ferry.stop() } }
            #expect(await Waiting.until(timeout: .seconds(10)) { api.usedPermissions.contains("/pods watch") }, "\(api.usedPermissions)")
            #expect(api.refused.isEmpty, "missing permissions: \(api.refused)")
            let granted = grants.reduce(into: Set<String>()) { $0.formUnion($1.permissions) }
            #expect(granted.subtracting(api.usedPermissions).isEmpty, "granted but never used: \(granted.subtracting(api.usedPermissions).sorted())")
        }
        let missing = try await Subprocess.run(binary, ["deploy", "render", "egress", "--watch-pods"])
        #expect(missing.status != 0 && missing.stderr.contains("--watch-pods needs --api-server"), "\(missing.stderr)")
    }

    @Test func theServiceProxysDryRunReadsWithItsGrants() async throws {
        guard let binary = Prerequisites.ferryBinary(), Prerequisites.have("kubectl") else { return }
        let objects = try await DeployManifestTests.render("service-proxy/base")
        let grants = DeployManifestTests.grants(for: "ferry-service-proxy", namespace: "kube-system", in: objects)
        try await APIProxyProcessTests.withAPIServer { dir, api in
            api.serve(["v1/services", "discovery.k8s.io/v1/endpointslices", "networking.k8s.io/v1/servicecidrs", "v1/nodes"])
            api.put("v1/services", namespace: "demo", name: "web", object: IngressAPITests.service)
            api.enforce(grants, user: "system:serviceaccount:kube-system:ferry-service-proxy")
            let r = try await Subprocess.run(binary, ["service-proxy", "--kubeconfig", dir + "/config", "--dry-run", "--hostname-override", "node-1"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(api.refused.isEmpty, "missing permissions: \(api.refused)")
            // A dry run lists; the watches (list + watch) are used by the running proxy (ServiceProxyAPINamespaceTests).
            #expect(api.usedPermissions == ["/services list", "discovery.k8s.io/endpointslices list", "networking.k8s.io/servicecidrs list", "/nodes list"])
            // Without the grant, the refusal names what is missing.
            api.enforce(grants.filter { !$0.resources.contains("servicecidrs") }, user: "system:serviceaccount:kube-system:ferry-service-proxy")
            let denied = try await Subprocess.run(binary, ["service-proxy", "--kubeconfig", dir + "/config", "--dry-run", "--hostname-override", "node-1"])
            #expect(denied.status == 1 && denied.stderr.contains("cannot list resource \"servicecidrs\" in API group \"networking.k8s.io\""), "\(denied.stderr)")
        }
    }
}
