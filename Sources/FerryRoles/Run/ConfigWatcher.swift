import FerryConfig
import FerryModel
import FerryProxy
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reloads the configuration on SIGHUP or when its source changes (checked once a second).
/// A valid configuration takes over; an invalid one is refused with its diagnostics and the old one stays.
public final class ConfigWatcher: Service, Sendable {
    let source: any ConfigSource
    let server: ProxyServer
    let logger: Logger
    let overrides: @Sendable (inout ConfigSnapshot) -> Void
    let pollInterval: Duration
    /// The stamp of the file as last loaded, by either trigger, so one edit is loaded once.
    private let loadedStamp: NIOLockedValueBox<SourceStamp?>

    /// `loadedStamp` is the source's stamp from before it was read for the configuration in force, so an edit
    /// made between that read and the start of watching is still noticed.
    public init(source: any ConfigSource, loadedStamp: SourceStamp?, server: ProxyServer, logger: Logger, pollInterval: Duration = .seconds(1), overrides: @escaping @Sendable (inout ConfigSnapshot) -> Void = { _ in }) {
        self.source = source
        self.loadedStamp = NIOLockedValueBox(loadedStamp)
        self.server = server
        self.logger = logger
        self.overrides = overrides
        self.pollInterval = pollInterval
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        // Stops watching as soon as shutdown begins, so the data plane (shut down after it) can drain.
        try await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    for await _ in signals {
                        self.logger.info("SIGHUP: reloading", metadata: ["source": "\(self.source.name)"])
                        self.reload()
                    }
                }
                tasks.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.pollInterval)
                        let now = self.source.stamp()
                        if now != nil, now != self.loadedStamp.withLockedValue({ $0 }) {
                            self.logger.info("configuration changed: reloading", metadata: ["source": "\(self.source.name)"])
                            self.reload()
                        }
                    }
                }
                await tasks.next()
                tasks.cancelAll()
            }
        }
    }

    /// Loads, validates and applies the file; returns whether the new configuration took over.
    @discardableResult
    public func reload() -> Bool {
        // Taken before reading, so an edit made during the read is noticed next time.
        let stamp = source.stamp()
        loadedStamp.withLockedValue { $0 = stamp }
        do {
            var config = try source.load(version: server.snapshot.version + 1)
            let after = source.stampAfterLoad(stamp)
            loadedStamp.withLockedValue { $0 = after }
            overrides(&config)
            let previous = Set(server.snapshot.notes)
            try server.apply(config)
            ConfigWatcher.logNotes(config, logger: logger, previous: previous)
            return true
        } catch let error as ConfigError {
            logger.error("configuration refused; the previous one stays in force\n\(error)")
            server.recordRefusedReload(error.description)
        } catch {
            logger.error("configuration refused; the previous one stays in force: \(error)")
            server.recordRefusedReload("\(error)")
        }
        return false
    }

    /// Logs each note of `config` that the previous configuration did not already have, so a problem is
    /// reported once, not on every reload.
    static func logNotes(_ config: ConfigSnapshot, logger: Logger, previous: Set<String>) {
        for note in config.notes where !previous.contains(note) {
            logger.warning("\(note)")
        }
    }
}
