@testable import FerryProxy
import FerryModel
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// Upstream connections the test holds: each dial gets an EmbeddedChannel on the downstream's loop, so a
/// test reads exactly what Ferry sent upstream and answers byte by byte.
final class FakeUpstreams: UpstreamConnector, @unchecked Sendable {
    let loop: EmbeddedEventLoop
    private(set) var channels: [EmbeddedChannel] = []
    private(set) var dialled: [SocketAddress] = []
    /// How many of the next dials fail as if the endpoint refused.
    var refuseNext = 0
    /// When set, dials wait until `completeHeldConnects` (the upstream is slow to accept).
    var holdConnects = false
    private var held: [(EmbeddedChannel, SocketAddress, @Sendable (Channel) -> EventLoopFuture<Void>, EventLoopPromise<Channel>)] = []

    init(loop: EmbeddedEventLoop) { self.loop = loop }

    func connect(
        to address: SocketAddress, options: UpstreamDialOptions, on eventLoop: any EventLoop,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        dialled.append(address)
        if refuseNext > 0 {
            refuseNext -= 1
            return loop.makeFailedFuture(ChannelError.connectTimeout(.seconds(1)))
        }
        let channel = EmbeddedChannel(handlers: [], loop: loop)
        channels.append(channel)
        if holdConnects {
            let promise = loop.makePromise(of: Channel.self)
            held.append((channel, address, initializer, promise))
            return promise.futureResult
        }
        return initializer(channel).flatMap { channel.connect(to: address) }.map { channel }
    }

    /// Lets the dials held so far connect.
    func completeHeldConnects() {
        let waiting = held
        held = []
        for (channel, address, initializer, promise) in waiting {
            initializer(channel).flatMap { channel.connect(to: address) }.map { channel as Channel }.cascade(to: promise)
        }
        loop.run()
    }
}

/// Counts the reads the proxy asks of a channel, so a test sees when it holds reading back.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// A listener that forwards to a cluster of fake upstreams, on one EmbeddedEventLoop.
final class ForwardingFixture {
    let loop = EmbeddedEventLoop()
    let downstream: EmbeddedChannel
    let upstreams: FakeUpstreams
    let accessLog = AccessLogWriter(fd: -1)
    let reads = ReadCounter()

    init(endpoints: Int = 1, route: (inout Route) -> Void = { _ in }, listener: (inout HTTPConnectionManager) -> Void = { _ in }) throws {
        downstream = EmbeddedChannel(handlers: [], loop: loop)
        upstreams = FakeUpstreams(loop: loop)
        var forward = Route(name: "app", match: RouteMatch(path: .prefix("/")), action: .forward([WeightedCluster(name: "app")]))
        route(&forward)
        var http = HTTPConnectionManager(virtualHosts: [VirtualHost(name: "all", domains: [.any], routes: [forward])])
        listener(&http)
        let config = ConfigSnapshot(
            listeners: [Listener(name: "web", address: HostPort(host: "127.0.0.1", port: 0), http: http)],
            clusters: [Cluster(name: "app", endpoints: (0..<endpoints).map { HostPort(host: "127.0.0.1", port: 9001 + $0) })])
        let environment = try Self.environment(config, listener: "web", loop: loop, accessLog: accessLog, connector: upstreams)
        downstream.remoteAddress = try SocketAddress(ipAddress: "192.0.2.7", port: 40000)
        try downstream.pipeline.syncOperations.addHandler(reads)
        try DownstreamPipeline.configure(downstream, environment: environment, limits: environment.boundSnapshot.listeners["web"]!.decoderLimits)
        try downstream.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
    }

    /// `listener` of `config`, compiled, on `loop` (whose clock the proxy reads), dialling through `connector`.
    static func environment(_ config: ConfigSnapshot, listener: String, loop: EmbeddedEventLoop, accessLog: AccessLogWriter, connector: FakeUpstreams) throws -> ListenerEnvironment {
        let metrics = ProxyMetrics()
        let compiled = try CompiledSnapshot(config, metrics: metrics)
        return ListenerEnvironment(
            listenerName: listener, store: SnapshotStore(compiled), metrics: metrics, accessLog: accessLog,
            loops: try LoopLocals(group: loop, clockFromLoop: true), boundSnapshot: compiled, connector: connector)
    }

