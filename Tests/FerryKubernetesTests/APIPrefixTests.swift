import FerryKubernetes
import Testing

@Suite struct APIPrefixTests {
    @Test(arguments: [
        ("/", "/api/v1/pods", "/api/v1/pods"),
        ("/k8s", "/k8s/api/v1/pods", "/api/v1/pods"),
        ("/k8s/", "/k8s", "/"),
        ("/k8s", "/other/api", nil),
        ("/api", "/api/v1/pods", "/api/v1/pods"),
        ("/api/", "/apis/apps", nil),
    ] as [(String, String, String?)])
    func prefixHandling(prefix: String, path: String, expected: String?) {
        #expect(APIPrefix.apply(prefix, to: path) == expected)
    }
}

