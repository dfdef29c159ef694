import FerryDataplane
import FerryModel
import Testing

@Suite struct ConntrackCleanupTests {
    static func ip(_ text: String) -> IPAddress { IPAddress(parsing: text)! }

    static func dns(_ endpoints: [String], nodePort: Int? = nil) -> ServicePortTable {
        ServicePortTable(ports: [
            ProxiedServicePort(namespace: "kube-system", service: "dns", protocol: .udp, clusterIP: ip("10.96.0.53"), port: 53, nodePort: nodePort,
                               externalIPs: [ip("192.0.2.53")], endpoints: endpoints.map { ProxiedEndpoint(ip: ip($0), port: 5353) }),
            ProxiedServicePort(namespace: "default", service: "web", clusterIP: ip("10.96.0.10"), port: 80, endpoints: []),
        ])
    }

    @Test func aRemovedUDPEndpointLosesItsEntries() {
        let commands = ConntrackCleanup.commands(previous: Self.dns(["10.244.1.5", "10.244.2.7"], nodePort: 30053), next: Self.dns(["10.244.1.5"], nodePort: 30053), node: "n")
        #expect(commands == [
            ["-D", "-p", "udp", "--orig-dst", "10.96.0.53", "--dst-nat", "10.244.2.7"],
            ["-D", "-p", "udp", "--orig-dst", "192.0.2.53", "--dst-nat", "10.244.2.7"],
            ["-D", "-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.244.2.7"],
        ])
    }

    @Test func aServiceThatGetsEndpointsBackLosesItsOldEntriesAndTCPNeedsNothing() {
        let back = ConntrackCleanup.commands(previous: Self.dns([]), next: Self.dns(["10.244.1.5"]), node: "n")
        #expect(back == [["-D", "-p", "udp", "--orig-dst", "10.96.0.53"], ["-D", "-p", "udp", "--orig-dst", "192.0.2.53"]])
        #expect(ConntrackCleanup.commands(previous: Self.dns(["10.244.1.5"]), next: Self.dns(["10.244.1.5"]), node: "n").isEmpty)
        let gone = ConntrackCleanup.commands(previous: Self.dns(["10.244.1.5"]), next: ServicePortTable(ports: []), node: "n")
        #expect(gone == [["-D", "-p", "udp", "--orig-dst", "10.96.0.53"], ["-D", "-p", "udp", "--orig-dst", "192.0.2.53"]])
    }
}
