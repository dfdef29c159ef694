/// The objects of one kind as the API server last described them, kept by list + watch: a value, so the
/// watching side applies events to it and hands the translators a `ManifestSet` built from it (the same
/// translators the manifest files feed). Tracks the resourceVersion to watch from.
public struct InformerCache: Sendable {
    public enum Change: Sendable, Hashable {
        case added(String), updated(String), deleted(String)
    }

    /// `namespace/name` → the object.
    public private(set) var objects: [String: KubernetesObject] = [:]
    /// Where a watch resumes: the last list's, event's or bookmark's resourceVersion.
    public private(set) var resourceVersion: String?
    /// Whether a full list has been applied (until then, the kind's routes are not ready to serve).
    public private(set) var synced = false
    /// Objects Ferry cannot read, by key: the last readable version (if any) stays in `objects`.
    public private(set) var refused: [String: RefusedObject] = [:]

    public init() {}

    /// Applies one watch event; returns what changed (nil for a bookmark, an unchanged object or a kind
    /// Ferry does not read). An ERROR event is the caller's to handle (`410` means list again).
    @discardableResult
    public mutating func apply(_ event: WatchEvent) -> Change? {
        if let version = event.resourceVersion { resourceVersion = version }
        switch event.type {
        case .bookmark, .error:
            return nil
        case .added, .modified:
            if let problem = event.problem, let key = event.key {
                let entry = RefusedObject(key: key, kind: event.kind ?? "", problem: problem)
                guard refused.updateValue(entry, forKey: key) != entry else { return nil }
                return .updated(key)
            }
            guard let object = event.object else { return nil }
            let key = object.metadata.key
            let wasRefused = refused.removeValue(forKey: key) != nil
            let previous = objects.updateValue(object, forKey: key)
            guard let previous else { return .added(key) }
            if !wasRefused, let version = object.metadata.resourceVersion, version == previous.metadata.resourceVersion { return nil }
            return .updated(key)
        case .deleted:
            guard let key = event.object?.metadata.key ?? event.key else { return nil }
            let wasRefused = refused.removeValue(forKey: key) != nil
            guard objects.removeValue(forKey: key) != nil || wasRefused else { return nil }
            return .deleted(key)
        }
    }

    /// Replaces the whole cache with a complete list (after a start or a `410 Gone`); returns the difference
    /// to what was there, by key and resourceVersion, so that what did not change is not touched.
    public mutating func replace(with list: [KubernetesObject], resourceVersion: String, refused refusedNow: [RefusedObject] = []) -> [Change] {
        var next: [String: KubernetesObject] = [:]
        next.reserveCapacity(list.count)
        for object in list { next[object.metadata.key] = object }
        var changes: [Change] = []
        for (key, object) in next {
            if let old = objects[key] {
                if old.metadata.resourceVersion == nil || old.metadata.resourceVersion != object.metadata.resourceVersion { changes.append(.updated(key)) }
            } else {
                changes.append(.added(key))
            }
        }
        var nextRefused: [String: RefusedObject] = [:]
        for entry in refusedNow {
            nextRefused[entry.key] = entry
            // Refused now: its last readable version stays, as after a watch event.
            if next[entry.key] == nil, let old = objects[entry.key] { next[entry.key] = old }
            if refused[entry.key] != entry, !changes.contains(where: { $0.key == entry.key }) { changes.append(.updated(entry.key)) }
        }
        for key in objects.keys where next[key] == nil { changes.append(.deleted(key)) }
        for key in refused.keys where nextRefused[key] == nil && next[key] == nil && objects[key] == nil { changes.append(.deleted(key)) }
        objects = next
        refused = nextRefused
        self.resourceVersion = resourceVersion
        synced = true
        return changes.sorted { $0.key < $1.key }
    }

    /// The cached objects as a set the translators read, in key order (so translation is deterministic).
    public var manifestSet: ManifestSet {
        var set = ManifestSet()
        for key in objects.keys.sorted() { objects[key]!.add(to: &set) }
        return set
    }
}

extension InformerCache.Change {
    public var key: String {
        switch self {
        case .added(let k), .updated(let k), .deleted(let k): k
        }
    }
}
