import FerryTestSupport
import Foundation

/// An origin (Python, threads) that answers with exact bytes, so tests can send what a well-behaved server
/// never would: it reads each request (head, and a Content-Length or chunked body), appends the request's
/// bytes as received to its log, and answers by path:
/// - `/unasked-101`: `101 Switching Protocols` to a request that asked for nothing;
/// - `/204-with-body`: a 204 with `Content-Length: 38` followed by bytes that look like a whole response;
/// - `/connection-listed`: a 200 whose Connection names `X-Internal`;
/// - `/greeting-101`: `101` to a WebSocket upgrade with the server's first bytes in the same write, then an echo;
/// - anything else: 200 with the request head as received as its body.
final class ScriptedOrigin {
    let process: Subprocess
    let port: Int
    let logPath: String

    static let script = """
    import socket, sys, threading
    log = sys.argv[1]
    lock = threading.Lock()
    def read_request(c, buf):
        while b"\\r\\n\\r\\n" not in buf:
            d = c.recv(65536)
            if not d: return None, b""
            buf += d
        head, rest = buf.split(b"\\r\\n\\r\\n", 1)
        lower = head.lower()
        body = b""
        if b"\\r\\ntransfer-encoding: chunked" in lower:
            while b"\\r\\n0\\r\\n\\r\\n" not in b"\\r\\n" + rest:
                d = c.recv(65536)
                if not d: break
                rest += d
            end = (b"\\r\\n" + rest).index(b"\\r\\n0\\r\\n\\r\\n") + 5
            body, rest = rest[:end], rest[end:]
        else:
            n = 0
            for line in lower.split(b"\\r\\n"):
                if line.startswith(b"content-length:"): n = int(line.split(b":")[1])
            while len(rest) < n:
                d = c.recv(65536)
                if not d: break
                rest += d
            body, rest = rest[:n], rest[n:]
        return head + b"\\r\\n\\r\\n" + body, rest
    def serve(c):
        buf = b""
        while True:
            req, buf = read_request(c, buf)
            if req is None: break
            with lock:
                with open(log, "ab") as f: f.write(req + b"\\n=====\\n")
            path = req.split(b" ")[1]
            if path == b"/unasked-101":
                c.sendall(b"HTTP/1.1 101 Switching Protocols\\r\\nConnection: upgrade\\r\\nUpgrade: h2c\\r\\n\\r\\nraw bytes of another protocol")
            elif path == b"/greeting-101":
                c.sendall(b"HTTP/1.1 101 Switching Protocols\\r\\nConnection: upgrade\\r\\nUpgrade: websocket\\r\\n\\r\\nserver greeting")
                while True:
                    d = c.recv(65536)
                    if not d: break
                    c.sendall(d)
                break
            elif path == b"/204-with-body":
                c.sendall(b"HTTP/1.1 204 No Content\\r\\nContent-Length: 38\\r\\n\\r\\nHTTP/1.1 200 OK\\r\\nContent-Length: 4\\r\\n\\r\\nevil")
            elif path == b"/connection-listed":
                c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: X-Internal\\r\\nX-Internal: secret\\r\\nX-Public: yes\\r\\n\\r\\nok")
            else:
                head = req.split(b"\\r\\n\\r\\n", 1)[0]
                c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(head) + head)
        c.close()
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(64)
    print(s.getsockname()[1], flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    """

    init() async throws {
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-scripted-\(UUID().uuidString).log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let scriptPath = try Fixtures.writeTemp(Self.script, name: "scripted-origin.py")
        let started = try Subprocess(Prerequisites.path(of: "python3")!, [scriptPath, logPath])
        process = started
        guard await Waiting.until({ !started.stdout.isEmpty }), let port = Int(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            started.signal(SIGKILL)
            throw Fixtures.FixtureError(description: "the scripted origin did not start: \(process.stderr)")
        }
        self.port = port
    }

    var address: String { "127.0.0.1:\(port)" }

    /// Every request the origin read, as received.
    var requests: [String] {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.components(separatedBy: "\n=====\n").filter { !$0.isEmpty }
    }

    func stop() {
        process.signal(SIGKILL)
    }
}
