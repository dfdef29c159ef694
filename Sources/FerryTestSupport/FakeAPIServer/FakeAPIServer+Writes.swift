import Foundation
import NIOCore
import NIOHTTP1

/// The write side of the fake, as the API server behaves for the objects Ferry and kubectl write: create
/// (POST, `409 AlreadyExists`), get one object, replace (PUT, `409 Conflict` when the body's
/// resourceVersion is not the stored one), the `status` subresource (only `.status` is taken from the body;
/// a PUT of the object keeps the stored status), PATCH (JSON merge patch, strategic merge patch with
/// `$setElementOrder` lists merged by their key, and server-side apply taken as the whole object), and
/// DELETE. Leases and Events are stored like any other collection. Discovery lists these resources so
/// that kubectl finds them.
extension FakeAPIServer {
    /// A resource kubectl can discover: its group/version, plural name, kind, and whether it is namespaced.
    struct ResourceType {
        var groupVersion: String
        var plural: String
        var kind: String
        var namespaced: Bool
        var hasStatus: Bool
    }

    static let resourceTypes: [ResourceType] = [
        ResourceType(groupVersion: "v1", plural: "services", kind: "Service", namespaced: true, hasStatus: true),
        ResourceType(groupVersion: "v1", plural: "secrets", kind: "Secret", namespaced: true, hasStatus: false),
        ResourceType(groupVersion: "v1", plural: "events", kind: "Event", namespaced: true, hasStatus: false),
        ResourceType(groupVersion: "discovery.k8s.io/v1", plural: "endpointslices", kind: "EndpointSlice", namespaced: true, hasStatus: false),
        ResourceType(groupVersion: "networking.k8s.io/v1", plural: "ingresses", kind: "Ingress", namespaced: true, hasStatus: true),
        ResourceType(groupVersion: "networking.k8s.io/v1", plural: "ingressclasses", kind: "IngressClass", namespaced: false, hasStatus: false),
        ResourceType(groupVersion: "networking.k8s.io/v1", plural: "servicecidrs", kind: "ServiceCIDR", namespaced: false, hasStatus: true),
        ResourceType(groupVersion: "coordination.k8s.io/v1", plural: "leases", kind: "Lease", namespaced: true, hasStatus: false),
        ResourceType(groupVersion: "events.k8s.io/v1", plural: "events", kind: "Event", namespaced: true, hasStatus: false),
    ]

    /// The `resources` of an APIResourceList for a group/version.
    static func discoveryResources(groupVersion: String) -> [[String: Any]] {
        let verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        return resourceTypes.filter { $0.groupVersion == groupVersion }.flatMap { type -> [[String: Any]] in
            var entries: [[String: Any]] = [["name": type.plural, "singularName": type.kind.lowercased(), "namespaced": type.namespaced, "kind": type.kind, "verbs": verbs]]
            if type.hasStatus { entries.append(["name": type.plural + "/status", "singularName": "", "namespaced": type.namespaced, "kind": type.kind, "verbs": ["get", "patch", "update"]]) }
            return entries
        }
    }

    /// The API groups (besides `apps`) of an APIGroupList.
    static var discoveryGroups: [[String: Any]] {
        var seen: [String] = []
        for type in resourceTypes where type.groupVersion.contains("/") && !seen.contains(type.groupVersion) { seen.append(type.groupVersion) }
        return seen.map { gv in
            let group = String(gv.split(separator: "/")[0])
            let version = ["groupVersion": gv, "version": String(gv.split(separator: "/")[1])]
            return ["name": group, "versions": [version], "preferredVersion": version]
        }
    }

    static func resourceType(collection: String) -> ResourceType? {
        resourceTypes.first { "\($0.groupVersion)/\($0.plural)" == collection }
    }

    /// The next `count` writes (POST, PUT, PATCH, DELETE) to a path ending in `pathSuffix` (any, when
    /// empty) are answered with `status` and not applied.
    public func failNextWrites(_ count: Int, status: Int, pathSuffix: String = "") {
        state.withLockedValue { s in s.writeFaults += Array(repeating: Fault(status: status, retryAfter: nil, pathSuffix: pathSuffix), count: count) }
    }
}

/// One object's address: `…/[namespaces/NS/]RES/NAME[/SUBRESOURCE]`.
struct ObjectAddress {
    var collection: String
    var namespace: String?
    var name: String
    var subresource: String?
    var key: String { "\(namespace ?? "")/\(name)" }
}

