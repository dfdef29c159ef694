import FerryConfig
import FerryModel
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a running proxy's configuration comes from: something that can be read again and that changes
/// its stamp when edited (a YAML file, a set of manifests).
public protocol ConfigSource: Sendable {
    /// For log lines: the file or folders read.
    var name: String { get }
    /// What identifies the current contents; nil when they cannot be read right now.
    func stamp() -> SourceStamp?
    /// Reads and validates the configuration. Throws an error whose description says what to fix.
    func load(version: Int) throws -> ConfigSnapshot
    /// How often the stamp is compared (files: every second; a source whose stamp is a counter in memory
    /// can be asked far more often).
    var pollInterval: Duration { get }
    /// The stamp of what a load that started at stamp `before` read: `before`, unless the load found more
    /// files to watch (certificates a configuration names), whose stamps it then adds.
    func stampAfterLoad(_ before: SourceStamp?) -> SourceStamp?
}

extension ConfigSource {
    public var pollInterval: Duration { .seconds(1) }
    public func stampAfterLoad(_ before: SourceStamp?) -> SourceStamp? { before }
}

/// What identifies one version of a source on disk.
public struct SourceStamp: Hashable, Sendable {
    let values: [String]
    public init(_ values: [String]) {
        self.values = values
    }
}

/// Ferry's YAML configuration file, and the certificate and key files the last version it loaded names: a
/// renewed certificate reloads the configuration as an edit of the file does.
public struct ConfigFileSource: ConfigSource {
    public let path: String
    /// The TLS files of the configuration loaded last, and their stamps when it was loaded.
    private let dependencies = NIOLockedValueBox<(files: [String], stamps: [String])>(([], []))

    public init(path: String) {
        self.path = path
    }

    public var name: String { path }

    /// Modification time, size and inode of the file and of the TLS files it names, to notice edits (also an
    /// atomic replace, or a Kubernetes volume's symbolic link swap).
    public func stamp() -> SourceStamp? {
        guard let own = Self.fileStamp(path) else { return nil }
        return SourceStamp(own + Self.stamps(dependencies.withLockedValue { $0.files }))
    }

    public func load(version: Int) throws -> ConfigSnapshot {
        let snapshot = try ConfigLoader.load(path: path, version: version)
        let files = snapshot.listeners.flatMap { $0.tls?.files ?? [] }
            + snapshot.clusters.flatMap { [$0.tls?.caFile, $0.tls?.clientCertificateFile, $0.tls?.clientKeyFile].compactMap { $0 } }
        // Taken after the files were checked and before the proxy reads them to serve (when the snapshot is
        // applied): a renewal after this point is noticed by the next comparison.
        dependencies.withLockedValue { $0 = (files, Self.stamps(files)) }
        return snapshot
    }

    /// The file's own part of `before` followed by the TLS files' stamps of the last load.
    public func stampAfterLoad(_ before: SourceStamp?) -> SourceStamp? {
        guard let before else { return nil }
        return SourceStamp(Array(before.values.prefix(Self.fileStampWidth)) + dependencies.withLockedValue { $0.stamps })
    }

    static func stamps(_ files: [String]) -> [String] {
        files.flatMap { fileStamp($0) ?? ["missing"] }
    }

    /// The values `fileStamp` gives a file: modification time (seconds, nanoseconds), size, inode.
    static let fileStampWidth = 4

    static func fileStamp(_ path: String) -> [String]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec), Int(info.st_size), Int(info.st_ino)].map(String.init)
    }
}

/// Another source with a change made to every snapshot it loads (`ferry sidecar --envoy-config` with
/// `--admin`: the probes' address, whatever the file says).
public struct AdjustedSource: ConfigSource {
    public let base: any ConfigSource
    public let adjust: @Sendable (inout ConfigSnapshot) -> Void

    public init(_ base: any ConfigSource, adjust: @escaping @Sendable (inout ConfigSnapshot) -> Void) {
        self.base = base
        self.adjust = adjust
    }

    public var name: String { base.name }
    public func stamp() -> SourceStamp? { base.stamp() }
    public var pollInterval: Duration { base.pollInterval }
    public func stampAfterLoad(_ before: SourceStamp?) -> SourceStamp? { base.stampAfterLoad(before) }
    public func load(version: Int) throws -> ConfigSnapshot {
        var snapshot = try base.load(version: version)
        adjust(&snapshot)
        return snapshot
    }
}
