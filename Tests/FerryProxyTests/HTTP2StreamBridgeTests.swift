@testable import FerryProxy
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import Testing

/// The bridge between one HTTP/2 stream's frames and Ferry's HTTP/1.1 exchange, on an EmbeddedChannel: the
/// request as HTTP/1.1 bytes, the response bytes back as HEADERS, DATA and trailers.
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

    func headers(_ method: String = "GET", _ path: String = "/a", _ fields: [(String, String)] = [], endStream: Bool) -> HTTP2Frame.FramePayload {
        .headers(.init(headers: HPACKHeaders([(":method", method), (":scheme", "https"), (":path", path), (":authority", "h2.test")] + fields), endStream: endStream))
    }

    func data(_ text: String, endStream: Bool) -> HTTP2Frame.FramePayload {
        .data(.init(data: .byteBuffer(ByteBuffer(string: text)), endStream: endStream))
    }

    func outbound(_ channel: EmbeddedChannel) throws -> [HTTP2Frame.FramePayload] {
        var frames: [HTTP2Frame.FramePayload] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) { frames.append(frame) }
        return frames
    }

    @Test func aRequestWithoutBodyIsOneHeadWithoutFraming() throws {
        let channel = try channel()
        try channel.writeInbound(headers("GET", "/a?b=1", [("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")], endStream: true))
        #expect(try inboundText(channel) == "GET /a?b=1 HTTP/1.1\r\nhost: h2.test\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n")
    }

    @Test func aBodyWithoutLengthIsSentChunkedWithItsTrailers() throws {
        let channel = try channel()
        try channel.writeInbound(headers("POST", "/up", endStream: false))
        try channel.writeInbound(data("hello", endStream: false))
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: HPACKHeaders([("x-sum", "5")]), endStream: true)))
        #expect(try inboundText(channel) == "POST /up HTTP/1.1\r\nhost: h2.test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n")
    }

    @Test func aBodyWithLengthIsSentAsItIs() throws {
        let channel = try channel()
        try channel.writeInbound(headers("PUT", "/up", [("content-length", "3")], endStream: false))
        try channel.writeInbound(data("abc", endStream: true))
        #expect(try inboundText(channel) == "PUT /up HTTP/1.1\r\nhost: h2.test\r\ncontent-length: 3\r\n\r\nabc")
    }

    @Test func aHostFieldIsKeptOverTheAuthority() throws {
        let channel = try channel()
        try channel.writeInbound(headers("GET", "/", [("host", "other.test")], endStream: true))
        #expect(try inboundText(channel) == "GET / HTTP/1.1\r\nhost: other.test\r\n\r\n")
    }

    /// The proxy handler has already dropped the upstream's hop-by-hop fields and those its Connection field
    /// listed (HeaderRewriter's tests); what it writes itself — Connection, Keep-Alive, chunked framing — has
    /// no place in HTTP/2.
    @Test func responseBytesBecomeFrames() throws {
        let channel = try channel()
        try channel.writeInbound(headers("GET", "/r", endStream: true))
        _ = try inboundText(channel)
        try channel.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"))
        try channel.writeOutbound(ByteBuffer(string: "0\r\ngrpc-status: 0\r\n\r\n"))
        let frames = try outbound(channel)
        #expect(frames.count == 3)
        guard case .headers(let head) = frames[0] else { Issue.record("no head"); return }
        #expect(Array(head.headers.map { "\($0.name): \($0.value)" }) == [":status: 200", "content-type: text/plain"])
        #expect(!head.endStream)
        guard case .data(let body) = frames[1], case .byteBuffer(let bytes) = body.data else { Issue.record("no body"); return }
        #expect(String(buffer: bytes) == "abc")
        guard case .headers(let trailers) = frames[2] else { Issue.record("no trailers"); return }
        #expect(trailers.endStream && trailers.headers.first(name: "grpc-status") == "0")
    }

    @Test func aResponseWithoutBodyEndsTheStreamWithItsHeaders() throws {
        let channel = try channel()
        try channel.writeInbound(headers("HEAD", "/r", endStream: true))
        try channel.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"))
        let frames = try outbound(channel)
        guard frames.count == 1, case .headers(let head) = frames[0] else { Issue.record("\(frames)"); return }
        #expect(head.endStream && head.headers.first(name: "content-length") == "10")
    }

    @Test func connectIsRefusedAndNothingGoesOn() throws {
        let channel = try channel()
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: HPACKHeaders([(":method", "CONNECT"), (":authority", "example.com:443")]))))
        #expect(try inboundText(channel) == "")
        guard case .headers(let head)? = try outbound(channel).first else { Issue.record("no head"); return }
        #expect(head.headers.first(name: ":status") == "501")
    }
}
