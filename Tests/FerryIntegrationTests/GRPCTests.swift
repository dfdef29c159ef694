import FerryTestSupport
import Foundation
import Testing

/// gRPC through Ferry with Python's grpcio on both ends: h2c from the client, `protocol: h2` to the server.
/// Unary, server streaming, a status with its message in trailers, and a deadline.
@Suite(.serialized)
struct GRPCTests {
    static let server = """
    import grpc, sys, time
    from concurrent import futures
    def unary(req, ctx): return req[::-1]
    def stream(req, ctx):
        for i in range(3): yield req + b"-%d" % i
    def fail(req, ctx): ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing: 50% gone")
    def slow(req, ctx):  # a method slower than the caller's deadline: what the deadline case calls
        time.sleep(2); return req
    # PEERS=N: the Peer calls wait for each other (N at once, or a timeout), then say which connection
    # each came on: only calls that are in flight together can meet here.
    import os, threading
    meeting = threading.Barrier(int(os.environ.get("PEERS", "1")), timeout=10)
    def peer(req, ctx):
        meeting.wait(); return ctx.peer().encode()
    ident = lambda b: b
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, request_deserializer=ident, response_serializer=ident),
        "Stream": grpc.unary_stream_rpc_method_handler(stream, request_deserializer=ident, response_serializer=ident),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, request_deserializer=ident, response_serializer=ident),
        "Slow": grpc.unary_unary_rpc_method_handler(slow, request_deserializer=ident, response_serializer=ident),
        "Peer": grpc.unary_unary_rpc_method_handler(peer, request_deserializer=ident, response_serializer=ident),
    }
    # STREAMS=N: the server allows N concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    import os
    options = [("grpc.max_concurrent_streams", int(os.environ["STREAMS"]))] if "STREAMS" in os.environ else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", handlers),))
    if len(sys.argv) > 2:
        creds = grpc.ssl_server_credentials([(open(sys.argv[2], "rb").read(), open(sys.argv[1], "rb").read())])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start(); print(port, flush=True); server.wait_for_termination()
    """

    static let client = """
    import grpc, sys, time
    ch = grpc.insecure_channel(sys.argv[1])
    ident = lambda b: b
    call = lambda kind, name: getattr(ch, kind)("/test.Echo/" + name, request_serializer=ident, response_deserializer=ident)
    print("unary", call("unary_unary", "Unary")(b"hello", timeout=10))
    print("stream", list(call("unary_stream", "Stream")(b"m", timeout=10)))
    try:
        call("unary_unary", "Fail")(b"x", timeout=10); print("fail none")
    except grpc.RpcError as e:
        print("fail", e.code().name, e.details())
    start = time.time()
    try:
        call("unary_unary", "Slow")(b"x", timeout=0.3); print("slow none")
    except grpc.RpcError as e:
        print("slow", e.code().name, "%.1f" % (time.time() - start))
    """

    @Test(.requires("python3")) func grpcPassesThroughWithTrailersAndDeadlines() async throws {
        try await Self.passThrough(overTLS: false)
    }

    @Test(.requires("python3", "openssl")) func grpcPassesThroughToATLSServer() async throws {
        try await Self.passThrough(overTLS: true)
    }

    /// Ferry on an h2c listener (`clear`) in front of the gRPC server on `port` (`protocol: h2`).
    static func ferryInFront(of port: Int, dir: String, binary: String, clusterTLS: String = "") async throws -> FerryProcess {
        try """
        admin: {address: "127.0.0.1:0"}
        listeners:
          - name: clear
            address: "127.0.0.1:0"
            http:
              http2: {prior_knowledge: true}
              virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, forward: {cluster: grpc}}]}]
        clusters:
          - {name: grpc, protocol: h2, endpoints: ["127.0.0.1:\(port)"]\(clusterTLS)}
        """.write(toFile: dir + "/ferry.yaml", atomically: true, encoding: .utf8)
        return try await FerryProcess(binary: binary, arguments: ["run", "-c", dir + "/ferry.yaml", "--threads", "1"], configPath: dir + "/ferry.yaml")
    }