extension FakeAPIHandler {
    static func objectPath(_ parts: [String]) -> ObjectAddress? {
        for trailing in [1, 2] where parts.count > trailing {
            let head = Array(parts.dropLast(trailing))
            guard let (collection, namespace) = resourcePath(head), FakeAPIServer.resourceType(collection: collection) != nil else { continue }
            let name = parts[head.count]
            return ObjectAddress(collection: collection, namespace: namespace, name: name, subresource: trailing == 2 ? parts.last : nil)
        }
        return nil
    }

    /// GET of one stored object; false when the collection is not one the fake stores.
    func serveObject(_ address: ObjectAddress, context: ChannelHandlerContext) -> Bool {
        let (known, stored) = state.withLockedValue { s in (s.stored[address.collection] != nil || s.servedCollections.contains(address.collection), s.stored[address.collection]?[address.key]) }
        guard known || FakeAPIServer.resourceType(collection: address.collection) != nil else { return false }
        if let stored {
            send(.ok, stored.json, context: context)
        } else {
            send(.notFound, notFound(address), context: context)
        }
        return true
    }

    private func notFound(_ address: ObjectAddress) -> String {
        let plural = address.collection.split(separator: "/").last.map(String.init) ?? address.collection
        return status("\(plural) \"\(address.name)\" not found", reason: "NotFound", code: 404, details: ["name": address.name, "kind": plural])
    }

    /// POST to a collection; PUT, PATCH or DELETE of an object.
    func write(_ method: HTTPMethod, parts: [String], query: [String: String], contentType: String, body: String, context: ChannelHandlerContext) {
        let path = "/" + parts.joined(separator: "/")
        if let fault = state.withLockedValue({ s -> FakeAPIServer.Fault? in
            guard let index = s.writeFaults.firstIndex(where: { path.hasSuffix($0.pathSuffix) }) else { return nil }
            return s.writeFaults.remove(at: index)
        }) {
            state.withLockedValue { $0.faultsServed += 1 }
            let reason = fault.status == 409 ? "Conflict" : fault.status == 429 ? "TooManyRequests" : "InternalError"
            send(HTTPResponseStatus(statusCode: fault.status), status("injected fault", reason: reason, code: fault.status), context: context)
            return
        }
        let decoded = FakeAPIServer.decode(body)
        if method == .POST, let (collection, namespace) = FakeAPIHandler.resourcePath(parts), FakeAPIServer.resourceType(collection: collection) != nil {
            guard var object = decoded else { return badRequest("the body is not a JSON object", context: context) }
            var metadata = object["metadata"] as? [String: Any] ?? [:]
            if metadata["name"] == nil, let prefix = metadata["generateName"] as? String {
                metadata["name"] = prefix + String(UInt32.random(in: 0...UInt32.max), radix: 36)
            }
            guard let name = metadata["name"] as? String, !name.isEmpty else { return badRequest("metadata.name: Required value", context: context) }
            metadata["resourceVersion"] = nil
            object["metadata"] = metadata
            let address = ObjectAddress(collection: collection, namespace: namespace, name: name)
            let outcome = state.withLockedValue { s -> (created: Bool, line: String, watchers: [FakeAPIServer.Watcher], json: String) in
                guard s.stored[collection]?[address.key] == nil else { return (false, "", [], "") }
                let (line, _, watchers) = FakeAPIServer.commit(&s, collection, namespace: namespace, name: name, object: object)
                return (true, line, watchers, s.stored[collection]![address.key]!.json)
            }
            guard outcome.created else {
                let plural = collection.split(separator: "/").last.map(String.init) ?? collection
                send(.conflict, status("\(plural) \"\(name)\" already exists", reason: "AlreadyExists", code: 409, details: ["name": name, "kind": plural]), context: context)
                return
            }
            for watcher in outcome.watchers { watcher.send(outcome.line) }
            send(.created, outcome.json, context: context)
            return
        }
        guard let address = FakeAPIHandler.objectPath(parts), address.subresource == nil || address.subresource == "status" else {
            send(.notFound, status("the server could not find the requested resource", reason: "NotFound", code: 404), context: context)
            return
        }
        if method == .DELETE {
            let (line, watchers) = state.withLockedValue { s in FakeAPIServer.delete(&s, address.collection, namespace: address.namespace, name: address.name) }
            guard let line else { return send(.notFound, notFound(address), context: context) }
            for watcher in watchers { watcher.send(line) }
            send(.ok, FakeAPIServer.json(["kind": "Status", "apiVersion": "v1", "metadata": [String: Any](), "status": "Success", "details": ["name": address.name]]), context: context)
            return
        }
        guard let patchOrObject = decoded else { return badRequest("the body is not a JSON object", context: context) }
        let type = FakeAPIServer.resourceType(collection: address.collection)
        enum Outcome { case stored(String, String, [FakeAPIServer.Watcher]), notFound, conflict, unsupported }
        let outcome = state.withLockedValue { s -> Outcome in
            let current = s.stored[address.collection]?[address.key].flatMap { FakeAPIServer.decode($0.json) }
            var next: [String: Any]
            switch method {
            case .PUT:
                guard let current else { return .notFound }
                let asked = (patchOrObject["metadata"] as? [String: Any])?["resourceVersion"] as? String ?? ""
                let stored = (current["metadata"] as? [String: Any])?["resourceVersion"] as? String ?? ""
                if !asked.isEmpty && asked != stored { return .conflict }
                if address.subresource == "status" {
                    next = current
                    next["status"] = patchOrObject["status"]
                } else {
                    next = patchOrObject
                    if type?.hasStatus == true { next["status"] = current["status"] }
                }
            case .PATCH:
                if contentType.hasPrefix("application/apply-patch") {
                    next = FakeAPIServer.merge(current ?? [:], patchOrObject)
                } else if contentType.hasPrefix("application/merge-patch+json") || contentType.hasPrefix("application/strategic-merge-patch+json") {
                    guard let current else { return .notFound }
                    next = FakeAPIServer.merge(current, patchOrObject)
                } else {
                    return .unsupported
                }
                if address.subresource == "status", let current {
                    let status = next["status"]
                    next = current
                    next["status"] = status
                }
            default:
                return .unsupported
            }
            var metadata = next["metadata"] as? [String: Any] ?? [:]
            metadata["resourceVersion"] = nil
            if let current, let uid = (current["metadata"] as? [String: Any])?["uid"] { metadata["uid"] = uid }
            next["metadata"] = metadata
            let (line, _, watchers) = FakeAPIServer.commit(&s, address.collection, namespace: address.namespace, name: address.name, object: next)
            return .stored(s.stored[address.collection]![address.key]!.json, line, watchers)
        }
        switch outcome {
        case .stored(let json, let line, let watchers):
            for watcher in watchers { watcher.send(line) }
            send(.ok, json, context: context)
        case .notFound:
            send(.notFound, notFound(address), context: context)
        case .conflict:
            let plural = address.collection.split(separator: "/").last.map(String.init) ?? address.collection
            send(.conflict, status("Operation cannot be fulfilled on \(plural) \"\(address.name)\": the object has been modified; please apply your changes to the latest version and try again", reason: "Conflict", code: 409, details: ["name": address.name, "kind": plural]), context: context)
        case .unsupported:
            send(.unsupportedMediaType, status("the fake does not take \(method.rawValue) with \(contentType)", reason: "UnsupportedMediaType", code: 415), context: context)
        }
    }

