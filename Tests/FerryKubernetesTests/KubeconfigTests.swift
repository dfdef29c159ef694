import FerryKubernetes
import Foundation
import Testing

@Suite struct KubeconfigTests {
    func folder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-kubeconfig-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    let first = """
    apiVersion: v1
    kind: Config
    current-context: dev
    clusters:
      - name: dev
        cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca/dev.crt, tls-server-name: api.dev}
      - name: shared
        cluster: {server: "https://first.example:6443", insecure-skip-tls-verify: true}
    users:
      - name: alice
        user: {token: abc}
    contexts:
      - name: dev
        context: {cluster: dev, user: alice, namespace: team}
    """

    let second = """
    apiVersion: v1
    kind: Config
    current-context: prod
    clusters:
      - name: shared
        cluster: {server: "https://second.example:6443"}
      - name: prod
        cluster: {server: "https://10.9.9.9", certificate-authority-data: "aGVsbG8="}
    users:
      - name: bob
        user: {client-certificate: certs/bob.crt, client-key: certs/bob.key}
      - name: carol
        user:
          exec:
            apiVersion: client.authentication.k8s.io/v1
            command: ./bin/get-token
            args: [--cluster, prod]
            env: [{name: REGION, value: eu}]
    contexts:
      - name: prod
        context: {cluster: prod, user: bob}
    """

    @Test func filesMergeAsKubectlMergesThem() throws {
        let dir = try folder()
        try first.write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        try second.write(toFile: dir + "/b.yaml", atomically: true, encoding: .utf8)
        let (paths, explicit) = Kubeconfig.paths(explicit: nil, environment: ["KUBECONFIG": "\(dir)/a.yaml:\(dir)/missing.yaml::\(dir)/b.yaml"])
        #expect(!explicit && paths.count == 3)
        let config = try Kubeconfig.load(paths: paths)
        #expect(config.currentContext == "dev", "the first file to set current-context wins")
        #expect(config.clusters["shared"]?.server == "https://first.example:6443", "the first file to define a name wins")
        #expect(config.clusters["dev"]?.certificateAuthority == dir + "/ca/dev.crt", "relative to its own file")
        #expect(config.users["bob"]?.clientCertificate == dir + "/certs/bob.crt")
        #expect(config.users["carol"]?.exec?.command == dir + "/./bin/get-token" && config.users["carol"]?.exec?.env == ["REGION": "eu"])
        #expect(config.clusters["prod"]?.certificateAuthorityData == Array("hello".utf8))

        let dev = try config.select()
        #expect(dev.clusterName == "dev" && dev.userName == "alice" && dev.user.token == "abc" && dev.namespace == "team")
        #expect(dev.cluster.tlsServerName == "api.dev")
        let prod = try config.select(context: "prod")
        #expect(prod.cluster.server == "https://10.9.9.9" && prod.user.clientKey == dir + "/certs/bob.key")
        let override = try config.select(context: "prod", cluster: "shared", user: "carol")
        #expect(override.cluster.server == "https://first.example:6443" && override.user.exec != nil)
    }

    @Test func errorsNameTheFileAndTheEntry() throws {
        let dir = try folder()
        let bad = """
        clusters:
          - name: x
            cluster: {server: "10.0.0.1:6443"}
          - cluster: {server: "https://a"}
          - name: y
            cluster: {server: "https://b", certificate-authority-data: "not base64!", insecure-skip-tls-verify: true}
        users:
          - name: u
            user: {client-certificate-data: "aGVsbG8=", token: t, tokenFile: f}
          - name: e
            user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}}
        """
        try bad.write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        do {
            _ = try Kubeconfig.load(paths: [dir + "/bad.yaml"])
            Issue.record("accepted")
        } catch let error as KubeconfigError {
            let f = dir + "/bad.yaml"
            #expect(error.problems.contains("\(f): clusters[0] (\"x\"): server must be an http(s) URL such as https://10.0.0.1:6443"))
            #expect(error.problems.contains("\(f): clusters[1]: needs a name"))
            #expect(error.problems.contains("\(f): clusters[2] (\"y\"): certificate-authority-data is not valid base64"))
            #expect(error.problems.contains("\(f): users[0] (\"u\"): client-certificate and client-key go together (one of them is missing)"))
            #expect(error.problems.contains("\(f): users[0] (\"u\"): token and tokenFile cannot both be set"))
            #expect(error.problems.contains { $0.hasPrefix("\(f): users[1] (\"e\"): exec.apiVersion must be client.authentication.k8s.io/v1") })
        }
        do {
            _ = try Kubeconfig.load(paths: [dir + "/nope.yaml"], mustExist: true)
            Issue.record("accepted a missing explicit file")
        } catch let error as KubeconfigError {
            #expect(error.problems == ["\(dir)/nope.yaml: cannot read the kubeconfig file"])
        }
    }

    @Test func selectionErrors() throws {
        let dir = try folder()
        try first.write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        let config = try Kubeconfig.load(paths: [dir + "/a.yaml"])
        #expect(throws: KubeconfigError.self) { try config.select(context: "nope") }
        do {
            _ = try config.select(context: "dev", user: "mallory")
        } catch let error as KubeconfigError {
            #expect(error.description == "user \"mallory\" (named by context \"dev\" in \(dir)/a.yaml) is not defined")
        }
    }

    @Test func inClusterCredentials() throws {
        let dir = try folder()
        #expect(throws: KubeconfigError.self) { try InClusterConfig.load(environment: [:], folder: dir).get() }
        try "token-1\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        try "CA".write(toFile: dir + "/ca.crt", atomically: true, encoding: .utf8)
        try "kube-system".write(toFile: dir + "/namespace", atomically: true, encoding: .utf8)
        let config = try InClusterConfig.load(environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"], folder: dir).get()
        #expect(config.server == "https://10.96.0.1:443" && config.namespace == "kube-system")
        #expect(try config.token() == "token-1")
        try "token-2\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        #expect(try config.token() == "token-2", "a rotated token is read again")
        let v6 = try InClusterConfig.load(environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"], folder: dir).get()
        #expect(v6.server == "https://[fd00::1]:443")
    }
}

@Suite struct ExecPluginTests {
    @Test func invocationEnvironmentAndAnswer() throws {
        let plugin = ExecPlugin(config: Kubeconfig.ExecConfig(apiVersion: "client.authentication.k8s.io/v1", command: "aws", args: ["eks", "get-token"], env: ["REGION": "eu"]))
        #expect(plugin.invocation.executable == "/usr/bin/env" && plugin.invocation.arguments == ["aws", "eks", "get-token"])
        let environment = plugin.environment(base: ["PATH": "/bin", "REGION": "us"])
        #expect(environment["PATH"] == "/bin" && environment["REGION"] == "eu")
        #expect(environment["KUBERNETES_EXEC_INFO"] == #"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#)
        let answer = Data(#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#.utf8)
        let credential = try ExecPlugin.parse(answer, command: "aws")
        #expect(credential.token == "t" && credential.expiration == 1_893_456_000)
        #expect(credential.valid(now: 1_893_456_000 - 11) && !credential.valid(now: 1_893_456_000 - 10))
        #expect(throws: KubeconfigError.self) { try ExecPlugin.parse(Data(#"{"kind":"ExecCredential","status":{}}"#.utf8), command: "aws") }
    }
}
