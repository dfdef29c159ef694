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

/// Reloads the configuration file on SIGHUP or when the file changes (checked once a second).
/// A valid file takes over; an invalid one is refused with its diagnostics and the old one stays.
public final class ConfigWatcher: Service, Sendable {
    let path: String
    let server: ProxyServer
    let logger: Logger
    let overrides: @Sendable (inout ConfigSnapshot) -> Void
    let pollInterval: Duration
    /// The stamp of the file as last loaded, by either trigger, so one edit is loaded once.
    private let loadedStamp: NIOLockedValueBox<FileStamp?>

    /// `loadedStamp` is the file's stamp from before it was read for the configuration in force, so an edit
    /// made between that read and the start of watching is still noticed.
    public init(path: String, loadedStamp: FileStamp?, server: ProxyServer, logger: Logger, pollInterval: Duration = .seconds(1), overrides: @escaping @Sendable (inout ConfigSnapshot) -> Void = { _ in }) {
        self.path = path
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
                        self.logger.info("SIGHUP: reloading", metadata: ["file": "\(self.path)"])
                        self.reload()
                    }
                }
                tasks.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.pollInterval)
                        let now = ConfigWatcher.stamp(self.path)
                        if now != nil, now != self.loadedStamp.withLockedValue({ $0 }) {
                            self.logger.info("configuration file changed: reloading", metadata: ["file": "\(self.path)"])
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
        let stamp = ConfigWatcher.stamp(path)
        loadedStamp.withLockedValue { $0 = stamp }
        do {
            var config = try ConfigLoader.load(path: path, version: server.snapshot.version + 1)
            overrides(&config)
            try server.apply(config)
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

    /// Modification time, size and inode of the file, to notice edits (also an atomic replace).
    public static func stamp(_ path: String) -> FileStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileStamp(values: [Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec), Int(info.st_size), Int(info.st_ino)])
    }
}

/// What identifies one version of a file on disk.
public struct FileStamp: Hashable, Sendable {
    let values: [Int]
}
