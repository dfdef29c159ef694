import FerryKubernetes
import FerryModel

/// Kubernetes objects as a configuration source, for every role that reads them (the Ingress controller,
/// the userspace service proxy): manifest files on disk (re-read when one is edited, added or removed) or
/// the caches the API watches keep (re-read when a watch changes one). `build` turns the objects into the
/// role's configuration; the same function serves both, so a route reads the same whichever way it came.
public struct KubernetesObjectSource: ConfigSource {
    public enum Objects: Sendable {
        /// Manifest files or folders.
        case files([String])
        /// The API server's objects, as the watches keep them; `server` names it in messages.
        case cluster(KubernetesCaches, server: String)
    }

    public let objects: Objects
    let build: @Sendable (ManifestSet, Int) throws -> ConfigSnapshot

    public init(_ objects: Objects, build: @escaping @Sendable (ManifestSet, Int) throws -> ConfigSnapshot) {
        self.objects = objects
        self.build = build
    }

    public var name: String {
        switch objects {
        case .files(let paths): paths.joined(separator: " ")
        case .cluster(_, let server): "the Kubernetes API at \(server)"
        }
    }

    public func stamp() -> SourceStamp? {
        SourceStamp(objects.stamp())
    }

    public func load(version: Int) throws -> ConfigSnapshot {
        try build(try objects.read(), version)
    }

    /// Files: every second. The caches' generation is a counter in memory: every 100 ms, so that a change
    /// from the API routes within a fraction of a second (a burst of changes is one reload).
    public var pollInterval: Duration {
        if case .cluster = objects { return .milliseconds(100) }
        return .seconds(1)
    }
}

extension KubernetesObjectSource.Objects {
    /// What changes when the objects do: the files' stamp, or the caches' generation.
    public func stamp() -> [String] {
        switch self {
        case .files(let paths): ManifestLoader.stamp(paths: paths)
        case .cluster(let caches, _): ["api", String(caches.generation)]
        }
    }

    /// The objects now; throws `ManifestError` for files with problems.
    public func read() throws -> ManifestSet {
        switch self {
        case .files(let paths): try ManifestLoader.load(paths: paths)
        case .cluster(let caches, _): caches.manifestSet
        }
    }
}
