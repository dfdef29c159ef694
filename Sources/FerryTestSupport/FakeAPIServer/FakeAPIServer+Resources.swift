import Foundation
import NIOCore
import NIOHTTP1

/// The resources list + watch clients read (Services, EndpointSlices, Ingresses, IngressClasses, Secrets,
/// ServiceCIDRs, or any other collection a test stores), served as the API server does: lists in pages
/// (`limit`, `continue`), watches from a `resourceVersion` (the changes after it, replayed from history),
/// `allowWatchBookmarks`, `timeoutSeconds`, a compaction after which older resourceVersions get `410 Gone`,
/// and injected faults (dropped watches, `429`/`5xx` with `Retry-After`).
extension FakeAPIServer {
    struct StoredObject: Sendable {
        var namespace: String
        var name: String
        var resourceVersion: Int
        var labels: [String: String]
        /// The object as JSON, with its metadata.resourceVersion.
        var json: String
    }

    struct HistoryEntry: Sendable {
        var resourceVersion: Int
        var collection: String
        var namespace: String
        var name = ""
        var labels: [String: String]
        /// The watch event line.
        var line: String
    }

    struct Watcher: Sendable {
        var collection: String
        var namespace: String?
        var selector: LabelSelector
        /// `fieldSelector=metadata.name=NAME`.
        var name: String?
        var bookmarks: Bool
        var send: @Sendable (String) -> Void
        var drop: @Sendable () -> Void
    }

    struct Fault: Sendable {
        var status: Int
        var retryAfter: Int?
        var pathSuffix = ""
    }

    /// How many injected faults have been answered.
    public var faultsServed: Int { state.withLockedValue { $0.faultsServed } }

    /// Stores `object` (its metadata gets the name, namespace and a new resourceVersion) in `collection`
    /// (`v1/services`, `discovery.k8s.io/v1/endpointslices`, `networking.k8s.io/v1/ingresses`...) and tells
    /// the watchers. Returns the resourceVersion.
    @discardableResult
    public func put(_ collection: String, namespace: String?, name: String, object: [String: Any]) -> Int {
        let (line, rv, watchers) = state.withLockedValue { s in FakeAPIServer.commit(&s, collection, namespace: namespace, name: name, object: object) }
        for watcher in watchers { watcher.send(line) }
        return rv
    }

    /// Stores `object` under a new resourceVersion (metadata completed as the API server does), records the
    /// watch event and returns it with the watchers to tell (outside the lock).
    static func commit(_ s: inout State, _ collection: String, namespace: String?, name: String, object: [String: Any]) -> (line: String, resourceVersion: Int, watchers: [Watcher]) {
        var object = object
        var metadata = object["metadata"] as? [String: Any] ?? [:]
        metadata["name"] = name
        if let namespace { metadata["namespace"] = namespace }
        let labels = metadata["labels"] as? [String: String] ?? [:]
        s.resourceVersion += 1
        metadata["resourceVersion"] = String(s.resourceVersion)
        let key = "\(namespace ?? "")/\(name)"
        let existing = s.stored[collection]?[key]
        if metadata["uid"] == nil { metadata["uid"] = existing.flatMap { FakeAPIServer.decode($0.json)?["metadata"] as? [String: Any] }?["uid"] ?? "uid-\(s.resourceVersion)" }
        if metadata["creationTimestamp"] == nil { metadata["creationTimestamp"] = "2026-12-01T00:00:00Z" }
        object["metadata"] = metadata
        let json = FakeAPIServer.json(object)
        s.stored[collection, default: [:]][key] = StoredObject(namespace: namespace ?? "", name: name, resourceVersion: s.resourceVersion, labels: labels, json: json)
        let line = "{\"type\":\"\(existing != nil ? "MODIFIED" : "ADDED")\",\"object\":\(json)}\n"
        s.history.append(HistoryEntry(resourceVersion: s.resourceVersion, collection: collection, namespace: namespace ?? "", name: name, labels: labels, line: line))
        let watchers = s.resourceWatchers.filter { $0.collection == collection && ($0.namespace == nil || $0.namespace == namespace) && ($0.name == nil || $0.name == name) && $0.selector.matches(labels) }
        return (line, s.resourceVersion, watchers)
    }

    /// The stored object, as JSON values (nil when there is none).
    public func object(_ collection: String, namespace: String?, name: String) -> [String: Any]? {
        state.withLockedValue { $0.stored[collection]?["\(namespace ?? "")/\(name)"] }.flatMap { FakeAPIServer.decode($0.json) }
    }

    /// Every stored object of a collection, in namespace/name order.
    public func objects(_ collection: String) -> [[String: Any]] {
        state.withLockedValue { s in (s.stored[collection] ?? [:]).sorted { $0.key < $1.key }.map(\.value.json) }.compactMap { FakeAPIServer.decode($0) }
    }

    static func decode(_ json: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
    }

