import FerryTestSupport
import Foundation
import Testing

/// Certificates and a TLS origin for the tests that speak TLS (egress CONNECT, upstream TLS, fake API server).
enum TLSFixtures {
    /// A fresh temporary folder (removed by the caller).
    static func folder(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A self-signed certificate for `name` (plus `extraSANs` such as `IP:127.0.0.1`), made by openssl in
    /// `dir`: the paths of the certificate (also the CA to trust) and of its key.
    static func certificate(in dir: String, name: String, extraSANs: [String] = []) async throws -> (cert: String, key: String) {
        let cert = dir + "/cert.pem", key = dir + "/key.pem"
        let sans = (["DNS:\(name)"] + extraSANs).joined(separator: ",")
        let made = try await Subprocess.run(Prerequisites.path(of: "openssl")!, [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=\(name)",
            "-addext", "subjectAltName=\(sans)", "-keyout", key, "-out", cert,
        ])
        #expect(made.status == 0, "\(made.stderr)")
        return (cert, key)
    }

    /// An HTTPS origin in Python's standard library on 127.0.0.3, port 0; answers `secure hello via HOST`.
    static let originScript = """
    import http.server, ssl, sys
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            body = ("secure hello via %s\\n" % self.headers.get("Host")).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.3", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """

    /// Starts the TLS origin with `cert`/`key` and waits until it prints its port. Stop it with SIGKILL.
    static func startOrigin(in dir: String, cert: String, key: String) async throws -> (process: Subprocess, port: Int) {
        try originScript.write(toFile: dir + "/tls.py", atomically: true, encoding: .utf8)
        return try await startServer(Prerequisites.path(of: "python3")!, [dir + "/tls.py", cert, key])
    }

    /// Starts a server that prints the port it listens on as its first line, and waits for that line. Stop it
    /// with SIGKILL.
    static func startServer(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> (process: Subprocess, port: Int) {
        let process = try Subprocess(executable, arguments, environment: environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { $1 })
        #expect(await Waiting.until { !process.stdout.isEmpty }, "the server printed no port: \(process.stderr)")
        guard let port = Int(process.stdout.split(separator: "\n").first?.trimmingCharacters(in: .whitespaces) ?? "") else {
            process.signal(SIGKILL)
            throw ServerDidNotStart(output: process.stdout + process.stderr)
        }
        return (process, port)
    }

    struct ServerDidNotStart: Error, CustomStringConvertible {
        var output: String
        var description: String { "the server did not print its port: \(output)" }
    }
}
