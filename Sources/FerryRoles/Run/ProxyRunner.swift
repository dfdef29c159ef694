import FerryConfig
import FerryModel
import FerryProxy
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a configuration until SIGTERM/SIGINT: the data plane, plus any extra services (a config watcher,
/// demo origins), in one `ServiceGroup` that drains on shutdown.
public enum ProxyRunner {
    public struct Options: Sendable {
        public var threads: Int
        public var accessLogFormat: AccessLogSettings.Format?
        /// The metrics to serve on `/metrics` (a role adds its own to the registry); nil: the data plane's only.
        public var metrics: ProxyMetrics?
        public init(threads: Int = System.coreCount, accessLogFormat: AccessLogSettings.Format? = nil, metrics: ProxyMetrics? = nil) {
            self.threads = threads
            self.accessLogFormat = accessLogFormat
            self.metrics = metrics
        }
    }

    /// A configuration source to reload on SIGHUP or edit, and its stamp from before it was read.
    public struct Watch: Sendable {
        public var source: any ConfigSource
        public var loadedStamp: SourceStamp?
        public init(source: any ConfigSource, loadedStamp: SourceStamp?) {
            self.source = source
            self.loadedStamp = loadedStamp
        }
    }

    public static func run(config: ConfigSnapshot, options: Options, watch: Watch?, extraServices: [any Service] = [], onStart: @Sendable (ProxyServer) -> Void = { _ in }) async throws {
        var logger = Logger(label: "ferry")
        logger.logLevel = .info
        var config = config
        let format = options.accessLogFormat
        let overrides: @Sendable (inout ConfigSnapshot) -> Void = { c in
            if let format { c.accessLog.format = format }
        }
        overrides(&config)
        // SIGHUP must never end the process (its default action): before the watcher takes it over (the edit
        // it announces is still picked up by the watcher's poll), and when there is nothing to reload.
        signal(SIGHUP, SIG_IGN)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.threads))
        let server = try ProxyServer(config: config, group: group, metrics: options.metrics ?? ProxyMetrics(), logger: logger)
        do {
            try server.start()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        server.accessLogStart()
        ConfigWatcher.logNotes(config, logger: logger, previous: [])
        onStart(server)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)]
        if let watch {
            services.append(.init(service: ConfigWatcher(source: watch.source, loadedStamp: watch.loadedStamp, server: server, logger: logger, pollInterval: watch.source.pollInterval, overrides: overrides)))
        }
        services += extraServices.map { .init(service: $0) }
        let serviceGroup = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await serviceGroup.run()
        try? await group.shutdownGracefully()
    }
}
