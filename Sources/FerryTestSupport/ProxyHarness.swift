import FerryConfig
import FerryModel
import FerryProxy
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A Ferry data plane running in the test process, from YAML, on port 0, with its access log in a file.
/// Scoped: `stop()` drains it; a harness dropped without being stopped (a test that threw half-way) shuts
/// its event loops down when it goes out of scope, so no listener or thread outlives the test.
public final class ProxyHarness: Sendable {
    public let server: ProxyServer
    public let group: MultiThreadedEventLoopGroup
    public let accessLogPath: String
    private let accessLogFD: Int32
    private let stopped = Atomic<Bool>(false)

    /// `yaml` may use `{{name}}` placeholders, replaced from `values` (origin addresses, ...).
    public convenience init(yaml: String, values: [String: String] = [:], threads: Int = 1) throws {
        var text = yaml
        for (key, value) in values { text = text.replacingOccurrences(of: "{{\(key)}}", with: value) }
        try self.init(config: try ConfigLoader.decode(yaml: text, file: "test.yaml"), threads: threads)
    }

    /// Runs `config` (its admin listener, if any, moved to port 0).
    public init(config: ConfigSnapshot, threads: Int = 1) throws {
        var config = config
        if config.admin != nil { config.admin = AdminSettings(address: HostPort(host: "127.0.0.1", port: 0)) }
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        accessLogPath = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-access-\(UUID().uuidString).log").path
        accessLogFD = open(accessLogPath, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        let writer = AccessLogWriter(fd: accessLogFD)
        server = try ProxyServer(config: config, group: group, accessLog: writer)
        try server.start()
        server.accessLogStart()
    }

    public func port(_ listener: String) -> Int {
        server.listenerAddresses[listener]?.port ?? 0
    }

    public func url(_ path: String, listener: String = "web") -> String {
        "http://127.0.0.1:\(port(listener))\(path)"
    }

    public var adminURL: String {
        "http://127.0.0.1:\(server.adminAddress?.port ?? 0)"
    }

    /// Access-log lines written so far (the writer flushes within a moment; poll with `Waiting.until`).
    public var accessLogLines: [String] {
        ((try? String(contentsOfFile: accessLogPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    public func stop() async {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        try? await server.drain()
        try? await group.shutdownGracefully()
        close(accessLogFD)
    }

    deinit {
        if !stopped.exchange(true, ordering: .relaxed) {
            try? group.syncShutdownGracefully()
            close(accessLogFD)
        }
    }
}
