@testable import FerryProxy
import FerryModel
import Testing

/// The chunk-size line limit (RFC 9112 §7.1.1): the scanner follows request framing in raw bytes and
/// refuses only a chunk-size line over the limit.
struct ChunkLineScannerTests {
    /// Scans `text` in pieces of `piece` bytes; the offset (in the whole text) of a refusal, or nil.
    func scan(_ text: String, limit: Int = 64, piece: Int = 1 << 20) -> Int? {
        var scanner = ChunkLineScanner(maxChunkLineBytes: limit)
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + piece)
            let found = bytes[start..<end].withUnsafeBytes { scanner.scan($0) }
            if let found { return start + found }
            start = end
        }
        return nil
    }

    static let longExtension = String(repeating: "x", count: 100)

    @Test(arguments: [1, 3, 7, 1 << 20])
    func aLongChunkLineIsFoundWhereverTheReadsSplit(piece: Int) {
        let head = "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        let ok = head + "5;name=value\r\nhello\r\n0\r\n\r\n"
        #expect(scan(ok, piece: piece) == nil)
        let long = head + "5;\(Self.longExtension)\r\nhello\r\n0\r\n\r\n"
        #expect(scan(long, piece: piece) == head.utf8.count + 64, "the 65th byte of the line")
        let lastChunk = head + "5\r\nhello\r\n0;\(Self.longExtension)\r\n\r\n"
        #expect(scan(lastChunk, piece: piece) != nil)
    }

    @Test func bodiesOfKnownLengthAndTrailersAreNotReadAsChunkLines() {
        let body = String(repeating: "y", count: 300)
        let text = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 300\r\n\r\n\(body)"
            + "POST /b HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\n\r\n12c\r\n\(body)\r\n0\r\nX-Trailer: \(Self.longExtension)\r\n\r\n"
            + "GET /c HTTP/1.1\r\nHost: a\r\n\r\n"
        #expect(scan(text) == nil)
        // A later request on the same connection is followed too.
        #expect(scan(text + "POST /d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;\(Self.longExtension)\r\n") != nil)
    }

    @Test func tunnelsAreNotFollowed() {
        #expect(scan("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n" + "\(Self.longExtension)\r\n" + Self.longExtension) == nil)
        #expect(scan("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n1;\(Self.longExtension)\r\n") == nil)
    }

    @Test func emptyLinesBeforeARequestAreSkipped() {
        #expect(scan("\r\n\r\nPOST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;\(Self.longExtension)\r\n") != nil)
    }
}

/// The guard in the downstream pipeline: 400 and close, the requests before it answered.
struct ChunkLineGuardPipelineTests {
    @Test func anOverLongChunkLineIs400AndClose() throws {
        var limits = HTTPLimits()
        limits.maxChunkLineBytes = 64
        let f = try PipelineFixture(limits: limits)
        let ok = try f.exchange("POST /submit HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n")
        #expect(ok.hasPrefix("HTTP/1.1 202 Accepted\r\n"))
        let out = try f.exchange("POST /submit HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\(String(repeating: "x", count: 200))\r\nhello\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(out.contains("HTTP/1.1 400 Bad Request\r\n"), "\(out)")
        #expect(out.hasSuffix("400 Bad Request: a chunk-size line (size and extensions) longer than 64 bytes\n"), "\(out)")
        #expect(!out.contains("200 OK"))
        #expect(!f.isOpen)
    }
}
