import FerryConfig
import FerryTestSupport
import Foundation
import Testing

/// HTTP/2 to clients: ALPN `h2` on TLS, prior knowledge on cleartext when enabled, with real clients (curl,
/// h2load, Python's `h2` for frame-level cases) and a real HTTP/1.1 origin behind.
@Suite(.serialized)
struct HTTP2Tests {
    struct Setup {
        let dir: String
        let origin: TestOrigin
        let ferry: FerryProcess
        var tls: Int { ferry.port("tls")! }
        var clear: Int { ferry.port("clear")! }
    }

    static func withFerry(_ body: (Setup) async throws -> Void) async throws {
        guard let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("h2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try SelfSignedCertificate(commonName: "h2.test", dnsNames: ["h2.test"])
        try made.certificatePEM.write(toFile: dir + "/cert.pem", atomically: true, encoding: .utf8)
        try made.keyPEM.write(toFile: dir + "/key.pem", atomically: true, encoding: .utf8)
        let origin = try TestOrigin(name: "origin", group: Fixtures.originGroup)
        defer { try? origin.channel.close().wait() }
        let routes = "routes: [{match: {prefix: /local}, direct_response: {status: 200, body: \"local\\n\"}}, {match: {prefix: /dead}, forward: {cluster: dead}}, {match: {prefix: /}, forward: {cluster: origin}}]"
        try """
        admin: {address: "127.0.0.1:0"}
        listeners:
          - name: tls
            address: "127.0.0.1:0"
            tls: {certificate_file: cert.pem, key_file: key.pem}
            http:
              http2: {max_concurrent_streams: 64, max_resets_per_30s: 50}
              virtual_hosts: [{name: all, domains: ["*"], \(routes)}]
          - name: clear
            address: "127.0.0.1:0"
            http:
              http2: {prior_knowledge: true}
              virtual_hosts: [{name: all, domains: ["*"], \(routes)}]
        clusters:
          - {name: origin, endpoints: ["\(origin.address)"]}
          - {name: dead, endpoints: ["127.0.0.1:\(LocalPorts.unused())"]}
        """.write(toFile: dir + "/ferry.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", dir + "/ferry.yaml", "--threads", "1"], configPath: dir + "/ferry.yaml")
        do {
            try await body(Setup(dir: dir, origin: origin, ferry: ferry))
        } catch {
            await ferry.stop()
            throw error
        }
        await ferry.stop()
    }

    @Test(.requires("curl")) func curlSpeaksH2OverTLSAndPriorKnowledgeInTheClear() async throws {
        try await Self.withFerry { s in
            // The status, the protocol version curl used, and the body.
            func versioned(_ url: String, _ extra: [String]) async throws -> (status: String, version: String, body: String) {
                let dir = s.dir + "/out-\(UUID().uuidString)"
                let r = try await Subprocess.run(Curl.curlPath, ["-sS", "-k", "-o", dir, "-w", "%{http_code} %{http_version}"] + extra + [url])
                let parts = r.stdout.split(separator: " ")
                return (String(parts.first ?? ""), String(parts.last ?? ""), (try? String(contentsOfFile: dir, encoding: .utf8)) ?? "")
            }
            var r = try await versioned("https://127.0.0.1:\(s.tls)/items?x=1", ["--http2"])
            #expect(r.status == "200" && r.version == "2", "\(r)")
            #expect(r.body.contains("\"uri\":\"\\/items?x=1\""), "\(r.body)")
            r = try await versioned("http://127.0.0.1:\(s.clear)/local", ["--http2-prior-knowledge"])
            #expect(r == ("200", "2", "local\n"))
            // A body without Content-Length reaches the origin whole (sent chunked on HTTP/1.1).
            let body = String(repeating: "a", count: 200_000)
            try body.write(toFile: s.dir + "/body", atomically: true, encoding: .utf8)
            r = try await versioned("https://127.0.0.1:\(s.tls)/upload", ["--http2", "-X", "POST", "-H", "Transfer-Encoding:", "--data-binary", "@" + s.dir + "/body"])
            #expect(r.status == "200" && r.version == "2" && r.body.contains("\"body_bytes\":200000"), "\(r.status) \(r.body)")
            // A large response through the stream's flow control; HEAD has no body.
            r = try await versioned("https://127.0.0.1:\(s.tls)/bytes/3000000", ["--http2"])
            #expect(r.status == "200" && r.body.utf8.count == 3_000_000)
            let head = try await Subprocess.run(Curl.curlPath, ["-sS", "-k", "--http2", "-I", "https://127.0.0.1:\(s.tls)/bytes/10"])
            #expect(head.stdout.hasPrefix("HTTP/2 200") && head.stdout.contains("content-length: 10"), "\(head.stdout)")
            // Cookies split into crumbs are joined for HTTP/1.1.
            r = try await versioned("https://127.0.0.1:\(s.tls)/c", ["--http2", "-H", "cookie: a=1", "-H", "cookie: b=2"])
            #expect(r.body.contains("a=1; b=2"), "\(r.body)")
            // Upgrade: h2c on cleartext is not followed: HTTP/1.1 answers.
            r = try await versioned("http://127.0.0.1:\(s.clear)/local", ["--http2"])
            #expect(r == ("200", "1.1", "local\n"))
            // The TLS listener without h2 offered falls back to HTTP/1.1 for clients that do not ask.
            r = try await versioned("https://127.0.0.1:\(s.tls)/local", ["--http1.1"])
            #expect(r == ("200", "1.1", "local\n"))
            #expect(s.ferry.accessLog.contains { $0.contains("\"protocol\":\"HTTP/2\"") && $0.contains("\"path\":\"/items") }, "\(s.ferry.accessLog)")
        }
    }

