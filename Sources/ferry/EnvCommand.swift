import ArgumentParser
import FerryModel
import FerryRoles
import Foundation

struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "The NO_PROXY doctor: would Go, curl, Python and Java clients use the proxy for URL, and why."
    )

    @Argument(help: "The URL a client would fetch, e.g. https://api.example.com/")
    var url: String

    @Option(help: "HTTP_PROXY to assume (default: from the environment).")
    var httpProxy: String?

    @Option(help: "HTTPS_PROXY to assume (default: from the environment).")
    var httpsProxy: String?

    @Option(help: "NO_PROXY to assume (default: from the environment).")
    var noProxy: String?

    @Option(help: "text or json.")
    var output: String = "text"

    func run() throws {
        var variables = ProcessInfo.processInfo.environment.filter { $0.key.lowercased().hasSuffix("_proxy") || $0.key == "REQUEST_METHOD" }
        // A flag stands for the variable in both cases.
        for (value, upper) in [(httpProxy, "HTTP_PROXY"), (httpsProxy, "HTTPS_PROXY"), (noProxy, "NO_PROXY")] {
            guard let value else { continue }
            variables[upper] = value
            variables[upper.lowercased()] = value
        }
        let environment = ProxyEnvironment(variables: variables)
        let text: String?
        switch output {
        case "text": text = EnvDoctor.report(url: url, environment: environment, installedCurl: EnvDoctor.installedCurlVersion())
        case "json": text = EnvDoctor.json(url: url, environment: environment)
        default: throw ValidationError("--output is text or json")
        }
        guard let text else { throw ValidationError("expected a URL such as https://api.example.com/ (SCHEME://HOST[:PORT]/...), not \"\(url)\"") }
        print(text, terminator: "")
    }
}
