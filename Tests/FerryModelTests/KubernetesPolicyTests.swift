import FerryModel
import Testing

@Suite struct KubernetesPolicyTests {
    @Test(arguments: [
        ("GET", "/api/v1/namespaces/default/pods", "", "list", "pods", "default", ""),
        ("GET", "/api/v1/namespaces/default/pods", "watch=true&resourceVersion=5", "watch", "pods", "default", ""),
        ("GET", "/api/v1/namespaces/default/pods/web-1", "", "get", "pods", "default", "web-1"),
        ("GET", "/api/v1/namespaces/default/pods/web-1/log", "follow=true", "get", "pods/log", "default", "web-1"),
        ("GET", "/api/v1/namespaces/default/pods/web-1/exec", "command=sh", "create", "pods/exec", "default", "web-1"),
        ("POST", "/api/v1/namespaces/default/pods/web-1/portforward", "", "create", "pods/portforward", "default", "web-1"),
        ("GET", "/api/v1/nodes", "", "list", "nodes", "", ""),
        ("GET", "/api/v1/nodes/node-1/proxy/metrics", "", "get", "nodes/proxy", "", "node-1"),
        ("DELETE", "/apis/apps/v1/namespaces/dev/deployments", "", "deletecollection", "deployments.apps", "dev", ""),
        ("PATCH", "/apis/apps/v1/namespaces/dev/deployments/api/scale", "", "patch", "deployments.apps/scale", "dev", "api"),
        ("GET", "/api/v1/namespaces/dev", "", "get", "namespaces", "dev", "dev"),
        ("GET", "/api/v1/watch/namespaces/dev/pods", "", "watch", "pods", "dev", ""),
    ])
    func readsRequests(method: String, path: String, query: String, verb: String, resource: String, namespace: String, name: String) {
        let r = KubernetesRequest(method: method, path: Substring(path), query: Substring(query))
        #expect(r.verb == verb)
        #expect(r.resourceName == resource)
        #expect(r.namespace == namespace)
        #expect(r.name == name)
        #expect(r.nonResourcePath == nil)
    }

    @Test func nonResourcePaths() {
        #expect(KubernetesRequest(method: "GET", path: "/version", query: "").nonResourcePath == "/version")
        #expect(KubernetesRequest(method: "GET", path: "/apis/apps/v1", query: "").nonResourcePath == "/apis/apps/v1")
        #expect(KubernetesRequest(method: "GET", path: "/healthz", query: "").verb == "get")
    }

    static let policy = KubernetesPolicy(rules: [
        .init(users: ["alice"], verbs: ["get", "list", "watch"], resources: ["pods", "pods/log"], namespaces: ["default"]),
        .init(users: ["group:admins"], verbs: ["*"], resources: ["*"], namespaces: ["*"], nonResourceURLs: ["/healthz*"]),
        .init(users: ["*"], verbs: ["get"], resources: ["nodes"]),
    ])

    @Test func rulesAreAdditiveAndNameTheirUsers() {
        func decide(_ method: String, _ path: String, _ query: String = "", user: String, groups: [String] = []) -> Verdict {
            Self.policy.decide(KubernetesRequest(method: method, path: Substring(path), query: Substring(query)), user: user, groups: groups)
        }
        #expect(decide("GET", "/api/v1/namespaces/default/pods", "watch=1", user: "alice").allowed)
        #expect(decide("GET", "/api/v1/namespaces/default/pods/a/log", user: "alice").rule == 1)
        let exec = decide("POST", "/api/v1/namespaces/default/pods/a/exec", user: "alice")
        #expect(!exec.allowed && exec.reason == "alice may not create pods/exec in namespace default")
        #expect(!decide("GET", "/api/v1/namespaces/other/pods", user: "alice").allowed)
        #expect(decide("DELETE", "/apis/apps/v1/namespaces/x/deployments/y", user: "bob", groups: ["admins"]).rule == 2)
        #expect(decide("GET", "/healthz/etcd", user: "bob", groups: ["admins"]).allowed)
        #expect(!decide("GET", "/healthz", user: "alice").allowed)
        #expect(decide("GET", "/api/v1/nodes/n1", user: "").allowed, "* names unauthenticated clients too")
        #expect(!decide("GET", "/api/v1/nodes", user: "").allowed, "list is not get")
        #expect(decide("GET", "/api", user: "alice").allowed && decide("GET", "/apis/apps/v1", user: "alice").allowed, "discovery for anyone named")
    }

    @Test func tokenFiles() {
        let (tokens, problems) = ClientAuthentication.parseTokens("""
        # token,user,uid,groups
        s3cret,alice,1001
        t0ken, bob ,1002,"admins,dev"

        broken
        """)
        #expect(tokens["s3cret"] == ClientAuthentication.User(name: "alice"))
        #expect(tokens["t0ken"] == ClientAuthentication.User(name: "bob", groups: ["admins", "dev"]))
        #expect(problems == ["line 5: expected token,user[,uid[,\"group1,group2\"]]"])
        let auth = ClientAuthentication(tokens: tokens)
        #expect(auth.user(forAuthorization: "Bearer s3cret")?.name == "alice")
        #expect(auth.user(forAuthorization: "bearer t0ken")?.name == "bob")
        #expect(auth.user(forAuthorization: "Basic s3cret") == nil && auth.user(forAuthorization: "Bearer nope") == nil)
    }
}