    @Test(.requires("h2load")) func h2loadMultiplexesStreams() async throws {
        try await Self.withFerry { s in
            let r = try await Subprocess.run(Prerequisites.path(of: "h2load")!, ["-n", "2000", "-c", "2", "-m", "32", "https://127.0.0.1:\(s.tls)/local"])
            #expect(r.stdout.contains("2000 succeeded, 0 failed, 0 errored"), "\(r.stdout)")
            let clear = try await Subprocess.run(Prerequisites.path(of: "h2load")!, ["-n", "1000", "-c", "2", "-m", "16", "http://127.0.0.1:\(s.clear)/x"])
            #expect(clear.stdout.contains("1000 succeeded, 0 failed, 0 errored"), "\(clear.stdout)")
            #expect(clear.stdout.contains("1000 2xx"), "\(clear.stdout)")
        }
    }

    /// Frame-level cases with Python's `h2`: prints one line per case.
    static let framesScript = """
    import socket, sys, h2.connection, h2.config, h2.events, h2.errors, h2.exceptions, h2.settings
    port = int(sys.argv[1])

    def connect():
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8", validate_outbound_headers=False, normalize_outbound_headers=False, validate_inbound_headers=False))
        c.initiate_connection()
        s.sendall(c.data_to_send())
        return s, c

    def events(s, c, until, limit=200):
        seen = []
        for _ in range(limit):
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                seen.append("closed")
                break
            if not data:
                seen.append("closed")
                break
            try:
                for e in c.receive_data(data):
                    seen.append(e)
                s.sendall(c.data_to_send())
            except (OSError, h2.exceptions.ProtocolError):
                seen.append("closed")
                break
            if any(until(e) for e in seen):
                break
        return seen

    base = [(":method", "GET"), (":scheme", "http"), (":authority", "h2.test")]

    # 1. A request with a connection-specific field is malformed: the stream is reset, nothing goes upstream.
    s, c = connect()
    c.send_headers(1, base + [(":path", "/bad"), ("connection", "keep-alive")], end_stream=True)
    s.sendall(c.data_to_send())
    ev = events(s, c, lambda e: isinstance(e, (h2.events.StreamReset, h2.events.ResponseReceived)))
    print("malformed", [f"reset {e.error_code.name}" if isinstance(e, h2.events.StreamReset) else type(e).__name__ for e in ev if not isinstance(e, (h2.events.RemoteSettingsChanged, h2.events.SettingsAcknowledged, h2.events.WindowUpdated))])
    s.close()

    # 2. Missing :path: a stream error too.
    s, c = connect()
    c.send_headers(1, base, end_stream=True)
    s.sendall(c.data_to_send())
    ev = events(s, c, lambda e: isinstance(e, (h2.events.StreamReset, h2.events.ResponseReceived, h2.events.ConnectionTerminated)))
    print("nopath", [f"reset {e.error_code.name}" if isinstance(e, h2.events.StreamReset) else (f"goaway {e.error_code.name}" if isinstance(e, h2.events.ConnectionTerminated) else type(e).__name__) for e in ev if isinstance(e, (h2.events.StreamReset, h2.events.ResponseReceived, h2.events.ConnectionTerminated))])
    s.close()

    # 3. Rapid reset: streams opened and cancelled at once, over and over: the connection ends with GOAWAY
    #    (read after every batch: once the server closes, a reset may discard what was not read yet).
    s, c = connect()
    s.settimeout(0.05)
    stream = 1
    goaway = None
    for round in range(60):
        try:
            for _ in range(10):
                c.send_headers(stream, base + [(":path", "/slow/500")], end_stream=True)
                c.reset_stream(stream, error_code=h2.errors.ErrorCodes.CANCEL)
                stream += 2
            s.sendall(c.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            pass
        for e in events(s, c, lambda e: isinstance(e, h2.events.ConnectionTerminated) or e == "closed", limit=20):
            if isinstance(e, h2.events.ConnectionTerminated):
                goaway = e.error_code
        if goaway is not None:
            break
    print("rapidreset", goaway.name if goaway is not None else "none", "after", stream // 2, "streams")
    s.close()

    # 4. Concurrent streams over the advertised limit are refused.
    s, c = connect()
    ev = events(s, c, lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
    limit = c.remote_settings.max_concurrent_streams
    print("maxstreams", limit)
    s.close()

    # 5. A header block split into many CONTINUATION frames: the connection is closed with GOAWAY.
    s, c = connect()
    events(s, c, lambda e: isinstance(e, h2.events.RemoteSettingsChanged), limit=2)
    import hpack, struct
    block = hpack.Encoder().encode(base + [(":path", "/")] + [("x-pad-%d" % i, "v" * 10) for i in range(200)])
    pieces = [block[i:i + 16] for i in range(0, len(block), 16)]
    frames = struct.pack(">I", len(pieces[0]))[1:] + bytes([0x1, 0x1]) + struct.pack(">I", 3) + pieces[0]
    for i, piece in enumerate(pieces[1:]):
        last = i == len(pieces) - 2
        frames += struct.pack(">I", len(piece))[1:] + bytes([0x9, 0x4 if last else 0x0]) + struct.pack(">I", 3) + piece
    s.sendall(frames)
    ev = events(s, c, lambda e: isinstance(e, h2.events.ConnectionTerminated) or e == "closed")
    print("continuation", [f"goaway {e.error_code.name}" if isinstance(e, h2.events.ConnectionTerminated) else (e if isinstance(e, str) else type(e).__name__) for e in ev if isinstance(e, (str, h2.events.ConnectionTerminated, h2.events.ResponseReceived))])
    s.close()
    """

