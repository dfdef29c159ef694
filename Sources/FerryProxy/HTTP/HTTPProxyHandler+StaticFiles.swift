import FerryModel
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A route that serves files from a folder (`kubectl proxy --www`). The file is read on NIO's thread pool,
/// never on the event loop; while it is read the connection reads nothing more.
extension HTTPProxyHandler {
    func serveStaticFile(_ files: StaticFiles, path: Substring, context: ChannelHandlerContext) {
        guard exchange!.method == .GET || exchange!.method == .HEAD else {
            var reply = LocalReply.error(.methodNotAllowed, "static files answer GET and HEAD", flags: .localResponse)
            reply.extraHeaders = [("allow", "GET, HEAD")]
            sendLocalReply(reply, context: context)
            return
        }
        let file: String
        let isFolderPath: Bool
        switch files.target(for: path) {
        case .notFound:
            sendLocalReply(.error(.notFound, "no file for \(path)", flags: .noRoute), context: context)
            return
        case .refused(let problem):
            sendLocalReply(.error(.badRequest, "the request path is not canonical: \(problem)", flags: .downstreamProtocolError), context: context)
            return
        case .path(let p, let folder):
            (file, isFolderPath) = (p, folder)
        }
        let ex = exchange!
        let requestPath = String(path)
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) {
            StaticFileReader.read(file, isFolderPath: isFolderPath)
        }.assumeIsolated().whenComplete { result in
            guard let context = self.context, self.exchange === ex, self.isWaiting else { return }
            switch result {
            case .success(.file(let bytes)):
                var reply = LocalReply(status: .ok, body: "", flags: .localResponse, closeConnection: false)
                reply.bodyBuffer = ByteBuffer(bytes: bytes)
                reply.contentType = StaticFiles.contentType(for: file.hasSuffix("/") || isFolderPath ? "index.html" : file)
                self.sendLocalReply(reply, context: context)
            case .success(.folderWithoutSlash):
                // As Go's FileServer: a folder is addressed with a trailing slash.
                var reply = LocalReply(status: .movedPermanently, body: "", flags: .localResponse, closeConnection: false)
                reply.extraHeaders = [("location", requestPath + "/")]
                self.sendLocalReply(reply, context: context)
            case .success(.notFound):
                self.sendLocalReply(.error(.notFound, "no file for \(requestPath)", flags: .noRoute), context: context)
            case .success(.tooLarge):
                self.sendLocalReply(.error(.internalServerError, "\(requestPath) is larger than \(StaticFileReader.maxBytes) bytes, the most a static file may be", flags: .localResponse), context: context)
            case .success(.unreadable(let reason)):
                self.sendLocalReply(.error(.internalServerError, "cannot read \(requestPath): \(reason)", flags: .localResponse), context: context)
            case .failure(let error):
                self.sendLocalReply(.error(.internalServerError, "cannot read \(requestPath): \(error)", flags: .localResponse), context: context)
            }
        }
    }
}

/// Blocking file reads for static-file routes (run on the thread pool).
enum StaticFileReader {
    static let maxBytes = 64 << 20

    enum Outcome: Sendable {
        case file([UInt8])
        case folderWithoutSlash
        case notFound
        case tooLarge
        case unreadable(String)
    }

    /// The file at `path`; a folder gives its `index.html` (folders are not listed).
    static func read(_ path: String, isFolderPath: Bool) -> Outcome {
        var info = stat()
        guard stat(path, &info) == 0 else { return .notFound }
        var file = path
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard isFolderPath else { return .folderWithoutSlash }
            file = path.hasSuffix("/") ? path + "index.html" : path + "/index.html"
            guard stat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return .notFound }
        } else if isFolderPath || (info.st_mode & S_IFMT) != S_IFREG {
            return .notFound
        }
        guard Int(info.st_size) <= maxBytes else { return .tooLarge }
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .unreadable(String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 { return .unreadable(String(cString: strerror(errno))) }
            if n == 0 { break }
            offset += n
        }
        return .file(Array(bytes[0..<offset]))
    }
}
