import ArgumentParser
import FerryRoles

@main
struct Ferry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "One proxy for every role in a Kubernetes cluster.",
        subcommands: [RunCommand.self, ValidateCommand.self, DemoCommand.self, IngressCommand.self, ExplainCommand.self, EgressCommand.self, EnvCommand.self, APIProxyCommand.self, ServiceProxyCommand.self, RulesCommand.self]
    )
}
