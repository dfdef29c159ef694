import FerryModel
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener: `/ready`, `/healthz`, `/metrics`, `/config_dump` and `/clusters`.
struct AdminServer: Sendable {
    let channel: Channel

    static func bind(_ address: HostPort, group: EventLoopGroup, server: ProxyServer) throws -> AdminServer {
        let channel = try ProxyServer.StartError.naming("the admin listener", address: address.description) {
            try StatusServer.bind(address, group: group) { AdminHandler.respond(to: $0, server: server) }
        }
        return AdminServer(channel: channel)
    }
}

/// The admin endpoints' answers, from the server's state.
enum AdminHandler {
    static func respond(to head: HTTPRequestHead, server: ProxyServer) -> (HTTPResponseStatus, String, String) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard head.method == .GET || head.method == .HEAD else {
            return (.methodNotAllowed, "text/plain", "admin endpoints answer GET\n")
        }
        switch path {
        case "/ready":
            return server.notReadyReason.map { (.serviceUnavailable, "text/plain", $0 + "\n") } ?? (.ok, "text/plain", "ready\n")
        case "/healthz":
            return (.ok, "text/plain", "ok\n")
        case "/metrics":
            var bytes: [UInt8] = []
            server.metrics.registry.emit(into: &bytes)
            return (.ok, "text/plain; version=0.0.4", String(decoding: bytes, as: UTF8.self))
        case "/config_dump":
            return (.ok, "application/json", configDump(server))
        case "/clusters":
            let lines = server.snapshot.clusters.map { cluster in
                "\(cluster.name) \(cluster.loadBalancing) " + (cluster.endpoints.isEmpty ? "(no endpoints)" : cluster.endpoints.map(\.description).joined(separator: " "))
            }
            return (.ok, "text/plain", lines.joined(separator: "\n") + "\n")
        case "/":
            return (.ok, "text/plain", "ferry admin: /ready /healthz /metrics /config_dump /clusters\n")
        default:
            return (.notFound, "text/plain", "no admin endpoint \(path); try /ready /healthz /metrics /config_dump /clusters\n")
        }
    }

    static func configDump(_ server: ProxyServer) -> String {
        struct Dump: Encodable {
            var snapshot: ConfigSnapshot
            var reloads: Int
            var last_reload_error: String?
            var listeners_bound: [String: String]
        }
        let status = server.reloadStatus
        let bound = server.listenerAddresses.mapValues { "\($0)" }
        let dump = Dump(snapshot: server.snapshot, reloads: status.count, last_reload_error: status.lastError, listeners_bound: bound)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(dump) else { return "{}" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}


