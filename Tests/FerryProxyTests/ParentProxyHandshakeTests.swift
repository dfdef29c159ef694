@testable import FerryProxy
import NIOCore
import NIOEmbedded
import Testing

/// The CONNECT handshake with a parent proxy, on an EmbeddedChannel: what it sends, and what it makes of
/// each answer.
struct ParentProxyHandshakeTests {
    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var text = ""
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { text += String(buffer: unwrapInboundIn(data)) }
    }

    static func start() throws -> (EmbeddedChannel, ParentProxyHandshake, Collector) {
        let channel = EmbeddedChannel()
        let handshake = ParentProxyHandshake(authority: "api.internal:443", done: channel.eventLoop.makePromise())
        let collector = Collector()
        try channel.pipeline.syncOperations.addHandler(handshake)
        try channel.pipeline.syncOperations.addHandler(collector)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3128)).wait()
        return (channel, handshake, collector)
    }

    @Test(arguments: [1, 7, 1000])
    func a2xxOpensTheTunnelAndPassesOnWhatFollowsIt(piece: Int) throws {
        let (channel, handshake, collector) = try Self.start()
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "CONNECT api.internal:443 HTTP/1.1\r\nHost: api.internal:443\r\n\r\n")
        let answer = Array("HTTP/1.1 200 Connection established\r\nProxy-Agent: squid\r\n\r\n\u{16}\u{03}server".utf8)
        for start in stride(from: 0, to: answer.count, by: piece) {
            try channel.writeInbound(ByteBuffer(bytes: answer[start..<min(start + piece, answer.count)]))
        }
        try handshake.done.futureResult.wait()
        #expect(collector.text == "\u{16}\u{03}server")
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: ParentProxyHandshake.self) }
        #expect(channel.isActive)
    }

    @Test func aRefusalFailsWithTheParentsStatusAndCloses() throws {
        let (channel, handshake, collector) = try Self.start()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"))
        #expect(throws: ParentProxyHandshake.Refused.self) { try handshake.done.futureResult.wait() }
        do {
            try handshake.done.futureResult.wait()
        } catch {
            #expect("\(error)" == "the parent proxy answered 407 Proxy Authentication Required")
        }
        #expect(collector.text.isEmpty)
        #expect(!channel.isActive)
    }

    @Test func somethingThatIsNotHTTPIsRefused() throws {
        let (channel, handshake, _) = try Self.start()
        try? channel.writeInbound(ByteBuffer(string: "SSH-2.0-OpenSSH_9.2\r\n\r\n"))
        do {
            try handshake.done.futureResult.wait()
            Issue.record("accepted")
        } catch {
            #expect("\(error)".hasPrefix("the parent proxy's answer is not HTTP/1.1"), "\(error)")
        }
        #expect(!channel.isActive)
    }
}
