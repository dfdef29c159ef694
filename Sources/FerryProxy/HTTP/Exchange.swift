import FerryModel
import NIOCore
import NIOHTTP1

/// A downstream connection that became a tunnel: drained by closing it once the drain timeout ends.
final class TunnelConnection: TrackedConnection {
    let channel: Channel
    init(channel: Channel) { self.channel = channel }
    func quiesce() {}
    func closeNow() { channel.close(promise: nil) }
    func checkDeadlines(now: NIODeadline) {}
}


/// Per-request state of `HTTPProxyHandler`: what the exchange is about (route, cluster, the upstream head, the
/// log event) around its state machine. A class, so the handler updates it in place.
final class Exchange {
    var event: AccessLogEvent
    var machine: ExchangeStateMachine
    var startedAt: NIODeadline { machine.startedAt }
    var method: HTTPMethod { machine.method }
    var version: HTTPVersion = .http1_1
    var listenerStats: ListenerStats?
    var route: CompiledRoute?
    var targetIndex: Int?
    var accessLogFormat: AccessLogSettings.Format = .json
    /// Forward proxy: the address this request goes to (instead of a cluster's endpoints), and whether it is a CONNECT.
    var destination: SocketAddress?
    var isConnect = false
    /// Forward proxy behind a parent proxy: its address and the `host:port` to ask it for.
    var parentProxy: (address: SocketAddress, authority: String)?
    var cluster: CompiledCluster?
    var snapshotVersion = 0
    var hashKey: UInt64?
    /// The head for the upstream as built by the reverse-proxy path, then its bytes (the forward proxy
    /// writes the bytes directly).
    var upstreamHead: HTTPRequestHead?
    var upstreamHeadBytes: ByteBuffer?
    /// The peer is a trusted proxy: its forwarding fields are kept (`ForwardedTrust`).
    var trustedPeer = false
    var countedActive = false
    /// The response to the client is chunk-framed by Ferry (HTTP/1.1 wire format).
    var downstreamChunked = false
    /// A gRPC request (`content-type: application/grpc…`): Ferry's own errors are answered as gRPC statuses.
    var isGRPC = false
    /// Its `grpc-timeout`, read when the request is gRPC.
    var grpcTimeout: TimeAmount?
    var sentUpstreamAt: NIODeadline?

    init(event: AccessLogEvent, machine: ExchangeStateMachine) {
        self.event = event
        self.machine = machine
    }
}

@available(*, unavailable)
extension Exchange: Sendable {}
