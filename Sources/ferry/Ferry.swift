import ArgumentParser
import FerryRoles

@main
struct Ferry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "One proxy for every role in a Kubernetes cluster.",
        subcommands: [RunCommand.self, ValidateCommand.self, DemoCommand.self, IngressCommand.self, ExplainCommand.self, EgressCommand.self, SidecarCommand.self, InjectCommand.self, EnvCommand.self, APIProxyCommand.self, ServiceProxyCommand.self, RulesCommand.self, DeployCommand.self]
    )

    /// Parses the arguments as kubectl's flag library does, then runs the command.
    static func main() async {
        do {
            var command = try parseAsRoot(Self.expandingEmptyValues(Array(CommandLine.arguments.dropFirst())))
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    /// `--flag=` means the flag with an empty value (kubectl: `--reject-paths=` is an empty list), not a
    /// flag missing its value: it is passed on as `--flag ""`.
    static func expandingEmptyValues(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var afterTerminator = false
        for argument in arguments {
            if argument == "--" { afterTerminator = true }
            if !afterTerminator, argument.hasPrefix("--"), argument.hasSuffix("="), argument.filter({ $0 == "=" }).count == 1, argument.count > 3 {
                out.append(String(argument.dropLast()))
                out.append("")
            } else {
                out.append(argument)
            }
        }
        return out
    }
}