    /// A grpcio server (over TLS with ALPN h2, or h2c), Ferry in front with `protocol: h2`, a grpcio client.
    static func passThrough(overTLS: Bool) async throws {
        guard let python = Prerequisites.python(with: "grpc", install: "python3 -m pip install grpcio"), let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("grpc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.server.write(toFile: dir + "/server.py", atomically: true, encoding: .utf8)
        try Self.client.write(toFile: dir + "/client.py", atomically: true, encoding: .utf8)
        var serverArguments = [dir + "/server.py"]
        var clusterTLS = ""
        if overTLS {
            let (cert, key) = try await TLSFixtures.certificate(in: dir, name: "grpc.test")
            serverArguments += [cert, key]
            clusterTLS = ", tls: {ca_file: \(cert), server_name: grpc.test}"
        }
        let (server, port) = try await TLSFixtures.startServer(python, serverArguments)
        defer { server.signal(SIGKILL) }
        let ferry = try await Self.ferryInFront(of: port, dir: dir, binary: binary, clusterTLS: clusterTLS)
        defer { Task { await ferry.stop() } }
        let r = try await Subprocess.run(python, [dir + "/client.py", "127.0.0.1:\(try #require(ferry.port("clear")))"], timeout: .seconds(60))
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines == ["unary b'olleh'", "stream [b'm-0', b'm-1', b'm-2']", "fail NOT_FOUND no such thing: 50% gone", "slow DEADLINE_EXCEEDED 0.3"], "\(lines) \(r.stderr)")
        #expect(await Waiting.until { ferry.accessLog.count >= 4 })
        #expect(ferry.accessLog.allSatisfy { line in line.contains("\"protocol\":\"HTTP/2\"") && line.contains("\"cluster\":\"grpc\"") }, "\(ferry.accessLog)")
    }

    /// An upstream that allows one stream per connection: concurrent requests get connections of their own
    /// instead of waiting in line on one.
    @Test(.requires("python3")) func aServerAllowingFewStreamsGetsMoreConnections() async throws {
        guard let python = Prerequisites.python(with: "grpc", install: "python3 -m pip install grpcio"), let binary = Prerequisites.ferryBinary() else { return }
        let dir = try TLSFixtures.folder("grpc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.server.write(toFile: dir + "/server.py", atomically: true, encoding: .utf8)
        try """
        import grpc, sys
        from concurrent import futures
        ch = grpc.insecure_channel(sys.argv[1])
        peer = ch.unary_unary("/test.Echo/Peer", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        unary = ch.unary_unary("/test.Echo/Unary", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        print("warm", unary(b"x", timeout=10).decode(), flush=True)  # a first connection, its SETTINGS read
        with futures.ThreadPoolExecutor(4) as pool:
            for answer in pool.map(lambda _: peer(b"", timeout=10), range(4)):
                print("peer", answer.decode(), flush=True)
        """.write(toFile: dir + "/client.py", atomically: true, encoding: .utf8)
        let (server, port) = try await TLSFixtures.startServer(python, [dir + "/server.py"], environment: ["STREAMS": "1", "PEERS": "4"])
        defer { server.signal(SIGKILL) }
        let ferry = try await Self.ferryInFront(of: port, dir: dir, binary: binary)
        defer { Task { await ferry.stop() } }
        let r = try await Subprocess.run(python, [dir + "/client.py", "127.0.0.1:\(try #require(ferry.port("clear")))"], timeout: .seconds(60))
        let peers = r.stdout.split(separator: "\n").filter { $0.hasPrefix("peer ") }
        #expect(peers.count == 4, "\(r.stdout) \(r.stderr)")
        // Four calls that must be in flight together (they wait for each other) on a server allowing one stream
        // per connection: four connections. Queued on one, they would time out at the meeting.
        #expect(Set(peers).count == 4, "\(peers)")
    }
}
