import FerryModel
import Yams

/// One object of a kind Ferry reads, as the API server sent it (a list item or a watch event's object).
public enum KubernetesObject: Sendable {
    case ingress(Ingress)
    case ingressClass(IngressClass)
    case service(Service)
    case endpointSlice(EndpointSlice)
    case secret(Secret)
    case serviceCIDR(ServiceCIDR)
    case node(ClusterNode)
    case pod(Pod)

    public var metadata: ObjectMeta {
        switch self {
        case .ingress(let o): o.metadata
        case .ingressClass(let o): o.metadata
        case .service(let o): o.metadata
        case .endpointSlice(let o): o.metadata
        case .secret(let o): o.metadata
        case .serviceCIDR(let o): o.metadata
        case .node(let o): o.metadata
        case .pod(let o): o.metadata
        }
    }

    /// The object added to a set of objects, which the translators read.
    func add(to set: inout ManifestSet) {
        switch self {
        case .ingress(let o): set.ingresses.append(o)
        case .ingressClass(let o): set.ingressClasses.append(o)
        case .service(let o): set.services.append(o)
        case .endpointSlice(let o): set.endpointSlices.append(o)
        case .secret(let o): set.secrets.append(o)
        case .serviceCIDR(let o): set.serviceCIDRs.append(o)
        case .node(let o): set.nodes.append(o)
        case .pod(let o): set.pods.append(o)
        }
    }

    /// The one object a decoded document holds, if it is of a kind Ferry reads.
    static func single(in set: ManifestSet) -> KubernetesObject? {
        if let o = set.ingresses.first { return .ingress(o) }
        if let o = set.ingressClasses.first { return .ingressClass(o) }
        if let o = set.services.first { return .service(o) }
        if let o = set.endpointSlices.first { return .endpointSlice(o) }
        if let o = set.secrets.first { return .secret(o) }
        if let o = set.serviceCIDRs.first { return .serviceCIDR(o) }
        if let o = set.nodes.first { return .node(o) }
        if let o = set.pods.first { return .pod(o) }
        return nil
    }
}

/// A `metav1.Status` the API server sends instead of an object (an `ERROR` watch event, an error body).
public struct APIStatus: Sendable, Hashable, Error, CustomStringConvertible {
    public var code: Int
    public var reason: String
    public var message: String

    public init(code: Int, reason: String, message: String) {
        self.code = code
        self.reason = reason
        self.message = message
    }

    /// The resourceVersion asked for is older than the server keeps (`410 Gone`, reason `Expired`): list again.
    public var isGone: Bool { code == 410 }

    public var description: String { "\(code) \(reason): \(message)" }
}

/// One line of a watch stream (`{"type": ..., "object": {...}}`), decoded.
public struct WatchEvent: Sendable {
    public enum EventType: String, Sendable {
        case added = "ADDED", modified = "MODIFIED", deleted = "DELETED", bookmark = "BOOKMARK", error = "ERROR"
    }

    public var type: EventType
    /// The object, for ADDED, MODIFIED and DELETED of a kind Ferry reads.
    public var object: KubernetesObject?
    /// `namespace/name` of the object (also for kinds Ferry does not decode).
    public var key: String?
    /// The object's resourceVersion (for a BOOKMARK, the position to watch from).
    public var resourceVersion: String?
    /// For ERROR: what the server said.
    public var status: APIStatus?
    /// Why Ferry cannot read the object (then `object` is nil), and its kind.
    public var problem: String?
    public var kind: String?
}

public struct WatchDecodingError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Decodes watch events one line at a time, as they arrive: a watch of any length needs memory for one
/// event only.
public enum WatchEventDecoder {
    public static func decode(line: String) throws -> WatchEvent {
        let node: Node
        do {
            guard let composed = try Yams.compose(yaml: line) else { throw WatchDecodingError(description: "an empty watch event") }
            node = composed
        } catch let error as WatchDecodingError {
            throw error
        } catch {
            throw WatchDecodingError(description: "a watch event is not JSON: \(error)")
        }
        let reporter = ManifestReporter(file: "watch", document: 1)
        let root = ManifestNode(node: node, path: "", reporter: reporter)
        guard let typeText = root["type"].string, let type = WatchEvent.EventType(rawValue: typeText) else {
            throw WatchDecodingError(description: "a watch event without a known type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR)")
        }
        let objectNode = root["object"]
        if type == .error {
            return WatchEvent(type: type, status: status(objectNode))
        }
        let meta = objectNode["metadata"]
        var event = WatchEvent(type: type, resourceVersion: meta["resourceVersion"].string)
        if type == .bookmark { return event }
        let namespace = meta["namespace"].string
        if let name = meta["name"].string { event.key = "\(namespace ?? "")/\(name)" }
        var set = ManifestSet()
        ManifestDecoder.decodeObject(objectNode, origin: ManifestOrigin(file: "watch", document: 1), into: &set)
        if !reporter.diagnostics.isEmpty {
            // One object the API server took but Ferry cannot read: refused alone, the watch goes on.
            event.problem = reporter.diagnostics.map(\.description).joined(separator: "; ")
            event.kind = objectNode["kind"].string
            return event
        }
        event.object = KubernetesObject.single(in: set)
        if let object = event.object { event.key = object.metadata.key }
        return event
    }

