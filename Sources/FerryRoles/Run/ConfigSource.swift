import FerryConfig
import FerryModel

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
}

extension ConfigSource {
    public var pollInterval: Duration { .seconds(1) }
}

/// What identifies one version of a source on disk.
public struct SourceStamp: Hashable, Sendable {
    let values: [String]
    public init(_ values: [String]) {
        self.values = values
    }
}

/// Ferry's YAML configuration file.
public struct ConfigFileSource: ConfigSource {
    public let path: String
    public init(path: String) {
        self.path = path
    }

    public var name: String { path }

    /// Modification time, size and inode of the file, to notice edits (also an atomic replace).
    public func stamp() -> SourceStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return SourceStamp([Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec), Int(info.st_size), Int(info.st_ino)].map(String.init))
    }

    public func load(version: Int) throws -> ConfigSnapshot {
        try ConfigLoader.load(path: path, version: version)
    }
}
