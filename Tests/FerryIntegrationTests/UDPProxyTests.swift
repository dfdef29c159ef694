import FerryTestSupport
import Foundation
import Testing

/// `udp_proxy` listeners with Python's sockets as clients and origins: a session per client address, sticky
/// to one endpoint, new clients balanced over the endpoints, answers from the listener's address.
@Suite struct UDPProxyTests {
    static let origin = """
    import socket, sys
    name = sys.argv[1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1], flush=True)
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(name.encode() + b":" + data, peer)
    """

    /// Six clients (six source ports) ask once each; the last one asks three times more. Prints each answer
    /// and the address it came from.
    static let client = """
    import socket, sys
    port = int(sys.argv[1])
    def ask(s, msg):
        s.sendto(msg, ("127.0.0.1", port))
        data, peer = s.recvfrom(2048)
        return data.decode() + " from " + str(peer[1])
    for i in range(6):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        print(ask(s, b"hello"))
    for i in range(3):
        print(ask(s, b"again"))
    """

    @Test(.requires("python3")) func sessionsStickAndNewClientsAreBalanced() async throws {
        guard Prerequisites.have("python3") else { return }
        let originScript = try Fixtures.writeTemp(Self.origin, name: "udp-origin.py")
        let a = try Subprocess(Prerequisites.path(of: "python3")!, [originScript, "a"])
        let b = try Subprocess(Prerequisites.path(of: "python3")!, [originScript, "b"])
        defer { a.signal(SIGKILL); b.signal(SIGKILL) }
        #expect(await Waiting.until { !a.stdout.isEmpty && !b.stdout.isEmpty })
        let portA = a.stdout.trimmingCharacters(in: .whitespacesAndNewlines), portB = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let proxy = try ProxyHarness(yaml: """
        listeners:
          - {name: dns, address: "127.0.0.1:0", udp_proxy: {cluster: dns, idle_timeout: 30s}}
        clusters:
          - {name: dns, endpoints: ["127.0.0.1:\(portA)", "127.0.0.1:\(portB)"]}
        """)
        defer { Task { await proxy.stop() } }
        let port = try #require(proxy.server.listenerAddresses["dns"]?.port)
        let clientScript = try Fixtures.writeTemp(Self.client, name: "udp-client.py")
        let result = try await Subprocess.run(Prerequisites.path(of: "python3")!, [clientScript, "\(port)"], timeout: .seconds(40))
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 9, "\(result.stdout)\(result.stderr)")
        #expect(lines.allSatisfy { $0.hasSuffix(" from \(port)") }, "answers come from the listener's address")
        let first = lines.prefix(6).map { $0.prefix(1) }
        #expect(Set(first) == ["a", "b"], "new clients are balanced: \(first)")
        let last = lines[5].prefix(1)
        #expect(lines.suffix(3).allSatisfy { $0.hasPrefix("\(last):again") }, "one client's datagrams stay with its endpoint: \(lines)")
    }
}
