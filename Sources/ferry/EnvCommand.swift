import ArgumentParser
import FerryModel
import FerryRoles
import Foundation

struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "The NO_PROXY doctor: would Go, curl, Python and Java clients use the proxy for URL, and why.",
        discussion: """
        With --lint (no URL): check the variables for what clients read differently. An entry with a spelling \
        that Go, curl and Python read alike is to fix (exit status 1); differences no spelling closes (CIDRs, \
        ports) are notes. --file reads a container's env list, Kubernetes manifests (every container) or \
        KEY=VALUE lines instead of the environment.
        """
    )

    @Argument(help: "The URL a client would fetch, e.g. https://api.example.com/ (not with --lint).")
    var url: String?

    @Flag(help: "Check the variables rather than a URL; exit status 1 when an entry is to fix.")
    var lint = false

    @Option(name: .shortAndLong, help: "With --lint: read the variables from FILE (env list, manifests, KEY=VALUE lines; - for stdin).")
    var file: String?

    @Option(help: "HTTP_PROXY to assume (default: from the environment).")
    var httpProxy: String?

    @Option(help: "HTTPS_PROXY to assume (default: from the environment).")
    var httpsProxy: String?

    @Option(help: "NO_PROXY to assume (default: from the environment).")
    var noProxy: String?

    @Option(help: "text or json.")
    var output: String = "text"

    func run() throws {
        if lint {
            guard url == nil else { throw ValidationError("--lint checks the variables, not a URL: drop \"\(url!)\" or --lint") }
            guard output == "text" || output == "json" else { throw ValidationError("--output is text or json") }
            var subjects: [EnvLint.Subject]
            if let file {
                let contents: String
                if file == "-" {
                    contents = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                } else {
                    do { contents = try String(contentsOfFile: file, encoding: .utf8) } catch {
                        throw ValidationError("cannot read \(file): \(error.localizedDescription)")
                    }
                }
                do { subjects = try EnvLint.subjects(fromFile: file == "-" ? "stdin" : file, contents: contents) } catch let e as EnvLintError {
                    throw ValidationError(e.description)
                }
            } else {
                subjects = [EnvLint.Subject(name: "environment", variables: ProcessInfo.processInfo.environment.filter { $0.key.lowercased().hasSuffix("_proxy") })]
            }
            for i in subjects.indices { subjects[i].variables = withFlags(subjects[i].variables) }
            let result = EnvLint.report(subjects, json: output == "json")
            print(result.text, terminator: "")
            if !result.approved { throw ExitCode(1) }
            return
        }
        guard file == nil else { throw ValidationError("--file goes with --lint") }
        guard let url else { throw ValidationError("expected a URL such as https://api.example.com/, or --lint") }
        let variables = ProcessInfo.processInfo.environment.filter { $0.key.lowercased().hasSuffix("_proxy") || $0.key == "REQUEST_METHOD" }
        let environment = ProxyEnvironment(variables: withFlags(variables))
        let text: String?
        switch output {
        case "text": text = EnvDoctor.report(url: url, environment: environment, installedCurl: EnvDoctor.installedCurlVersion())
        case "json": text = EnvDoctor.json(url: url, environment: environment)
        default: throw ValidationError("--output is text or json")
        }
        guard let text else { throw ValidationError("expected a URL such as https://api.example.com/ (SCHEME://HOST[:PORT]/...), not \"\(url)\"") }
        print(text, terminator: "")
    }

    /// A flag stands for the variable in both cases.
    func withFlags(_ variables: [String: String]) -> [String: String] {
        var variables = variables
        for (value, upper) in [(httpProxy, "HTTP_PROXY"), (httpsProxy, "HTTPS_PROXY"), (noProxy, "NO_PROXY")] {
            guard let value else { continue }
            variables[upper] = value
            variables[upper.lowercased()] = value
        }
        return variables
    }
}
