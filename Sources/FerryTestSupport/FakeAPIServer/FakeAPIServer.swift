import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// A Kubernetes API server for tests, speaking the real protocol shapes: TLS with a test certificate,
/// authentication by bearer token, by basic credentials `admin:secret`, or by a client certificate signed by
/// `clientCA` (401 with a `Status`
/// otherwise), discovery (`/version`, `/api`, `/api/v1`, `/apis`), `/api/v1/nodes`, namespaced pods (list
/// with a resourceVersion, get, and `?watch=true[&resourceVersion=N]` as a chunked stream of
/// `{"type":..., "object":...}` lines, after N when given, that the test feeds with `addPod`/`deletePod`), `pods/log` (`?follow=true` streams what `appendLog`
/// adds), and the `pods/exec` upgrade, over WebSocket (`v5.channel.k8s.io`; frames are echoed) or SPDY/3.1
/// (bytes are echoed).
public final class FakeAPIServer: Sendable {
    public let channel: Channel
    /// The same server on a Unix socket, when asked for (a network namespace reaches it through a relay).
    public let unixChannel: Channel?
    public let token: String
    let state: NIOLockedValueBox<State>

    struct Pod: Sendable {
        var namespace: String
        var name: String
        var phase: String
        var resourceVersion: Int

        /// The Pod as the API server returns it.
        var object: [String: Any] {
            [
                "kind": "Pod", "apiVersion": "v1",
                "metadata": ["name": name, "namespace": namespace, "uid": "uid-\(namespace)-\(name)", "resourceVersion": String(resourceVersion), "creationTimestamp": "2026-11-30T00:00:00Z"],
                "spec": ["containers": [["name": "app", "image": "registry.example/app:1"]], "nodeName": "node-1"],
                "status": ["phase": phase, "podIP": "10.244.1.7"],
            ]
        }
    }

    struct State: Sendable {
        var resourceVersion = 100
        var pods: [String: Pod] = [:]  // "ns/name"
        var watchers: [(namespace: String, send: @Sendable (String) -> Void)] = []
        var requests: [String] = []
        /// How each request authenticated: "token" or "certificate".
        var authentications: [String] = []
        var logs: [String: [String]] = [:]  // "ns/name"
        var logFollowers: [(pod: String, send: @Sendable (String) -> Void)] = []
        // Stored resources (see FakeAPIServer+Resources.swift): collection → "ns/name" → object.
        var stored: [String: [String: StoredObject]] = [:]
        var servedCollections: Set<String> = []
        var history: [HistoryEntry] = []
        var resourceWatchers: [Watcher] = []
        var compactedBelow = 0
        var faults: [Fault] = []
        var writeFaults: [Fault] = []
        var faultsServed = 0
        var rbac: (grants: [Grant], user: String)?
        var usedPermissions: Set<String> = []
        var refused: [Attributes] = []
    }

    /// Serves these collections (lists and watches) even while they hold no object.
    public func serve(_ collections: [String]) {
        state.withLockedValue { $0.servedCollections.formUnion(collections) }
    }

    public var port: Int { channel.localAddress!.port! }
    /// `METHOD path` of every request seen, in order.
    public var requests: [String] { state.withLockedValue { $0.requests } }
    /// How each authenticated request proved who it is ("token", "basic" or "certificate"), in order.
    public var authentications: [String] { state.withLockedValue { $0.authentications } }

