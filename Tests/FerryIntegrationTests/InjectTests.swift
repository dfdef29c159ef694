import FerryTestSupport
import Foundation
import Testing

/// `ferry inject` on each workload kind against golden files (Tests/Golden/inject: NAME.yaml in,
/// NAME.injected.yaml out), idempotence, and the Kubernetes schemas.
@Suite(.serialized)
struct InjectTests {
    static let golden = DeployManifestTests.root.appendingPathComponent("Tests/Golden/inject").path
    static let kinds = ["pod", "deployment", "statefulset", "daemonset", "job", "cronjob"]

    @Test func eachKindMatchesItsGoldenFileAndInjectingTwiceChangesNothing() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        for kind in Self.kinds {
            let input = "\(Self.golden)/\(kind).yaml", expected = "\(Self.golden)/\(kind).injected.yaml"
            let once = try await Subprocess.run(binary, ["inject", "-f", input], timeout: .seconds(30))
            #expect(once.status == 0, "\(kind): \(once.stderr)")
            #expect(once.stdout == (try String(contentsOfFile: expected, encoding: .utf8)), "\(kind): the output differs from \(expected)")
            let twice = try await Subprocess.run(binary, ["inject", "-f", expected], timeout: .seconds(30))
            #expect(twice.stdout == once.stdout, "\(kind): injecting again changed the result")
        }
        // Standard input, and what is said about each workload.
        let piped = try await Subprocess.run("/bin/sh", ["-c", "\(binary) inject -f - < \(Self.golden)/job.yaml"], timeout: .seconds(30))
        #expect(piped.stdout == (try String(contentsOfFile: "\(Self.golden)/job.injected.yaml", encoding: .utf8)))
        #expect(piped.stderr.contains("Job/untouched: not injected (ferry.dev/inject: false)"), "\(piped.stderr)")
    }

    @Test func badAnnotationsAreRefusedWithTheirWorkload() async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("inject")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (annotation, message) in [
            ("ferry.dev/app-port: \"http\"", "document 1: Pod/p: ferry.dev/app-port: \"http\" is not a port"),
            ("ferry.dev/mode: mesh", "Pod/p: ferry.dev/mode: \"mesh\" is not sidecar or egress-only"),
            ("ferry.dev/exclude-outbound-cidrs: \"10.0.0.0/33\"", "Pod/p: ferry.dev/exclude-outbound-cidrs: \"10.0.0.0/33\" is not a CIDR"),
            ("ferry.dev/app-port: \"15001\"", "Pod/p: the app's port 15001 is one of Ferry's own"),
        ] {
            try "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {\(annotation)}}\nspec: {containers: [{name: a, image: a}]}\n"
                .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
            let r = try await Subprocess.run(binary, ["inject", "-f", dir + "/p.yaml"], timeout: .seconds(30))
            #expect(r.status == 1 && r.stderr.contains(message), "\(annotation): \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
    }

    /// Native sidecars (restartPolicy on an init container) and the rest of the output are valid Pod specs.
    @Test func theInjectedManifestsValidateAgainstTheKubernetesSchemas() async throws {
        guard let python = Prerequisites.python(with: "kubernetes_validate", install: "python3 -m pip install kubernetes-validate") else { return }
        for kind in Self.kinds {
            for release in DeployManifestTests.schemaReleases {
                let r = try await Subprocess.run(python, ["-m", "kubernetes_validate", "--strict", "--quiet", "-k", release, "\(Self.golden)/\(kind).injected.yaml"])
                #expect(r.status == 0 && !r.stdout.contains("ERROR"), "\(kind) against Kubernetes \(release): \(r.stdout)\(r.stderr)")
            }
        }
    }
}
