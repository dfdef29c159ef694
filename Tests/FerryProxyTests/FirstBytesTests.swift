@testable import FerryProxy
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

/// What an intercepted connection's first bytes are, read without consuming them: real ClientHellos from
/// BoringSSL (with and without a server name, in pieces, split across records), HTTP request lines, other
/// protocols, and broken handshakes.
struct FirstBytesTests {
    /// The ClientHello NIOSSL's client sends for `serverName`.
    static func clientHello(serverName: String?) throws -> ByteBuffer {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        let context = try NIOSSLContext(configuration: configuration)
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverName))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        var hello = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { hello.writeBuffer(&part) }
        return hello
    }

    @Test func aClientHelloGivesItsServerName() throws {
        let hello = try Self.clientHello(serverName: "Shop.Example.com")
        #expect(FirstBytes.classify(hello) == .tls(serverName: "shop.example.com"))
        #expect(FirstBytes.classify(try Self.clientHello(serverName: nil)) == .tls(serverName: nil))
    }

    @Test func aClientHelloInPiecesNeedsMoreUntilWhole() throws {
        let hello = try Self.clientHello(serverName: "api.example.org")
        for cut in [1, 3, 5, 9, 50, hello.readableBytes - 1] {
            #expect(FirstBytes.classify(hello.getSlice(at: 0, length: cut)!) == .needMore, "cut at \(cut)")
        }
    }

    @Test func aClientHelloSplitAcrossRecordsIsJoined() throws {
        let hello = try Self.clientHello(serverName: "split.example.net")
        // The handshake message of the one record, re-framed as two records (RFC 8446 §5.1 allows it).
        let message = hello.getSlice(at: 5, length: hello.readableBytes - 5)!
        var split = ByteBuffer()
        for part in [message.getSlice(at: 0, length: 40)!, message.getSlice(at: 40, length: message.readableBytes - 40)!] {
            split.writeBytes([0x16, 0x03, 0x01])
            split.writeInteger(UInt16(part.readableBytes))
            var p = part
            split.writeBuffer(&p)
        }
        #expect(FirstBytes.classify(split) == .tls(serverName: "split.example.net"))
    }

    @Test func requestLinesAndOtherProtocols() {
        #expect(FirstBytes.classify(ByteBuffer(string: "GET / HTTP/1.1\r\n")) == .http)
        #expect(FirstBytes.classify(ByteBuffer(string: "M-SEARCH * HTTP/1.1\r\n")) == .http)
        #expect(FirstBytes.classify(ByteBuffer(string: "GE")) == .needMore)
        #expect(FirstBytes.classify(ByteBuffer(string: "SSH-2.0-OpenSSH_9.6\r\n")) == .other)
        #expect(FirstBytes.classify(ByteBuffer(string: "get / HTTP/1.1\r\n")) == .other)
        #expect(FirstBytes.classify(ByteBuffer(bytes: [0x00, 0x01, 0x02])) == .other)
        #expect(FirstBytes.classify(ByteBuffer(string: String(repeating: "A", count: 30))) == .other)
        #expect(FirstBytes.classify(ByteBuffer()) == .needMore)
    }

    @Test func brokenHandshakesAreNamed() throws {
        // A handshake record whose message is a ServerHello (type 2), not a ClientHello.
        var serverHello = ByteBuffer(bytes: [0x16, 0x03, 0x03, 0x00, 0x08, 0x02, 0x00, 0x00, 0x04, 0x03, 0x03, 0x00, 0x00])
        #expect(FirstBytes.classify(serverHello) == .malformedTLS("the first handshake message is not a ClientHello"))
        // A ClientHello whose session ID length runs past its end.
        serverHello = ByteBuffer(bytes: [0x16, 0x03, 0x01, 0x00, 0x28, 0x01, 0x00, 0x00, 0x24, 0x03, 0x03] + Array(repeating: 0, count: 32) + [0xff, 0x00])
        #expect(FirstBytes.classify(serverHello) == .malformedTLS("a ClientHello whose fields overrun it"))
        // An alert record first is not a ClientHello, and not TLS we can read: other.
        #expect(FirstBytes.classify(ByteBuffer(bytes: [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])) == .other)
    }
}