    @Test(.requires("python3")) func framesThatBreakTheRulesAreAnsweredWithTheRightCodes() async throws {
        guard let python = Prerequisites.python(with: "h2", install: "python3 -m pip install h2") else { return }
        try await Self.withFerry { s in
            try Self.framesScript.write(toFile: s.dir + "/frames.py", atomically: true, encoding: .utf8)
            let r = try await Subprocess.run(python, [s.dir + "/frames.py", "\(s.clear)"], timeout: .seconds(120))
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains("malformed ['reset PROTOCOL_ERROR']"), "\(lines)")
            #expect(lines.contains { $0.hasPrefix("nopath ['reset PROTOCOL_ERROR']") || $0.hasPrefix("nopath ['goaway PROTOCOL_ERROR']") }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("rapidreset ENHANCE_YOUR_CALM after") }, "\(lines)")
            #expect(lines.contains("maxstreams 128"), "\(lines)")
            #expect(lines.contains { $0.hasPrefix("continuation") && $0.contains("goaway") }, "\(lines)")
            // Nothing malformed reached the origin.
            #expect(!s.origin.lastHeaders.contains { $0.0.lowercased() == "connection" && $0.1 == "keep-alive" })
        }
    }

    /// An upstream that accepts connections and never reads them; prints its port.
    static let stuckServer = """
    import socket, time
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
    print(s.getsockname()[1], flush=True)
    held = []
    while True:
        c, _ = s.accept(); held.append(c)
    """

    /// Stream A uploads to an upstream that reads nothing, stream B asks for a local answer on the same
    /// connection: A's window closes (the client cannot send it all), B completes.
    static let flowScript = """
    import socket, sys, time, h2.connection, h2.config, h2.events
    port = int(sys.argv[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=0.1)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    c.initiate_connection(); s.sendall(c.data_to_send())
    base = [(":scheme", "http"), (":authority", "h2.test")]

    def pump():
        try:
            data = s.recv(65536)
        except socket.timeout:
            return []
        events = c.receive_data(data)
        s.sendall(c.data_to_send())
        return events

    # Phase 1: stream 1 uploads to the upstream that reads nothing, until its window stays shut for 1.5 s.
    c.send_headers(1, base + [(":method", "POST"), (":path", "/stuck")])
    sent, payload, last_progress, start = 0, b"x" * 16384, time.time(), time.time()
    while time.time() - last_progress < 1.5 and sent < 64_000_000 and time.time() - start < 30:
        window = min(c.local_flow_control_window(1), c.max_outbound_frame_size)
        if window > 0:
            c.send_data(1, payload[:min(window, len(payload))]); sent += min(window, len(payload)); last_progress = time.time()
            s.sendall(c.data_to_send())
        pump()
    stalled = time.time() - last_progress >= 1.5
    # Phase 2: stream 3 on the same connection is answered while stream 1 stays stalled.
    c.send_headers(3, base + [(":method", "GET"), (":path", "/local")], end_stream=True)
    s.sendall(c.data_to_send())
    b_done, deadline = False, time.time() + 5
    while time.time() < deadline and not b_done:
        for e in pump():
            if isinstance(e, h2.events.StreamEnded) and e.stream_id == 3:
                b_done = True
    print("stalled", stalled, "b_done", b_done, "a_sent", sent)
    """

    @Test(.requires("python3")) func aStalledUpstreamHoldsBackOnlyItsOwnStream() async throws {
        guard let python = Prerequisites.python(with: "h2", install: "python3 -m pip install h2"), let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("h2flow")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.stuckServer.write(toFile: dir + "/stuck.py", atomically: true, encoding: .utf8)
        let (stuck, stuckPort) = try await TLSFixtures.startServer(python, [dir + "/stuck.py"])
        defer { stuck.signal(SIGKILL) }
        try """
        admin: {address: "127.0.0.1:0"}
        listeners:
          - name: clear
            address: "127.0.0.1:0"
            http:
              http2: {prior_knowledge: true}
              virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /local}, direct_response: {status: 200, body: "local\\n"}}, {match: {prefix: /stuck}, forward: {cluster: stuck}, timeout: 60s}]}]
        clusters:
          - {name: stuck, endpoints: ["127.0.0.1:\(stuckPort)"]}
        """.write(toFile: dir + "/ferry.yaml", atomically: true, encoding: .utf8)
        let ferry = try await FerryProcess(binary: binary, arguments: ["run", "-c", dir + "/ferry.yaml", "--threads", "1"], configPath: dir + "/ferry.yaml")
        defer { Task { await ferry.stop() } }
        try Self.flowScript.write(toFile: dir + "/flow.py", atomically: true, encoding: .utf8)
        let r = try await Subprocess.run(python, [dir + "/flow.py", "\(try #require(ferry.port("clear")))"], timeout: .seconds(60))
        #expect(r.stdout.hasPrefix("stalled True b_done True"), "\(r.stdout) \(r.stderr)")
    }

    /// gRPC requests: Ferry's errors arrive as Trailers-Only gRPC statuses; `grpc-timeout` shortens the wait.
    static let grpcScript = """
    import socket, sys, time, h2.connection, h2.config, h2.events
    port = int(sys.argv[1])
    def call(path, extra=()):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        c.initiate_connection(); s.sendall(c.data_to_send())
        c.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "h2.test"), (":path", path),
                           ("content-type", "application/grpc"), ("te", "trailers")] + list(extra))
        # The message follows the head 100 ms later: the deadline runs from the end of the request.
        s.sendall(c.data_to_send()); time.sleep(0.1)
        c.send_data(1, b"\\x00\\x00\\x00\\x00\\x00", end_stream=True)
        s.sendall(c.data_to_send())
        start, headers, ended = time.time(), [], False
        while not ended:
            data = s.recv(65536)
            if not data:
                break
            for e in c.receive_data(data):
                if isinstance(e, h2.events.ResponseReceived):
                    headers = e.headers
                if isinstance(e, h2.events.StreamEnded):
                    ended = True
            s.sendall(c.data_to_send())
        s.close()
        h = dict(headers)
        return f"{h.get(':status')} {h.get('content-type')} grpc-status={h.get('grpc-status')} ended={ended} took={time.time() - start:.2f}"
    print("dead", call("/dead"))
    print("deadline", call("/slow/3000", [("grpc-timeout", "300m")]))
    """

    @Test(.requires("python3")) func grpcClientsGetGRPCStatusesAndTheirDeadline() async throws {
        guard let python = Prerequisites.python(with: "h2", install: "python3 -m pip install h2") else { return }
        try await Self.withFerry { s in
            try Self.grpcScript.write(toFile: s.dir + "/grpc.py", atomically: true, encoding: .utf8)
            let r = try await Subprocess.run(python, [s.dir + "/grpc.py", "\(s.clear)"], timeout: .seconds(60))
            let lines = r.stdout.split(separator: "\n").map(String.init)
            // No endpoint reachable: UNAVAILABLE (14) in one HEADERS frame that ends the stream.
            let dead = lines.first(where: { line in line.hasPrefix("dead ") }) ?? ""
            #expect(dead.hasPrefix("dead 200 application/grpc grpc-status=14 ended=True"), "\(lines) \(r.stderr)")
            // grpc-timeout 300 ms beats the route's 15 s: the slow origin is given up on after about 0.3 s, with
            // DEADLINE_EXCEEDED (4).
            let deadline = lines.first(where: { line in line.hasPrefix("deadline ") }) ?? ""
            #expect(deadline.hasPrefix("deadline 200 application/grpc grpc-status=4 ended=True"), "\(lines)")
            if let took = deadline.split(separator: "=").last.flatMap({ Double($0) }) { #expect(took < 2.0, "\(deadline)") }
        }
    }
}