    /// Deletes an object and tells the watchers (DELETED with its last state).
    public func remove(_ collection: String, namespace: String?, name: String) {
        let (line, watchers) = state.withLockedValue { s in FakeAPIServer.delete(&s, collection, namespace: namespace, name: name) }
        guard let line else { return }
        for watcher in watchers { watcher.send(line) }
    }

    /// Deletes a stored object, recording the DELETED event; returns it with the watchers to tell.
    static func delete(_ s: inout State, _ collection: String, namespace: String?, name: String) -> (line: String?, watchers: [Watcher]) {
        let key = "\(namespace ?? "")/\(name)"
        guard let stored = s.stored[collection]?.removeValue(forKey: key) else { return (nil, []) }
        s.resourceVersion += 1
        let json = stored.json.replacingOccurrences(of: "\"resourceVersion\":\"\(stored.resourceVersion)\"", with: "\"resourceVersion\":\"\(s.resourceVersion)\"")
        let line = "{\"type\":\"DELETED\",\"object\":\(json)}\n"
        s.history.append(HistoryEntry(resourceVersion: s.resourceVersion, collection: collection, namespace: stored.namespace, name: name, labels: stored.labels, line: line))
        return (line, s.resourceWatchers.filter { $0.collection == collection && ($0.namespace == nil || $0.namespace == stored.namespace) && ($0.name == nil || $0.name == name) && $0.selector.matches(stored.labels) })
    }

    /// Forgets the history up to now, as etcd's compaction does: a watch or a list continuation from an
    /// older resourceVersion gets `410 Gone`.
    public func compact() {
        state.withLockedValue { s in
            s.compactedBelow = s.resourceVersion
            s.history.removeAll()
        }
    }

    /// Closes every open watch connection (an API server restart, a load balancer timeout).
    public func dropWatches() {
        let watchers = state.withLockedValue { s -> [Watcher] in
            defer { s.resourceWatchers.removeAll() }
            return s.resourceWatchers
        }
        for watcher in watchers { watcher.drop() }
    }

    /// How many resource watches are open now (a test waits for a watch before dropping it).
    public var openWatches: Int { state.withLockedValue { $0.resourceWatchers.count } }

    /// Sends a BOOKMARK with the current resourceVersion to every watch that allows them.
    public func sendBookmarks() {
        let (rv, watchers) = state.withLockedValue { s in (s.resourceVersion, s.resourceWatchers.filter(\.bookmarks)) }
        for watcher in watchers {
            watcher.send("{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Bookmark\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"\(rv)\"}}}\n")
        }
    }

    /// The next `count` list or watch requests are answered with `status` (and `Retry-After` when given).
    public func failNext(_ count: Int, status: Int, retryAfter: Int? = nil) {
        state.withLockedValue { s in s.faults += Array(repeating: Fault(status: status, retryAfter: retryAfter), count: count) }
    }

    /// How many watch requests of `collection` have been made.
    public func watchRequests(_ collection: String) -> Int {
        let suffix = "/" + (collection.split(separator: "/").last.map(String.init) ?? collection)
        return requests.filter { $0.contains("watch=") && $0.split(separator: "?").first.map { $0.hasSuffix(suffix) } == true }.count
    }
}

/// `a=b,!c`: the equality and does-not-exist terms a service proxy and a controller use.
struct LabelSelector: Sendable {
    var terms: [(key: String, value: String?, negated: Bool)] = []

    init(_ text: String) {
        for term in text.split(separator: ",") {
            if term.hasPrefix("!") {
                terms.append((String(term.dropFirst()), nil, true))
            } else if let eq = term.firstIndex(of: "=") {
                let value = term[term.index(after: eq)...].trimmingCharacters(in: CharacterSet(charactersIn: "="))
                terms.append((String(term[..<eq]).trimmingCharacters(in: CharacterSet(charactersIn: "!")), value, term[..<eq].hasSuffix("!")))
            } else {
                terms.append((String(term), nil, false))
            }
        }
    }

    func matches(_ labels: [String: String]) -> Bool {
        terms.allSatisfy { term in
            switch (term.value, term.negated) {
            case (nil, true): labels[term.key] == nil
            case (nil, false): labels[term.key] != nil
            case (let value?, false): labels[term.key] == value
            case (let value?, true): labels[term.key] != value
            }
        }
    }
}

extension FakeAPIHandler {
    /// `/api/v1/[namespaces/NS/]RES` or `/apis/GROUP/VERSION/[namespaces/NS/]RES` → (collection, namespace).
    static func resourcePath(_ parts: [String]) -> (collection: String, namespace: String?)? {
        var rest: ArraySlice<String>
        var groupVersion: String
        if parts.count >= 3, parts[0] == "api" {
            groupVersion = parts[1]
            rest = parts[2...]
        } else if parts.count >= 4, parts[0] == "apis" {
            groupVersion = "\(parts[1])/\(parts[2])"
            rest = parts[3...]
        } else {
            return nil
        }
        var namespace: String?
        if rest.count == 3, rest.first == "namespaces" {
            namespace = rest[rest.startIndex + 1]
            rest = rest.suffix(1)
        }
        guard rest.count == 1 else { return nil }
        return ("\(groupVersion)/\(rest.first!)", namespace)
    }

