/// Files served from a folder (`kubectl proxy --www DIR --www-prefix /static/`): the request path minus
/// `prefix` names a file under `root`. Pure decisions only; reading is the data plane's.
public struct StaticFiles: Sendable, Hashable, Encodable {
    /// The folder served.
    public var root: String
    /// Removed from the request path before it names a file (`/static/`); `/` removes nothing.
    public var prefix: String

    public init(root: String, prefix: String = "/") {
        self.root = root
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
    }

    public enum Target: Sendable, Hashable {
        /// The file (or folder) under `root` to serve; `isFolderPath` when the request path ends in `/`.
        case path(String, isFolderPath: Bool)
        case notFound
        /// 400: the path is not canonical (`..`, `//`, an encoded `/`), so it cannot name a file safely.
        case refused(String)
    }

    /// What a request path (without query) asks for.
    public func target(for requestPath: Substring) -> Target {
        if let problem = CanonicalPath.problem(requestPath) { return .refused(problem) }
        let decoded = RequestFilter.percentDecoded(String(requestPath))
        guard decoded.hasPrefix(prefix) || decoded + "/" == prefix else { return .notFound }
        let relative = decoded.dropFirst(min(prefix.count, decoded.count))
        if relative.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) || relative.contains("\0") { return .refused("the path names a parent folder") }
        var base = root
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        return .path(relative.isEmpty ? base : base + "/" + relative, isFolderPath: relative.isEmpty || relative.hasSuffix("/"))
    }

    /// The Content-Type for a file name, by extension (as Go's `mime.TypeByExtension` for common web files).
    public static func contentType(for path: String) -> String {
        let name = path.split(separator: "/").last ?? ""
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        switch name[name.index(after: dot)...].lowercased() {
        case "html", "htm": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json", "map": return "application/json"
        case "txt": return "text/plain; charset=utf-8"
        case "xml": return "text/xml; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "ico": return "image/x-icon"
        case "webp": return "image/webp"
        case "wasm": return "application/wasm"
        case "woff": return "font/woff"
        case "woff2": return "font/woff2"
        case "pdf": return "application/pdf"
        default: return "application/octet-stream"
        }
    }
}
