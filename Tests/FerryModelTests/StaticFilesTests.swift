import FerryModel
import Testing

@Suite struct StaticFilesTests {
    @Test(arguments: [
        ("/static/app.js", StaticFiles.Target.path("/srv/www/app.js", isFolderPath: false)),
        ("/static/", .path("/srv/www", isFolderPath: true)),
        ("/static", .path("/srv/www", isFolderPath: true)),
        ("/static/a/", .path("/srv/www/a/", isFolderPath: true)),
        ("/static/a%20b.txt", .path("/srv/www/a b.txt", isFolderPath: false)),
        ("/other/app.js", .notFound),
        ("/staticx/app.js", .notFound),
    ])
    func targets(path: String, expected: StaticFiles.Target) {
        #expect(StaticFiles(root: "/srv/www/", prefix: "/static").target(for: Substring(path)) == expected)
    }

    @Test func pathsThatLeaveTheFolderAreRefused() {
        let files = StaticFiles(root: "/srv/www", prefix: "/")
        for path in ["/../etc/passwd", "/a/%2e%2e/b", "/a//b", "/a%2fb"] {
            guard case .refused = files.target(for: Substring(path)) else {
                Issue.record("\(path) was not refused")
                continue
            }
        }
    }

    @Test func contentTypes() {
        #expect(StaticFiles.contentType(for: "/x/index.HTML") == "text/html; charset=utf-8")
        #expect(StaticFiles.contentType(for: "/x/a.woff2") == "font/woff2")
        #expect(StaticFiles.contentType(for: "/x/README") == "application/octet-stream")
    }
}