    /// Serves on 127.0.0.1 port 0 with the PEM certificate and key at the given paths; with `clientCA`, a
    /// client certificate signed by it also authenticates.
    public init(group: EventLoopGroup, certificate: String, key: String, token: String, clientCA: String? = nil, unixSocketPath: String? = nil) throws {
        self.token = token
        let state = NIOLockedValueBox(State())
        self.state = state
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        tls.applicationProtocols = ["http/1.1"]
        if let clientCA {
            tls.certificateVerification = .optionalVerification
            tls.trustRoots = .file(clientCA)
        }
        let context = try NIOSSLContext(configuration: tls)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    shouldUpgrade: { channel, head in
                        // Only an authenticated exec, with the channel protocol kubectl asks for.
                        let authenticated = FakeAPIHandler.authentication(head, token: token, channel: channel) != nil
                        let isExec = head.uri.split(separator: "?").first.map { $0.hasSuffix("/exec") } ?? false
                        guard authenticated, isExec else { return channel.eventLoop.makeSucceededFuture(nil) }
                        var headers = HTTPHeaders()
                        if let asked = head.headers.first(name: "sec-websocket-protocol"), asked.contains("v5.channel.k8s.io") {
                            headers.add(name: "sec-websocket-protocol", value: "v5.channel.k8s.io")
                        }
                        state.withLockedValue { $0.requests.append("\(head.method.rawValue) \(head.uri) (upgraded)") }
                        return channel.eventLoop.makeSucceededFuture(headers)
                    },
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            let sync = channel.pipeline.syncOperations
                            sync.removeHandler(context: try sync.context(handlerType: FakeAPIHandler.self), promise: nil)
                            try sync.addHandler(WebSocketEchoHandler())
                        }
                    })
                let spdy = SPDYExecUpgrader(token: token, state: state)
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: context))
                    try sync.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader, spdy], completionHandler: { _ in }), withErrorHandling: true)
                    try sync.addHandler(FakeAPIHandler(token: token, state: state))
                }
            }
        channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        unixChannel = try unixSocketPath.map { try bootstrap.bind(unixDomainSocketPath: $0, cleanupExistingSocketFile: true).wait() }
    }

    public func close() {
        channel.close(promise: nil)
        unixChannel?.close(promise: nil)
    }

    /// Adds (or replaces) a pod and tells the watchers of its namespace.
    public func addPod(namespace: String, name: String, phase: String = "Running") {
        let (event, watchers) = state.withLockedValue { s -> (String, [@Sendable (String) -> Void]) in
            s.resourceVersion += 1
            let existed = s.pods["\(namespace)/\(name)"] != nil
            let pod = Pod(namespace: namespace, name: name, phase: phase, resourceVersion: s.resourceVersion)
            s.pods["\(namespace)/\(name)"] = pod
            let line = FakeAPIServer.json(["type": existed ? "MODIFIED" : "ADDED", "object": pod.object]) + "\n"
            return (line, s.watchers.filter { $0.namespace == namespace }.map(\.send))
        }
        for send in watchers { send(event) }
    }

    public func deletePod(namespace: String, name: String) {
        let (event, watchers) = state.withLockedValue { s -> (String?, [@Sendable (String) -> Void]) in
            guard var pod = s.pods.removeValue(forKey: "\(namespace)/\(name)") else { return (nil, []) }
            s.resourceVersion += 1
            pod.resourceVersion = s.resourceVersion
            return (FakeAPIServer.json(["type": "DELETED", "object": pod.object]) + "\n", s.watchers.filter { $0.namespace == namespace }.map(\.send))
        }
        guard let event else { return }
        for send in watchers { send(event) }
    }

    /// Adds a line to a pod's log and sends it to the clients following that log.
    public func appendLog(namespace: String, name: String, line: String) {
        let key = "\(namespace)/\(name)"
        let followers = state.withLockedValue { s -> [@Sendable (String) -> Void] in
            s.logs[key, default: []].append(line)
            return s.logFollowers.filter { $0.pod == key }.map(\.send)
        }
        for send in followers { send(line + "\n") }
    }

    struct NotUpgraded: Error {}

    static func json(_ object: Any) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// The SPDY/3.1 upgrade kubectl uses for exec when it does not speak WebSocket: the 101 carries
/// `X-Stream-Protocol-Version: v4.channel.k8s.io`; after it the fake echoes raw bytes (it does not frame SPDY).
final class SPDYExecUpgrader: HTTPServerProtocolUpgrader, Sendable {
    let supportedProtocol = "SPDY/3.1"
    let requiredUpgradeHeaders: [String] = []
    let token: String
    let state: NIOLockedValueBox<FakeAPIServer.State>

    init(token: String, state: NIOLockedValueBox<FakeAPIServer.State>) {
        self.token = token
        self.state = state
    }

    func buildUpgradeResponse(channel: Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        let isExec = upgradeRequest.uri.split(separator: "?").first.map { $0.hasSuffix("/exec") } ?? false
        guard isExec, FakeAPIHandler.authentication(upgradeRequest, token: token, channel: channel) != nil else {
            return channel.eventLoop.makeFailedFuture(FakeAPIServer.NotUpgraded())
        }
        state.withLockedValue { $0.requests.append("\(upgradeRequest.method.rawValue) \(upgradeRequest.uri) (upgraded to SPDY)") }
        var headers = initialResponseHeaders
        headers.add(name: "x-stream-protocol-version", value: "v4.channel.k8s.io")
        return channel.eventLoop.makeSucceededFuture(headers)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        context.eventLoop.makeCompletedFuture {
            let sync = context.pipeline.syncOperations
            sync.removeHandler(context: try sync.context(handlerType: FakeAPIHandler.self), promise: nil)
            try sync.addHandler(RawEchoHandler())
        }
    }
}

