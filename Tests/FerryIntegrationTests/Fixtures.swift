import FerryTestSupport
import Foundation
import NIOPosix

/// Shared pieces of the integration tests: an event loop for origins, YAML builders and scripts.
enum Fixtures {
    static let originGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// A one-listener configuration named "web" with the given routes (YAML list items) and clusters.
    static func config(routes: String, clusters: String, http: String = "", top: String = "") -> String {
        """
        admin: {address: "127.0.0.1:0"}
        \(top)
        listeners:
          - name: web
            address: "127.0.0.1:0"
            http:
        \(http.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
              virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes:
        \(routes.split(separator: "\n").map { "            " + $0 }.joined(separator: "\n"))
        clusters:
        \(clusters.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        """
    }

    /// A TCP server (Python, one connection) that answers `got N` with the number of bytes it read, once
    /// the client has shut down its sending side, then closes: a half-close must reach it for it to answer.
    /// Returns the process (kill it when done) and its port.
    static func halfCloseServer() async throws -> (Subprocess, Int) {
        let server = """
        import socket, sys
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
        print(s.getsockname()[1], flush=True)
        c, _ = s.accept()
        data = b""
        while True:
            d = c.recv(65536)
            if not d: break
            data += d
        c.sendall(b"got " + str(len(data)).encode())
        c.close()
        """
        let script = try writeTemp(server, name: "halfclose-server.py")
        let process = try Subprocess(Prerequisites.path(of: "python3")!, [script])
        guard await Waiting.until({ !process.stdout.isEmpty }), let port = Int(process.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.signal(SIGKILL)
            throw FixtureError(description: "the half-close server did not start: \(process.stderr)")
        }
        return (process, port)
    }

    struct FixtureError: Error, CustomStringConvertible {
        var description: String
    }

    /// A client (Python) for `halfCloseServer`: connects to 127.0.0.1:PORT (through a CONNECT tunnel to
    /// 127.0.0.1:TARGET when given a target), sends 100,000 bytes, shuts down its sending side and prints
    /// what comes back until the end.
    static let halfCloseClient = """
    import socket, sys
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    if len(sys.argv) > 2:
        s.sendall(("CONNECT 127.0.0.1:%s HTTP/1.1\\r\\nHost: 127.0.0.1:%s\\r\\n\\r\\n" % (sys.argv[2], sys.argv[2])).encode())
        head = b""
        while b"\\r\\n\\r\\n" not in head:
            d = s.recv(1)
            if not d: break
            head += d
        if not head.startswith(b"HTTP/1.1 200"):
            print("refused: " + head.decode()); sys.exit(1)
    s.sendall(b"x" * 100000)
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        d = s.recv(65536)
        if not d: break
        answer += d
    print(answer.decode())
    """

    /// An in-process proxy whose one route forwards everything to `origin` (cluster "a").
    static func forwardingProxy(to origin: TestOrigin, http: String = "") throws -> ProxyHarness {
        try ProxyHarness(
            yaml: config(routes: "- match: {prefix: /}\n  forward: {cluster: a}", clusters: "- {name: a, endpoints: [\"{{a}}\"]}", http: http),
            values: ["a": origin.address])
    }

    /// A WebSocket client in Python's standard library: handshake, one echo, optionally wait until a FIFO is
    /// opened by the test, a second echo.
    static let webSocketClient = """
    import socket, os, sys, base64, struct
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    gofile = sys.argv[4] if len(sys.argv) > 4 else None
    s = socket.create_connection((host, port), timeout=20)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\\r\\nHost: %s:%d\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
               "Sec-WebSocket-Key: %s\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n" % (path, host, port, key)).encode())
    buf = b""
    while b"\\r\\n\\r\\n" not in buf:
        d = s.recv(4096)
        if not d:
            sys.exit("closed during handshake: %r" % buf)
        buf += d
    head, rest = buf.split(b"\\r\\n\\r\\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        sys.exit("no 101: " + head.decode())
    print("upgraded", flush=True)
    def send(msg):
        payload = msg.encode()
        mask = os.urandom(4)
        s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    def more():
        global rest
        d = s.recv(4096)
        if not d:
            sys.exit("connection closed while waiting for a frame")
        rest += d
    def recv_frame():
        global rest
        while len(rest) < 2:
            more()
        n = rest[1] & 0x7f
        while len(rest) < 2 + n:
            more()
        payload = rest[2:2 + n]
        rest = rest[2 + n:]
        return payload.decode()
    send("hello")
    print("echo1", recv_frame(), flush=True)
    if gofile:
        # A FIFO made by the test: opening it blocks until the test opens it for writing.
        with open(gofile) as go:
            go.read()
    send("again")
    print("echo2", recv_frame(), flush=True)
    s.close()
    """

    static func writeTemp(_ text: String, name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(UUID().uuidString)-\(name)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
