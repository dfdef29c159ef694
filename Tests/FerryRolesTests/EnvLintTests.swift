import FerryRoles
import Testing

/// `ferry env --lint`: where the variables come from (an env list, manifests, KEY=VALUE lines) and the verdict.
@Suite struct EnvLintTests {
    @Test func aContainerEnvListIsOneSubject() throws {
        let yaml = """
        # a comment
        - name: HTTP_PROXY
          value: "http://proxy:3128"
        - name: http_proxy
          value: "http://proxy:3128"
        - name: TOKEN
          valueFrom: {secretKeyRef: {name: s, key: k}}
        """
        let subjects = try EnvLint.subjects(fromFile: "env.yaml", contents: yaml)
        #expect(subjects.count == 1)
        #expect(subjects[0].name == "env.yaml")
        #expect(subjects[0].variables == ["HTTP_PROXY": "http://proxy:3128", "http_proxy": "http://proxy:3128"])
        #expect(EnvLint.report(subjects, json: false).approved)
    }

    @Test func manifestsGiveOneSubjectPerContainer() throws {
        let yaml = """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          template:
            spec:
              initContainers:
              - name: setup
              containers:
              - name: app
                env:
                - {name: HTTP_PROXY, value: "http://p:3128"}
                - {name: NO_PROXY, value: "*.svc"}
        ---
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: nightly}
        spec:
          jobTemplate:
            spec:
              template:
                spec:
                  containers:
                  - name: job
                    env: [{name: no_proxy, value: "svc"}]
        """
        let subjects = try EnvLint.subjects(fromFile: "m.yaml", contents: yaml)
        #expect(subjects.map(\.name) == ["Deployment/web init container setup", "Deployment/web container app", "CronJob/nightly container job"])
        let result = EnvLint.report(subjects, json: false)
        #expect(!result.approved)
        // The finding names its container and what to write instead.
        #expect(result.text.contains("Deployment/web container app: HTTP_PROXY=http://p:3128  NO_PROXY=*.svc\n"))
        #expect(result.text.contains("fix  *.svc: a wildcard"))
        #expect(result.text.contains("write svc"))
        #expect(result.text.contains("fix  HTTP_PROXY: curl reads only http_proxy"))
        #expect(result.text.contains("CronJob/nightly container job: no_proxy=svc\n  ok: "))
    }

    @Test func keyValueLines() throws {
        let subjects = try EnvLint.subjects(fromFile: ".env", contents: "export https_proxy='http://p:3128'\nno_proxy=\"a,b\"\n")
        #expect(subjects.first?.variables == ["https_proxy": "http://p:3128", "no_proxy": "a,b"])
        let json = EnvLint.report(subjects, json: true)
        #expect(json.approved && json.text.contains("\"approved\" : true"))
    }

    @Test func unreadableInputSaysWhatWasExpected() {
        #expect(throws: EnvLintError.self) { try EnvLint.subjects(fromFile: "x", contents: "kind: ConfigMap\ndata: {a: b}\n") }
        var message: String?
        do { _ = try EnvLint.subjects(fromFile: "x", contents: "- value: 1\n") } catch let e as EnvLintError { message = e.description } catch {}
        #expect(message?.contains("env[0]: expected name: and value:") == true)
    }
}