    /// Bytes from the client; runs the loop so flushes queued for the end of the tick happen.
    func client(_ text: String) throws {
        try downstream.writeInbound(ByteBuffer(string: text))
        loop.run()
    }

    /// Bytes from upstream connection `index`.
    func upstream(_ index: Int, sends text: String) throws {
        try upstreams.channels[index].writeInbound(ByteBuffer(string: text))
        loop.run()
    }

    /// Everything written to the client since the last call.
    func clientReceived() throws -> String { try Self.drain(downstream) }

    /// Everything written to upstream connection `index` since the last call.
    func upstreamReceived(_ index: Int) throws -> String { try Self.drain(upstreams.channels[index]) }

    static func drain(_ channel: EmbeddedChannel) throws -> String {
        var out = ""
        while let data = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { out += String(buffer: buffer) }
        }
        return out
    }

    var logLines: [String] { accessLog.bufferedText().split(separator: "\n").map(String.init) }
}

struct ForwardingPipelineTests {
    @Test func aRequestIsForwardedAndItsResponseStreamedBack() throws {
        let f = try ForwardingFixture()
        try f.client("GET /items?x=1 HTTP/1.1\r\nHost: shop.test\r\nX-Request-Id: r1\r\n\r\n")
        #expect(f.upstreams.channels.count == 1)
        let sent = try f.upstreamReceived(0)
        #expect(sent.hasPrefix("GET /items?x=1 HTTP/1.1\r\nHost: shop.test\r\n"), "\(sent)")
        // The client's own fields as received, then the forwarding fields Ferry adds.
        #expect(sent.contains("\r\nX-Request-Id: r1\r\nx-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: http\r\n"), "\(sent)")
        #expect(sent.hasSuffix("\r\n\r\n"))
        #expect(try f.clientReceived().isEmpty)

        try f.upstream(0, sends: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-From: origin\r\n\r\nhel")
        try f.upstream(0, sends: "lo")
        let received = try f.clientReceived()
        #expect(received.hasPrefix("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-From: origin\r\n"), "\(received)")
        #expect(received.hasSuffix("\r\n\r\nhello"))
        #expect(f.downstream.isActive)
        #expect(f.logLines.count == 1)
        #expect(f.logLines.first?.contains("\"status\":200") == true, "\(f.logLines)")
    }

    @Test func aKeepAliveClientReusesThePooledUpstream() throws {
        let f = try ForwardingFixture()
        for i in 0..<3 {
            try f.client("GET /\(i) HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try f.upstreamReceived(0).hasPrefix("GET /\(i) HTTP/1.1\r\n"))
            try f.upstream(0, sends: "HTTP/1.1 204 No Content\r\n\r\n")
            #expect(try f.clientReceived().hasPrefix("HTTP/1.1 204 No Content\r\n"))
        }
        #expect(f.upstreams.channels.count == 1)
        #expect(f.logLines.count == 3)
    }

    /// Pipelined requests go upstream one at a time, in order, on the one pooled connection — the next is
    /// written from inside the upstream decoder's hand-off of the previous response's end.
    @Test func pipelinedRequestsAreForwardedOneAtATimeInOrder() throws {
        let f = try ForwardingFixture()
        try f.client("GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try f.upstreamReceived(0).hasPrefix("GET /a HTTP/1.1\r\n"))
        try f.upstream(0, sends: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA")
        let second = try f.upstreamReceived(0)
        #expect(second.hasPrefix("POST /b HTTP/1.1\r\n") && second.hasSuffix("\r\n\r\nabc"), "\(second)")
        // The response to /b and nothing else in one read: /c follows it, still on the same connection.
        try f.upstream(0, sends: "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nB")
        #expect(try f.upstreamReceived(0).hasPrefix("GET /c HTTP/1.1\r\n"))
        try f.upstream(0, sends: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nC")
        let received = try f.clientReceived()
        #expect(received == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA" + "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nB"
            + "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nC", "\(received)")
        #expect(f.upstreams.channels.count == 1)
        #expect(f.logLines.count == 3)
    }

    @Test func aRefusedConnectionIsRetriedOnTheOtherEndpoint() throws {
        let f = try ForwardingFixture(endpoints: 2) { $0.retries = RetryPolicy(attempts: 2, on: [.connectFailure]) }
        f.upstreams.refuseNext = 1
        try f.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(f.upstreams.dialled.count == 2)
        #expect(f.upstreams.dialled[0] != f.upstreams.dialled[1], "the endpoint that failed is not tried again")
        try f.upstream(0, sends: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(try f.clientReceived().hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(f.logLines.first?.contains("\"attempts\":2") == true, "\(f.logLines)")
    }

    @Test func withoutARetryPolicyARefusedConnectionIs502() throws {
        let f = try ForwardingFixture(endpoints: 2) { $0.retries = RetryPolicy(attempts: 0, on: []) }
        f.upstreams.refuseNext = 1
        try f.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(f.upstreams.dialled.count == 1)
        let received = try f.clientReceived()
        #expect(received.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), "\(received)")
        #expect(f.logLines.first?.contains("\"response_flags\":\"UF\"") == true, "\(f.logLines)")
    }

    /// A pooled connection the upstream closed while the next request was on its way: that request is sent
    /// again once on a new connection (idempotent, no body), as Envoy and nginx do.
    @Test func aReusedConnectionThatClosesUnderARequestIsRetriedOnce() throws {
        let f = try ForwardingFixture()
        try f.client("GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
        try f.upstream(0, sends: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        _ = try f.clientReceived()
        try f.client("GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try f.upstreamReceived(0).contains("GET /first") == true)
        try f.upstreams.channels[0].close().wait()
        f.loop.run()
        #expect(f.upstreams.channels.count == 2)
        #expect(try f.upstreamReceived(1).hasPrefix("GET /second HTTP/1.1\r\n"))
        try f.upstream(1, sends: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(try f.clientReceived().hasSuffix("\r\n\r\nok"))
    }

    @Test func anUpstreamThatClosesMidBodyClosesTheClient() throws {
        let f = try ForwardingFixture()
        try f.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        try f.upstream(0, sends: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        #expect(try f.clientReceived().hasSuffix("partial"))
        try f.upstreams.channels[0].close().wait()
        f.loop.run()
        #expect(!f.downstream.isActive, "a response cut short must not look complete")
        #expect(f.logLines.first?.contains("\"response_flags\":\"UC\"") == true, "\(f.logLines)")
    }

    @Test func aSlowUpstreamHoldsTheClientsReadsAndASlowClientTheUpstreams() throws {
        let f = try ForwardingFixture()
        try f.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345")
        let upstream = f.upstreams.channels[0]
        let upstreamReads = ReadCounter()
        try upstream.pipeline.syncOperations.addHandler(upstreamReads, position: .first)

        // The upstream stops accepting bytes: the client's next read is held, and given once it drains.
        upstream.isWritable = false
        upstream.pipeline.fireChannelWritabilityChanged()
        let before = f.reads.reads
        f.downstream.read()
        #expect(f.reads.reads == before)
        upstream.isWritable = true
        upstream.pipeline.fireChannelWritabilityChanged()
        f.loop.run()
        #expect(f.reads.reads == before + 1)

        try f.client("67890")
        #expect(try f.upstreamReceived(0).hasSuffix("\r\n\r\n1234567890"))
        // The client stops accepting bytes: the upstream's next read is held until it drains.
        try f.upstream(0, sends: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
        f.downstream.isWritable = false
        f.downstream.pipeline.fireChannelWritabilityChanged()
        let upstreamBefore = upstreamReads.reads
        upstream.read()
        #expect(upstreamReads.reads == upstreamBefore)
        f.downstream.isWritable = true
        f.downstream.pipeline.fireChannelWritabilityChanged()
        #expect(upstreamReads.reads == upstreamBefore + 1)
        try f.upstream(0, sends: "cd")
        #expect(try f.clientReceived().hasSuffix("abcd"))
    }

    @Test func expectContinueIsAnsweredBeforeTheBodyIsRead() throws {
        let f = try ForwardingFixture()
        try f.client("PUT /doc HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        #expect(try f.clientReceived() == "HTTP/1.1 100 Continue\r\n\r\n")
        let head = try f.upstreamReceived(0)
        #expect(!head.lowercased().contains("expect:"), "Ferry answered the expectation; the upstream is not asked again")
        try f.client("hello")
        #expect(try f.upstreamReceived(0) == "hello")
    }

    @Test func anUpgradeAnsweredWith101BecomesATunnel() throws {
        let f = try ForwardingFixture()
        try f.client("GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        let sent = try f.upstreamReceived(0)
        #expect(sent.lowercased().contains("\r\nupgrade: websocket\r\n"), "\(sent)")
        try f.upstream(0, sends: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        #expect(try f.clientReceived().hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        // From now on bytes pass untouched, both ways — even ones that look like HTTP.
        try f.client("GET / HTTP/1.1\r\n\r\n\u{01}\u{02}")
        #expect(try f.upstreamReceived(0) == "GET / HTTP/1.1\r\n\r\n\u{01}\u{02}")
        try f.upstream(0, sends: "frame")
        #expect(try f.clientReceived() == "frame")
    }

    /// Bytes that arrive in the same read as the head that ends HTTP — the client's first frame behind its
    /// upgrade request, the server's greeting behind its 101 — are passed on at once, not held for a next read.
    @Test func bytesBehindAnUpgradeOnEitherSideArePassedOnAtOnce() throws {
        let f = try ForwardingFixture()
        try f.client("GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nclient-first")
        _ = try f.upstreamReceived(0)
        try f.upstream(0, sends: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nserver-first")
        let received = try f.clientReceived()
        #expect(received.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(received.hasSuffix("\r\n\r\nserver-first"), "\(received)")
        #expect(try f.upstreamReceived(0) == "client-first")
    }

    @Test func anUpgradeTheUpstreamRefusesEndsWithItsResponse() throws {
        let f = try ForwardingFixture()
        try f.client("GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        try f.upstream(0, sends: "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
        let received = try f.clientReceived()
        #expect(received.hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        #expect(received.lowercased().contains("connection: close\r\n"))
        f.loop.run()
        #expect(!f.downstream.isActive, "the reader stopped after the upgrade request: the connection cannot carry another")
    }

    @Test func aSwitchTheClientDidNotAskForIs502() throws {
        let f = try ForwardingFixture()
        try f.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        try f.upstream(0, sends: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        #expect(try f.clientReceived().hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"))
        #expect(!f.upstreams.channels[0].isActive)
    }

    /// Deadlines run on the event loop's clock: advancing it by hand fires them.
    @Test func anUpstreamThatDoesNotAnswerInTimeIs504() throws {
        let f = try ForwardingFixture { $0.timeout = .seconds(2) }
        try f.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        f.loop.advanceTime(by: .seconds(1))
        #expect(try f.clientReceived().isEmpty)
        f.loop.advanceTime(by: .seconds(2))
        let received = try f.clientReceived()
        #expect(received.hasPrefix("HTTP/1.1 504 Gateway Timeout\r\n"), "\(received)")
        #expect(f.logLines.first?.contains("\"response_flags\":\"UT\"") == true, "\(f.logLines)")
        #expect(!f.upstreams.channels[0].isActive, "the late upstream connection is not reused")
    }

    @Test func anIdleClientIsClosedWhenTheIdleTimeoutEnds() throws {
        let f = try ForwardingFixture(listener: { $0.timeouts.idle = .seconds(10) })
        f.loop.advanceTime(by: .seconds(9))
        #expect(f.downstream.isActive)
        f.loop.advanceTime(by: .seconds(6))
        #expect(!f.downstream.isActive)
    }

    static func forwardProxy(_ http: inout HTTPConnectionManager) {
        let loopback = AccessRule(action: .allow, match: AccessMatch(addresses: [IPRange(parsing: "127.0.0.0/8")!]), text: "allow 127.0.0.0/8")
        http.forwardProxy = ForwardProxySettings(policy: AccessPolicy(name: "egress", rules: [loopback]))
    }

    /// CONNECT: dialled on the same loop, answered 200 once the destination is up, then glued; bytes the
    /// client sent behind the CONNECT head (a TLS ClientHello, often) reach the destination first.
    @Test func aConnectTunnelIsAnsweredAndGluedWithItsEarlyBytes() throws {
        let f = try ForwardingFixture(listener: Self.forwardProxy)
        try f.client("CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n\u{16}\u{03}hello")
        #expect(f.upstreams.dialled == [try SocketAddress(ipAddress: "127.0.0.1", port: 443)])
        #expect(try f.clientReceived() == "HTTP/1.1 200 Connection established\r\n\r\n")
        let early = try f.upstreamReceived(0)
        #expect(early == "\u{16}\u{03}hello", "\(Array(early.utf8))")
        try f.upstream(0, sends: "server hello")
        #expect(try f.clientReceived() == "server hello")
        try f.client("GET / HTTP/1.1\r\n\r\n")
        #expect(try f.upstreamReceived(0) == "GET / HTTP/1.1\r\n\r\n")
        // The tunnel's access-log line is written when it closes, with the bytes each way.
        #expect(f.logLines.isEmpty)
        try f.upstreams.channels[0].close().wait()
        f.loop.run()
        #expect(!f.downstream.isActive)
        #expect(f.logLines.count == 1)
        #expect(f.logLines.first?.contains("\"status\":200") == true, "\(f.logLines)")
    }

    @Test func aDeniedConnectIsRefusedWithoutDialling() throws {
        let f = try ForwardingFixture(listener: Self.forwardProxy)
        try f.client("CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n\u{16}\u{03}")
        #expect(f.upstreams.dialled.isEmpty)
        let received = try f.clientReceived()
        #expect(received.hasPrefix("HTTP/1.1 403 Forbidden\r\n"), "\(received)")
        f.loop.run()
        #expect(!f.downstream.isActive)
    }
}

/// A TCP listener on one EmbeddedEventLoop: the same tunnel path as CONNECT and 101.
struct TCPTunnelPipelineTests {
    static func fixture(endpoints: Int = 1) throws -> (EmbeddedChannel, FakeUpstreams, AccessLogWriter) {
        let loop = EmbeddedEventLoop()
        let downstream = EmbeddedChannel(handlers: [], loop: loop)
        let upstreams = FakeUpstreams(loop: loop)
        let accessLog = AccessLogWriter(fd: -1)
        var listener = Listener(name: "db", address: HostPort(host: "127.0.0.1", port: 0), http: HTTPConnectionManager(virtualHosts: []))
        listener.tcpProxy = TCPProxySettings(cluster: "db")
        let config = ConfigSnapshot(
            listeners: [listener],
            clusters: [Cluster(name: "db", endpoints: (0..<endpoints).map { HostPort(host: "127.0.0.1", port: 5432 + $0) })])
        let environment = try ForwardingFixture.environment(config, listener: "db", loop: loop, accessLog: accessLog, connector: upstreams)
        downstream.remoteAddress = try SocketAddress(ipAddress: "192.0.2.7", port: 40000)
        try downstream.pipeline.syncOperations.addHandler(TCPProxyHandler(environment: environment, local: environment.loops.local(for: loop), remoteAddress: downstream.remoteAddress))
        return (downstream, upstreams, accessLog)
    }

    /// Bytes the client sends while the upstream is still accepting reach it first, in order. (A half-close
    /// before the connect is passed on too; EmbeddedChannel has no half-close, so `TCPProxyTests` shows that
    /// with real sockets.)
    @Test func earlyBytesAreReplayedOnceConnected() throws {
        let (downstream, upstreams, accessLog) = try Self.fixture()
        upstreams.holdConnects = true
        try downstream.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5000)).wait()
        try downstream.writeInbound(ByteBuffer(string: "hello "))
        try downstream.writeInbound(ByteBuffer(string: "world"))
        #expect(upstreams.channels.count == 1)
        upstreams.completeHeldConnects()
        let upstream = upstreams.channels[0]
        #expect(try ForwardingFixture.drain(upstream) == "hello world")
        try upstream.writeInbound(ByteBuffer(string: "answer"))
        #expect(try ForwardingFixture.drain(downstream) == "answer")
        try upstream.close().wait()
        downstream.embeddedEventLoop.run()
        #expect(!downstream.isActive)
        let line = accessLog.bufferedText()
        #expect(line.contains("\"method\":\"TCP\""), "\(line)")
        #expect(line.contains("\"bytes_received\":11") && line.contains("\"bytes_sent\":6"), "\(line)")
    }

    @Test func aRefusedEndpointIsSkippedForTheNext() throws {
        let (downstream, upstreams, _) = try Self.fixture(endpoints: 2)
        upstreams.refuseNext = 1
        try downstream.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5000)).wait()
        #expect(upstreams.dialled.count == 2)
        #expect(upstreams.dialled[0] != upstreams.dialled[1])
        try downstream.writeInbound(ByteBuffer(string: "ping"))
        downstream.embeddedEventLoop.run()
        #expect(try ForwardingFixture.drain(upstreams.channels[0]) == "ping")
    }
}
