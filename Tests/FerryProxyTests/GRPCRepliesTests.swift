@testable import FerryProxy
import NIOCore
import NIOHTTP1
import Testing

/// gRPC's view of Ferry's own answers: status mapping, message encoding, deadlines.
struct GRPCRepliesTests {
    @Test(arguments: [(400, 13), (401, 16), (403, 7), (404, 12), (429, 14), (431, 13), (502, 14), (503, 14), (504, 14), (413, 2), (500, 2)] as [(UInt, Int)])
    func httpStatusesMapAsGRPCSays(_ http: UInt, _ grpc: Int) {
        #expect(GRPC.status(forHTTP: http) == grpc)
    }

    @Test func aReplyBecomesTrailersOnly() {
        let reply = GRPC.reply(for: .error(.serviceUnavailable, "no endpoint of cluster api could be reached", flags: .upstreamConnectionFailure))
        #expect(reply.status == .ok && reply.body.isEmpty && reply.contentType == "application/grpc")
        #expect(reply.extraHeaders.first { $0.0 == "grpc-status" }?.1 == "14")
        #expect(reply.extraHeaders.first { $0.0 == "grpc-message" }?.1 == "503 Service Unavailable: no endpoint of cluster api could be reached")
        #expect(reply.flags == .upstreamConnectionFailure)
    }

    @Test func ferrysOwnTimeoutIsDeadlineExceeded() {
        let reply = GRPC.reply(for: .error(.gatewayTimeout, "upstream did not respond within 1s", flags: .upstreamRequestTimeout))
        #expect(reply.extraHeaders.first { $0.0 == "grpc-status" }?.1 == "4")
    }

    @Test func messagesArePercentEncoded() {
        #expect(GRPC.percentEncoded("50% off\nnow ü") == "50%25 off%0Anow %C3%BC")
    }

    @Test(arguments: [("1S", TimeAmount.seconds(1)), ("300m", .milliseconds(300)), ("2M", .minutes(2)), ("1H", .hours(1)), ("99999999u", .microseconds(99_999_999)), ("5n", .nanoseconds(5))] as [(String, TimeAmount)])
    func timeoutsParse(_ text: String, _ expected: TimeAmount) {
        #expect(GRPC.timeout(text) == expected)
    }

    @Test(arguments: ["", "S", "1", "123456789S", "1s", "-1S", "1.5S", "1 S"])
    func badTimeoutsAreIgnored(_ text: String) {
        #expect(GRPC.timeout(text) == nil)
    }

    @Test func onlyGRPCContentTypesCount() {
        #expect(GRPC.isGRPC(contentType: "application/grpc"))
        #expect(GRPC.isGRPC(contentType: "application/grpc+proto"))
        #expect(GRPC.isGRPC(contentType: "Application/GRPC"))
        #expect(!GRPC.isGRPC(contentType: "application/grp"))
        #expect(!GRPC.isGRPC(contentType: "application/json"))
        #expect(!GRPC.isGRPC(contentType: nil))
    }
}
