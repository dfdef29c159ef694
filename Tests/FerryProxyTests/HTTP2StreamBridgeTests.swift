@testable import FerryProxy
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The bridge between one HTTP/2 stream (as NIOHTTP2's codec delivers it) and Ferry's HTTP/1.1 exchange,
/// on an EmbeddedChannel: the request as HTTP/1.1 bytes, the response bytes back as parts.
struct HTTP2StreamBridgeTests {
    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2StreamBridge())
        return channel
    }

    func inboundText(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while var buffer = try channel.readInbound(as: ByteBuffer.self) { text += buffer.readString(length: buffer.readableBytes) ?? "" }
        return text
    }

    func head(_ method: HTTPMethod = .GET, _ uri: String = "/a", _ headers: [(String, String)] = [("host", "h2.test")]) -> HTTPServerRequestPart {
        .head(HTTPRequestHead(version: .http2, method: method, uri: uri, headers: HTTPHeaders(headers)))
    }

    @Test func aRequestWithoutBodyIsOneHeadWithoutFraming() throws {
        let channel = try channel()
        // HEADERS with END_STREAM: the codec hands on the head and the end in one read.
        channel.pipeline.fireChannelRead(NIOAny(head(.GET, "/a?b=1", [("host", "h2.test"), ("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")])))
        channel.pipeline.fireChannelRead(NIOAny(HTTPServerRequestPart.end(nil)))
        channel.pipeline.fireChannelReadComplete()
        #expect(try inboundText(channel) == "GET /a?b=1 HTTP/1.1\r\nhost: h2.test\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n")
    }

    @Test func aBodyWithoutLengthIsSentChunkedWithItsTrailers() throws {
        let channel = try channel()
        try channel.writeInbound(head(.POST, "/up"))
        channel.pipeline.fireChannelReadComplete()
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "hello")))
        try channel.writeInbound(HTTPServerRequestPart.end(HTTPHeaders([("x-sum", "5")])))
        #expect(try inboundText(channel) == "POST /up HTTP/1.1\r\nhost: h2.test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n")
    }

    @Test func aBodyWithLengthIsSentAsItIs() throws {
        let channel = try channel()
        try channel.writeInbound(head(.PUT, "/up", [("host", "h2.test"), ("content-length", "3")]))
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "abc")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(try inboundText(channel) == "PUT /up HTTP/1.1\r\nhost: h2.test\r\ncontent-length: 3\r\n\r\nabc")
    }

    @Test func responseBytesBecomeParts() throws {
        let channel = try channel()
        try channel.writeInbound(head(.GET, "/r"))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        _ = try inboundText(channel)
        try channel.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"))
        try channel.writeOutbound(ByteBuffer(string: "0\r\ngrpc-status: 0\r\n\r\n"))
        guard case .head(let response)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else { Issue.record("no head"); return }
        #expect(response.status == .ok && response.version == .http2)
        #expect(response.headers["content-type"] == ["text/plain"])
        guard case .body(.byteBuffer(let body))? = try channel.readOutbound(as: HTTPServerResponsePart.self) else { Issue.record("no body"); return }
        #expect(String(buffer: body) == "abc")
        guard case .end(let trailers)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else { Issue.record("no end"); return }
        #expect(trailers?["grpc-status"] == ["0"])
    }

    @Test func aHeadResponseHasNoBody() throws {
        let channel = try channel()
        try channel.writeInbound(head(.HEAD, "/r"))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        try channel.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"))
        guard case .head? = try channel.readOutbound(as: HTTPServerResponsePart.self) else { Issue.record("no head"); return }
        guard case .end? = try channel.readOutbound(as: HTTPServerResponsePart.self) else { Issue.record("no end"); return }
    }

    @Test func connectIsRefusedAndNothingGoesOn() throws {
        let channel = try channel()
        try channel.writeInbound(head(.CONNECT, "example.com:443"))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(try inboundText(channel) == "")
        guard case .head(let response)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else { Issue.record("no head"); return }
        #expect(response.status == .notImplemented)
    }
}
