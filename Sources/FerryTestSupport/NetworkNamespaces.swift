import Foundation

/// Network namespaces a test creates and connects only to each other: a "node" namespace and "pod"
/// namespaces, each pod linked to the node by a veth pair (`10.244.N.1` on the node side, the pod's
/// address on the other, the node as the pod's default route). Removed by `remove()`; their names carry the
/// test process's PID, so namespaces a crashed test run left behind are removed by the next run.
public final class NetworkNamespaces: Sendable {
    public let node: String
    public let pods: [String]
    let suffix: String

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `podAddresses[i]` is pod i's address in `10.244.(i+1).0/24`, such as `10.244.1.5`.
    public init(podAddresses: [String]) async throws {
        await Self.removeOrphans()
        let suffix = "\(getpid())-" + String(UUID().uuidString.prefix(8)).lowercased()
        self.suffix = suffix
        node = "ferry-node-\(suffix)"
        pods = podAddresses.indices.map { "ferry-pod\($0 + 1)-\(suffix)" }
        do {
            try await build(podAddresses)
        } catch {
            await remove()
            throw error
        }
    }

    private func build(_ podAddresses: [String]) async throws {
        try await Self.ip(["netns", "add", node])
        try await Self.ip(["-n", node, "link", "set", "lo", "up"])
        for (i, address) in podAddresses.enumerated() {
            let pod = pods[i]
            let subnet = "10.244.\(i + 1)"
            try await Self.ip(["netns", "add", pod])
            try await Self.ip(["-n", pod, "link", "set", "lo", "up"])
            try await Self.ip(["-n", node, "link", "add", "vn\(i + 1)", "type", "veth", "peer", "name", "vp\(i + 1)", "netns", pod])
            try await Self.ip(["-n", node, "addr", "add", "\(subnet).1/24", "dev", "vn\(i + 1)"])
            try await Self.ip(["-n", node, "link", "set", "vn\(i + 1)", "up"])
            try await Self.ip(["-n", pod, "addr", "add", "\(address)/24", "dev", "vp\(i + 1)"])
            try await Self.ip(["-n", pod, "link", "set", "vp\(i + 1)", "up"])
            try await Self.ip(["-n", pod, "route", "add", "default", "via", "\(subnet).1"])
        }
    }

    /// Deletes the `ferry-…-PID-…` namespaces of test processes that no longer run.
    static func removeOrphans() async {
        guard let listing = try? await ip(["netns", "list"]) else { return }
        for line in listing.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            let parts = name.split(separator: "-")
            guard parts.count == 4, parts[0] == "ferry", let pid = Int32(parts[2]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? await ip(["netns", "del", name])
        }
    }

    /// Runs `ip ARGS`, failing with its message.
    @discardableResult
    public static func ip(_ arguments: [String]) async throws -> String {
        let result = try await Subprocess.run(Prerequisites.path(of: "ip") ?? "/usr/sbin/ip", arguments, timeout: .seconds(20))
        guard result.status == 0 else { throw Failure(description: "ip \(arguments.joined(separator: " ")): \(result.stderr)") }
        return result.stdout
    }

    /// `ip netns exec NAMESPACE tool args` as arguments for `Subprocess` (tool found on PATH).
    public func exec(in namespace: String, _ tool: String, _ arguments: [String]) -> (String, [String]) {
        (Prerequisites.path(of: "ip") ?? "/usr/sbin/ip", ["netns", "exec", namespace, Prerequisites.path(of: tool) ?? tool] + arguments)
    }

    /// Deletes the namespaces (their veth pairs go with them). Processes started in them must be stopped first.
    public func remove() async {
        for namespace in [node] + pods {
            _ = try? await Subprocess.run(Prerequisites.path(of: "ip") ?? "/usr/sbin/ip", ["netns", "del", namespace], timeout: .seconds(20))
        }
    }
}
