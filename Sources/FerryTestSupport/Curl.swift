import Foundation

/// curl as the real HTTP client of integration tests.
public enum Curl {
    public struct Response: Sendable {
        public var exitCode: Int32?
        public var status: Int
        public var headers: [(String, String)]
        public var body: String
        public var stderr: String

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// One request: `curl -sS -D headers -o body -w %{http_code} [extra] url`.
    public static func request(_ url: String, _ extra: [String] = [], timeout: Duration = .seconds(60)) async throws -> Response {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-curl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let headerFile = dir.appendingPathComponent("headers").path
        let bodyFile = dir.appendingPathComponent("body").path
        let args = ["-sS", "--max-time", "\(Int(timeout.components.seconds))", "-D", headerFile, "-o", bodyFile, "-w", "%{http_code}"] + extra + [url]
        let result = try await Subprocess.run(curlPath, args, timeout: timeout + .seconds(5))
        let headerText = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        // With redirects or 1xx there are several header blocks; keep the last.
        let blocks = headerText.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        var headers: [(String, String)] = []
        for line in (blocks.last ?? "").components(separatedBy: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let body = (try? String(contentsOfFile: bodyFile, encoding: .utf8)) ?? ""
        return Response(exitCode: result.status, status: Int(result.stdout) ?? 0, headers: headers, body: body, stderr: result.stderr)
    }

    public static var curlPath: String { Prerequisites.path(of: "curl") ?? "/usr/bin/curl" }
}