    /// A `metav1.Status` object.
    static func status(_ node: ManifestNode) -> APIStatus {
        APIStatus(code: node["code"].string.flatMap { Int($0) } ?? 0, reason: node["reason"].string ?? "", message: node["message"].string ?? "")
    }
}

/// Splits a watch response's bytes into lines (the API server writes one JSON event per line), bounded:
/// a line longer than `maxLineBytes` is an error rather than unbounded memory.
public struct WatchLineSplitter: Sendable {
    public let maxLineBytes: Int
    private var pending: [UInt8] = []

    public init(maxLineBytes: Int = 16 << 20) {
        self.maxLineBytes = maxLineBytes
    }

    /// The complete lines in what has arrived so far (without their newline; empty lines skipped).
    public mutating func lines<Bytes: Sequence>(in bytes: Bytes) throws -> [String] where Bytes.Element == UInt8 {
        var lines: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if !pending.isEmpty { lines.append(String(decoding: pending, as: UTF8.self)) }
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(byte)
                if pending.count > maxLineBytes {
                    throw WatchDecodingError(description: "a watch event longer than \(maxLineBytes) bytes")
                }
            }
        }
        return lines
    }
}

/// One page of a list response (`{"metadata": {"resourceVersion", "continue"}, "items": [...]}`).
public struct ListPage: Sendable {
    public var items: [KubernetesObject]
    public var resourceVersion: String
    /// The token for the next page; nil on the last one.
    public var continueToken: String?
    /// Items Ferry cannot read (left out of `items`).
    public var refused: [RefusedObject] = []
}

/// An object the API server holds that Ferry cannot read (a field it refuses), with what is wrong: left out
/// of the routing (its last readable version is kept), reported as a note and an Event.
public struct RefusedObject: Sendable, Hashable {
    /// `namespace/name`.
    public var key: String
    public var kind: String
    public var problem: String

    public init(key: String, kind: String, problem: String) {
        self.key = key
        self.kind = kind
        self.problem = problem
    }
}

extension WatchEventDecoder {
    /// Decodes one page of a list of `kind` objects. List items carry no `kind` or `apiVersion` of their own,
    /// so the caller says what they are.
    public static func decodeList(_ body: String, kind: String, apiVersion: String) throws -> ListPage {
        guard let node = try? Yams.compose(yaml: body), case .mapping(let root) = node else {
            throw WatchDecodingError(description: "a list response that is not a JSON object")
        }
        let reporter = ManifestReporter(file: "list", document: 1)
        let rootNode = ManifestNode(node: node, path: "", reporter: reporter)
        guard let resourceVersion = rootNode["metadata"]["resourceVersion"].string else {
            throw WatchDecodingError(description: "a list response without metadata.resourceVersion")
        }
        var set = ManifestSet()
        var items: [KubernetesObject] = []
        var refused: [RefusedObject] = []
        if let itemsNode = root["items"], case .sequence(let sequence) = itemsNode {
            for item in sequence {
                guard case .mapping(var mapping) = item else { continue }
                mapping["kind"] = Node(kind)
                mapping["apiVersion"] = Node(apiVersion)
                let itemReporter = ManifestReporter(file: "list", document: 1)
                set = ManifestSet()
                ManifestDecoder.decodeObject(ManifestNode(node: .mapping(mapping), path: "", reporter: itemReporter), origin: ManifestOrigin(file: "list", document: 1), into: &set)
                if !itemReporter.diagnostics.isEmpty {
                    let meta = ManifestNode(node: .mapping(mapping), path: "", reporter: itemReporter)["metadata"]
                    let key = "\(meta["namespace"].string ?? "")/\(meta["name"].string ?? "")"
                    refused.append(RefusedObject(key: key, kind: kind, problem: itemReporter.diagnostics.map(\.description).joined(separator: "; ")))
                    continue
                }
                if let object = KubernetesObject.single(in: set) { items.append(object) }
            }
        }
        let token = rootNode["metadata"]["continue"].string
        return ListPage(items: items, resourceVersion: resourceVersion, continueToken: token?.isEmpty == true ? nil : token, refused: refused)
    }
}