/// Echoes every byte it reads.
final class RawEchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// One connection of the fake server; watcher callbacks from other threads hop onto its event loop.
final class FakeAPIHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let token: String
    let state: NIOLockedValueBox<FakeAPIServer.State>
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(token: String, state: NIOLockedValueBox<FakeAPIServer.State>) {
        self.token = token
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body.clear()
        case .body(var part): body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            self.head = nil
            respond(head, context: context)
        }
    }

    private func respond(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let pathAndQuery = head.uri.split(separator: "?", maxSplits: 1)
        let path = String(pathAndQuery.first ?? "")
        let query = pathAndQuery.count > 1 ? String(pathAndQuery[1]) : ""
        state.withLockedValue { $0.requests.append("\(head.method.rawValue) \(head.uri)") }
        guard let how = FakeAPIHandler.authentication(head, token: token, channel: context.channel) else {
            send(.unauthorized, status("Unauthorized", reason: "Unauthorized", code: 401), context: context)
            return
        }
        state.withLockedValue { $0.authentications.append(how) }
        let parts = path.split(separator: "/").map(String.init)
        // RBAC binds the bearer token (the ServiceAccount's); basic credentials (admin) are the cluster admin.
        let decision = how == "token" ? FakeAPIServer.authorize(state, method: head.method, parts: parts, query: FakeAPIHandler.queryItems(query)) : (allowed: true, message: "")
        guard decision.allowed else {
            send(.forbidden, status(decision.message, reason: "Forbidden", code: 403), context: context)
            return
        }
        if head.method != .GET {
            write(head.method, parts: parts, query: FakeAPIHandler.queryItems(query), contentType: head.headers.first(name: "content-type") ?? "", body: String(buffer: body), context: context)
            return
        }
        if parts == ["version"] {
            send(.ok, FakeAPIServer.json(["major": "1", "minor": "31", "gitVersion": "v1.31.0", "platform": "linux/amd64"]), context: context)
        } else if parts == ["api"] {
            send(.ok, FakeAPIServer.json(["kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"]]]), context: context)
        } else if parts == ["api", "v1"] {
            func resource(_ name: String, _ kind: String, namespaced: Bool, verbs: [String]) -> [String: Any] {
                ["name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs]
            }
            let resources = [
                resource("namespaces", "Namespace", namespaced: false, verbs: ["get", "list", "watch"]),
                resource("nodes", "Node", namespaced: false, verbs: ["get", "list", "watch"]),
                resource("pods", "Pod", namespaced: true, verbs: ["get", "list", "watch"]),
                resource("pods/exec", "PodExecOptions", namespaced: true, verbs: ["create", "get"]),
                resource("pods/log", "Pod", namespaced: true, verbs: ["get"]),
            ] + FakeAPIServer.discoveryResources(groupVersion: "v1")
            send(.ok, FakeAPIServer.json(["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": resources]), context: context)
        } else if parts == ["apis", "apps", "v1"] {
            let deployments: [String: Any] = ["name": "deployments", "singularName": "", "namespaced": true, "kind": "Deployment", "verbs": ["get", "list", "watch"]]
            send(.ok, FakeAPIServer.json(["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [deployments]]), context: context)
        } else if parts.count == 3, parts[0] == "apis", !FakeAPIServer.discoveryResources(groupVersion: "\(parts[1])/\(parts[2])").isEmpty {
            let groupVersion = "\(parts[1])/\(parts[2])"
            send(.ok, FakeAPIServer.json(["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": groupVersion, "resources": FakeAPIServer.discoveryResources(groupVersion: groupVersion)]), context: context)
        } else if parts == ["apis"] {
            let groups = [["name": "apps", "versions": [["groupVersion": "apps/v1", "version": "v1"]], "preferredVersion": ["groupVersion": "apps/v1", "version": "v1"]]] + FakeAPIServer.discoveryGroups
            send(.ok, FakeAPIServer.json(["kind": "APIGroupList", "apiVersion": "v1", "groups": groups]), context: context)
        } else if parts == ["api", "v1", "nodes"], state.withLockedValue({ $0.stored["v1/nodes"] == nil && !$0.servedCollections.contains("v1/nodes") }) {
            let node: [String: Any] = ["kind": "Node", "apiVersion": "v1", "metadata": ["name": "node-1", "uid": "uid-node-1", "resourceVersion": "7"], "status": ["conditions": [["type": "Ready", "status": "True"]]]]
            send(.ok, FakeAPIServer.json(["kind": "NodeList", "apiVersion": "v1", "metadata": ["resourceVersion": "7"], "items": [node]]), context: context)
        } else if parts.count == 5, parts[0...2] == ["api", "v1", "namespaces"], parts[4] == "pods" {
            let ns = parts[3]
            let flags = query.split(separator: "&")
            if flags.contains("watch=true") || flags.contains("watch=1") {
                // As the API server: from a resourceVersion, only what changed after it; without one, the
                // current pods first as ADDED.
                let since = flags.first { $0.hasPrefix("resourceVersion=") }.flatMap { Int($0.dropFirst("resourceVersion=".count)) } ?? 0
                watch(namespace: ns, since: since, context: context)
            } else {
                let (items, rv) = state.withLockedValue { s in (s.pods.filter { $0.key.hasPrefix("\(ns)/") }.sorted { $0.key < $1.key }.map(\.value.object), s.resourceVersion) }
                send(.ok, FakeAPIServer.json(["kind": "PodList", "apiVersion": "v1", "metadata": ["resourceVersion": String(rv)], "items": items]), context: context)
            }
        } else if parts.count == 7, parts[0...2] == ["api", "v1", "namespaces"], parts[4] == "pods", parts[6] == "log" {
            log(pod: "\(parts[3])/\(parts[5])", follow: query.split(separator: "&").contains("follow=true"), context: context)
        } else if parts.count == 6, parts[0...2] == ["api", "v1", "namespaces"], parts[4] == "pods" {
            let (ns, name) = (parts[3], parts[5])
            if let pod = state.withLockedValue({ $0.pods["\(ns)/\(name)"] }) {
                send(.ok, FakeAPIServer.json(pod.object), context: context)
            } else {
                send(.notFound, status("pods \"\(name)\" not found", reason: "NotFound", code: 404, details: ["name": name, "kind": "pods"]), context: context)
            }
        } else if let object = FakeAPIHandler.objectPath(parts), serveObject(object, context: context) {
            return
        } else if let (collection, namespace) = FakeAPIHandler.resourcePath(parts),
                  serveResource(collection: collection, namespace: namespace, query: FakeAPIHandler.queryItems(query), context: context) {
            return
        } else {
            send(.notFound, status("the server could not find the requested resource", reason: "NotFound", code: 404), context: context)
        }
    }

    /// `a=1&b=x%2Cy` → ["a": "1", "b": "x,y"].
    static func queryItems(_ query: String) -> [String: String] {
        var items: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            let key = String(kv[0]).removingPercentEncoding ?? String(kv[0])
            let value = kv.count > 1 ? (String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(kv[1])) : ""
            items[key] = value
        }
        return items
    }

    /// A chunked stream: the existing pods newer than `since` as ADDED, then every change as it happens.
    private func watch(namespace: String, since: Int, context: ChannelHandlerContext) {
        let send = startStream(contentType: "application/json", context: context)
        let initial: [String] = state.withLockedValue { s in
            s.watchers.append((namespace, send))
            return s.pods.filter { $0.key.hasPrefix("\(namespace)/") && $0.value.resourceVersion > since }.sorted { $0.key < $1.key }.map { FakeAPIServer.json(["type": "ADDED", "object": $0.value.object]) + "\n" }
        }
        for line in initial { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: line)))), promise: nil) }
        context.flush()
    }

    /// Writes the head of a chunked response and returns what sends one more chunk from any thread.
    func startStream(contentType: String, context: ChannelHandlerContext) -> @Sendable (String) -> Void {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "transfer-encoding", value: "chunked")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        let loop = context.eventLoop
        let bound = NIOLoopBound(context, eventLoop: loop)
        return { text in
            loop.execute {
                let ctx = bound.value
                guard ctx.channel.isActive else { return }
                ctx.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            }
        }
    }

    /// How the request authenticated ("token", "basic" or "certificate"), or nil.
    static func authentication(_ head: HTTPRequestHead, token: String, channel: Channel) -> String? {
        if head.headers.first(name: "authorization") == "Bearer \(token)" { return "token" }
        // Basic credentials admin:secret (a kubeconfig's username and password).
        if head.headers.first(name: "authorization") == "Basic YWRtaW46c2VjcmV0" { return "basic" }
        if let tls = try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self), tls.peerCertificate != nil { return "certificate" }
        return nil
    }

    /// The pod's log as text; with `follow`, a chunked stream that stays open for the lines added later.
    private func log(pod: String, follow: Bool, context: ChannelHandlerContext) {
        let send = startStream(contentType: "text/plain", context: context)
        let existing: [String] = state.withLockedValue { s in
            if follow { s.logFollowers.append((pod, send)) }
            return s.logs[pod] ?? []
        }
        for line in existing { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: line + "\n")))), promise: nil) }
        if follow {
            context.flush()
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    func statusBody(_ message: String, reason: String, code: Int) -> String {
        status(message, reason: reason, code: code)
    }

    func status(_ message: String, reason: String, code: Int, details: [String: Any]? = nil) -> String {
        var object: [String: Any] = ["kind": "Status", "apiVersion": "v1", "metadata": [String: Any](), "status": "Failure", "message": message, "reason": reason, "code": code]
        if let details { object["details"] = details }
        return FakeAPIServer.json(object)
    }

    func send(_ status: HTTPResponseStatus, _ body: String, extraHeaders: [(String, String)] = [], context: ChannelHandlerContext) {
        var headers = HTTPHeaders(extraHeaders)
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.utf8.count))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
