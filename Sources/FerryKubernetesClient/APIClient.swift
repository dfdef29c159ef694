import AsyncHTTPClient
import FerryKubernetes
import FerryModel
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// A failed API request: the status, what the server said, and its `Retry-After` when it sent one.
public struct APIRequestError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var retryAfter: Duration?
    public var message: String
    public var description: String { "\(status): \(message)" }

    public init(status: Int, retryAfter: Duration? = nil, message: String) {
        self.status = status
        self.retryAfter = retryAfter
        self.message = message
    }

    /// `409`: the object changed since it was read (or already exists): read it again and retry.
    public var isConflict: Bool { status == 409 }
    public var isNotFound: Bool { status == 404 }
}

/// Requests to one API server with its credentials: the URL, `Authorization` and TLS of every list, watch
/// and write. A token read from a file (a kubeconfig's `tokenFile`, the service account's projected token,
/// which the kubelet rotates) is read again once a minute, as client-go's cached file token source does.
/// Writes take and return JSON objects.
public final class APIClient: Sendable {
    public let server: APIServer
    let tls: TLSConfiguration?
    public let http: HTTPClient
    private let token = NIOLockedValueBox<(value: String?, readAt: ContinuousClock.Instant?)>((nil, nil))
    /// How long a token read from a file is used before the file is read again.
    let tokenRefresh: Duration

    /// One `HTTPClient` for the server (through its kubeconfig `proxy-url` when it has one); `shutdown()` it.
    /// `tls` is the client TLS of `server.tls`, built by the caller (FerryProxy's `TLSConfiguration.client`).
    public init(server: APIServer, tls: TLSConfiguration?, tokenRefresh: Duration = .seconds(60)) {
        self.server = server
        self.tls = tls
        self.tokenRefresh = tokenRefresh
        var configuration = HTTPClient.Configuration()
        if let proxy = server.proxy { configuration.proxy = .server(host: proxy.host, port: proxy.port) }
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    /// The `Authorization` value now: the token file's current token when the credentials came from one.
    var authorization: String? {
        guard let file = server.credentialFiles.first, server.authorization?.hasPrefix("Bearer ") == true else { return server.authorization }
        let now = ContinuousClock.now
        return token.withLockedValue { cached in
            if let read = cached.readAt, now - read < tokenRefresh { return cached.value.map { "Bearer \($0)" } ?? server.authorization }
            cached.readAt = now
            if let text = try? String(contentsOfFile: file, encoding: .utf8) {
                let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !value.isEmpty { cached.value = value }
            }
            return cached.value.map { "Bearer \($0)" } ?? server.authorization
        }
    }

    /// A request for `path` (below the server's own path) with `query`.
    func request(path: String, query: [String: String] = [:], method: HTTPMethod = .GET) throws -> HTTPClientRequest {
        var components = URLComponents()
        components.scheme = server.scheme
        components.host = server.host.contains(":") ? "[\(server.host)]" : server.host
        components.port = server.port
        components.path = server.path + path
        if !query.isEmpty { components.queryItems = query.keys.sorted().map { URLQueryItem(name: $0, value: query[$0]) } }
        guard let url = components.url?.absoluteString else { throw APIRequestError(status: 0, message: "cannot build a URL for \(path)") }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "accept", value: "application/json")
        request.headers.add(name: "user-agent", value: "ferry")
        if let authorization { request.headers.add(name: "authorization", value: authorization) }
        request.tlsConfiguration = tls
        return request
    }

    /// Throws the server's Status as an `APIRequestError` unless the response is a success.
    static func check(_ response: HTTPClientResponse, body: ByteBuffer) throws {
        guard !(200..<300).contains(response.status.code) else { return }
        let retryAfter = response.headers.first(name: "retry-after").flatMap { Int64($0) }.map { Duration.seconds($0) }
        let status = try? WatchEventDecoder.decode(line: "{\"type\":\"ERROR\",\"object\":\(String(buffer: body))}").status
        throw APIRequestError(status: Int(response.status.code), retryAfter: retryAfter, message: status?.message ?? response.status.reasonPhrase)
    }

    // MARK: objects as JSON

    /// The object at `path`, or nil when it does not exist.
    public func get(_ path: String) async throws -> [String: Any]? {
        do {
            return try await send(try request(path: path), body: nil)
        } catch let error as APIRequestError where error.isNotFound {
            return nil
        }
    }

    /// POST of a new object to its collection; returns it as stored.
    @discardableResult
    public func create(_ collectionPath: String, _ object: [String: Any]) async throws -> [String: Any] {
        try await send(try request(path: collectionPath, method: .POST), body: object)
    }

    /// PUT over the object (with the resourceVersion it was read at: a `409` when it changed since).
    @discardableResult
    public func replace(_ path: String, _ object: [String: Any]) async throws -> [String: Any] {
        try await send(try request(path: path, method: .PUT), body: object)
    }

    private func send(_ request: HTTPClientRequest, body: [String: Any]?) async throws -> [String: Any] {
        var request = request
        if let body {
            let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: data))
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        try Self.check(response, body: bytes)
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] else {
            throw APIRequestError(status: Int(response.status.code), message: "the answer is not a JSON object")
        }
        return object
    }
}