    /// A list (paged) or a watch of a stored collection; false when the server stores nothing of it.
    func serveResource(collection: String, namespace: String?, query: [String: String], context: ChannelHandlerContext) -> Bool {
        let known = state.withLockedValue { $0.stored[collection] != nil || $0.servedCollections.contains(collection) }
        guard known else { return false }
        if let fault = state.withLockedValue({ s -> FakeAPIServer.Fault? in s.faults.isEmpty ? nil : s.faults.removeFirst() }) {
            state.withLockedValue { $0.faultsServed += 1 }
            var extra: [(String, String)] = []
            if let after = fault.retryAfter { extra.append(("retry-after", String(after))) }
            send(HTTPResponseStatus(statusCode: fault.status), statusBody("injected fault", reason: fault.status == 429 ? "TooManyRequests" : "InternalError", code: fault.status), extraHeaders: extra, context: context)
            return true
        }
        let selector = LabelSelector(query["labelSelector"] ?? "")
        let name = query["fieldSelector"].flatMap { $0.hasPrefix("metadata.name=") ? String($0.dropFirst("metadata.name=".count)) : nil }
        if query["watch"] == "true" || query["watch"] == "1" {
            watchResource(collection: collection, namespace: namespace, name: name, selector: selector, query: query, context: context)
            return true
        }
        let limit = query["limit"].flatMap(Int.init) ?? 0
        let (page, rv, more, expired) = state.withLockedValue { s -> ([String], Int, String?, Bool) in
            var offset = 0
            var listRV = s.resourceVersion
            if let token = query["continue"], !token.isEmpty {
                let fields = token.split(separator: ":").compactMap { Int($0) }
                guard fields.count == 2 else { return ([], 0, nil, true) }
                if fields[0] < s.compactedBelow { return ([], 0, nil, true) }
                listRV = fields[0]
                offset = fields[1]
            }
            let all = (s.stored[collection] ?? [:]).values
                .filter { (namespace == nil || $0.namespace == namespace) && (name == nil || $0.name == name) && selector.matches($0.labels) }
                .sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
            let end = limit > 0 ? min(all.count, offset + limit) : all.count
            let items = offset < all.count ? all[offset..<end].map(\.json) : []
            return (items, listRV, end < all.count ? "\(listRV):\(end)" : nil, false)
        }
        if expired {
            send(.gone, statusBody("The provided continue parameter is too old to display a consistent list result.", reason: "Expired", code: 410), context: context)
            return true
        }
        var metadata = "\"resourceVersion\":\"\(rv)\""
        if let more { metadata += ",\"continue\":\"\(more)\"" }
        send(.ok, "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"metadata\":{\(metadata)},\"items\":[\(page.joined(separator: ","))]}", context: context)
        return true
    }

    private func watchResource(collection: String, namespace: String?, name: String?, selector: LabelSelector, query: [String: String], context: ChannelHandlerContext) {
        let since = query["resourceVersion"].flatMap(Int.init) ?? 0
        let send = startStream(contentType: "application/json", context: context)
        let channel = context.channel
        let watcher = FakeAPIServer.Watcher(collection: collection, namespace: namespace, selector: selector, name: name,
                                            bookmarks: query["allowWatchBookmarks"] == "true", send: send, drop: { channel.close(promise: nil) })
        let lines: [String]? = state.withLockedValue { s in
            if since > 0 && since < s.compactedBelow { return nil }
            s.resourceWatchers.append(watcher)
            if since == 0 {
                // Without a resourceVersion: the current objects as ADDED first.
                return (s.stored[collection] ?? [:]).values
                    .filter { (namespace == nil || $0.namespace == namespace) && (name == nil || $0.name == name) && selector.matches($0.labels) }
                    .sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
                    .map { "{\"type\":\"ADDED\",\"object\":\($0.json)}\n" }
            }
            return s.history.filter { $0.resourceVersion > since && $0.collection == collection && (namespace == nil || $0.namespace == namespace) && (name == nil || $0.name == name) && selector.matches($0.labels) }.map(\.line)
        }
        guard let lines else {
            let gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: \(since)\",\"reason\":\"Expired\",\"code\":410}}\n"
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: gone)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        for line in lines { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: line)))), promise: nil) }
        context.flush()
        if let seconds = query["timeoutSeconds"].flatMap(Int64.init), seconds > 0 {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .seconds(seconds)) {
                let ctx = bound.value
                guard ctx.channel.isActive else { return }
                ctx.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
            }
        }
    }
}
