@testable import FerryProxy
import FerryModel
import Foundation
import Testing

/// The edges of the shared HTTP/1.1 path on an EmbeddedChannel, exact bytes in and out: one canonical path
/// for routing (RFC 3986 §5.2.4), the Host grammar (RFC 9110 §7.2), and the order of answers when bad bytes
/// follow good requests (RFC 9112 §9.3.2).
struct EdgeHardeningPipelineTests {
    static let hosts = [
        VirtualHost(name: "app", domains: [.exact("app.example")], routes: [
            Route(name: "admin", match: RouteMatch(path: .prefix("/admin")), action: .directResponse(status: 403, body: "no\n")),
            Route(name: "rest", match: RouteMatch(path: .prefix("/")), action: .directResponse(status: 200, body: "app\n")),
        ]),
        VirtualHost(name: "any", domains: [.any], routes: [
            Route(name: "open", match: RouteMatch(path: .prefix("/")), action: .directResponse(status: 200, body: "any\n")),
        ]),
    ]

    func fixture(_ configure: (inout HTTPConnectionManager) -> Void = { _ in }) throws -> PipelineFixture {
        try PipelineFixture(virtualHosts: Self.hosts, configure: configure)
    }

    /// Every status line in `out` (bodies here end in a newline, so each status line starts a line).
    func statusLines(_ out: String) -> [String] {
        out.split(whereSeparator: \.isNewline).map(String.init).filter { $0.hasPrefix("HTTP/1.1 ") }
    }

    func status(_ out: String) -> String {
        out.components(separatedBy: "\r\n").first ?? ""
    }

    @Test(arguments: ["/admin", "/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2e/admin/x", "//admin", "/./admin", "/%61dmin",
                      "/admin;x=y", "/public/..;x=y/admin", "/admin/", "/x/../../admin"])
    func everySpellingOfAPathReachesTheRouteOfItsCanonicalForm(path: String) throws {
        let f = try fixture()
        let out = try f.exchange("GET \(path) HTTP/1.1\r\nHost: app.example\r\n\r\n")
        #expect(status(out) == "HTTP/1.1 403 Forbidden", "\(path): \(out)")
        #expect(f.isOpen)
    }

    @Test(arguments: ["/a%2Fadmin", "/a%5cadmin", "/a\\admin", "/a#x"])
    func encodedSlashesBackslashesAndFragmentsAre400AndClose(path: String) throws {
        let f = try fixture()
        let out = try f.exchange("GET \(path) HTTP/1.1\r\nHost: app.example\r\n\r\nGET / HTTP/1.1\r\nHost: app.example\r\n\r\n")
        #expect(status(out) == "HTTP/1.1 400 Bad Request", "\(path): \(out)")
        #expect(!out.contains("200 OK"))
        #expect(!f.isOpen)
    }

    @Test func escapedSlashesMayBeKeptAndAreThenRoutedUndecoded() throws {
        let f = try fixture { $0.pathNormalization.escapedSlashes = .keep }
        let out = try f.exchange("GET /x%2fadmin HTTP/1.1\r\nHost: app.example\r\n\r\n")
        #expect(status(out) == "HTTP/1.1 200 OK")
    }

    @Test(arguments: ["APP.EXAMPLE", "app.example:80", "App.Example.", "app.example.:8080"])
    func virtualHostsMatchWithoutCasePortOrTrailingDot(host: String) throws {
        let f = try fixture()
        let out = try f.exchange("GET /admin HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        #expect(status(out) == "HTTP/1.1 403 Forbidden", "\(host)")
    }

    @Test(arguments: ["app example", "user@app.example", "app.example:80:80", "app.example:http", "app..example", "app.example..", "[::1"])
    func aHostOutsideTheGrammarIs400AndClose(host: String) throws {
        let f = try fixture()
        let out = try f.exchange("GET /admin HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        #expect(status(out) == "HTTP/1.1 400 Bad Request", "\(host): \(out)")
        #expect(!f.isOpen, "\(host)")
    }

    @Test func aValidRequestFollowedByGarbageIsAnsweredFirst() throws {
        let f = try fixture()
        let out = try f.exchange("GET /ok HTTP/1.1\r\nHost: app.example\r\n\r\nGET /ok HTTP/1.1\r\nHost: app.example\r\n\r\n\u{1}\u{2}garbage\r\n\r\n")
        let statuses = statusLines(out)
        #expect(statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"], "\(out)")
        #expect(out.hasSuffix("400 Bad Request: malformed request (the request line is not METHOD TARGET HTTP/1.1)\n"), "\(out)")
        #expect(!f.isOpen)
    }

    @Test func aFramingErrorWhileDiscardingABodyStillGets400() throws {
        let f = try fixture()
        let out = try f.exchange("POST /admin HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
        let statuses = statusLines(out)
        #expect(statuses == ["HTTP/1.1 403 Forbidden", "HTTP/1.1 400 Bad Request"], "\(out)")
        #expect(!f.isOpen)
    }

    @Test func anHTTP11RequestWithoutHostIs400EvenOnAForwardProxy() throws {
        let f = try PipelineFixture(virtualHosts: []) {
            $0.forwardProxy = ForwardProxySettings(policy: AccessPolicy(name: "p", rules: []))
        }
        let out = try f.exchange("GET http://example.com/ HTTP/1.1\r\n\r\n")
        #expect(status(out) == "HTTP/1.1 400 Bad Request")
        #expect(out.hasSuffix("missing Host\n"))
        #expect(!f.isOpen)
    }
}