    private func badRequest(_ message: String, context: ChannelHandlerContext) {
        send(.badRequest, status(message, reason: "BadRequest", code: 400), context: context)
    }
}

extension FakeAPIServer {
    /// `patch` applied to `target` as a JSON merge patch (RFC 7386: objects merge, `null` deletes, other
    /// values replace), with the strategic-merge directives kubectl sends for lists with a merge key:
    /// `$setElementOrder/FIELD` merges that list's elements by their key and orders them as listed; other
    /// `$` directives are skipped.
    static func merge(_ target: [String: Any], _ patch: [String: Any]) -> [String: Any] {
        var result = target
        for (key, value) in patch where !key.hasPrefix("$") {
            if value is NSNull {
                result[key] = nil
            } else if let object = value as? [String: Any], let existing = result[key] as? [String: Any] {
                result[key] = merge(existing, object)
            } else if let list = value as? [Any], let order = patch["$setElementOrder/\(key)"] as? [[String: Any]], let mergeKey = order.first?.keys.first {
                result[key] = mergeList(result[key] as? [Any] ?? [], list, key: mergeKey, order: order)
            } else {
                result[key] = value
            }
        }
        return result
    }

    private static func mergeList(_ target: [Any], _ patch: [Any], key: String, order: [[String: Any]]) -> [Any] {
        func id(_ element: Any) -> String { ((element as? [String: Any])?[key]).map { "\($0)" } ?? "" }
        var byID: [String: [String: Any]] = [:]
        for element in target { if let object = element as? [String: Any] { byID[id(object)] = object } }
        for element in patch {
            guard let object = element as? [String: Any] else { continue }
            byID[id(object)] = merge(byID[id(object)] ?? [:], object)
        }
        return order.compactMap { byID[id($0)] }
    }
}
