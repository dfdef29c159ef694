import FerryModel
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("10.1.2.3", "10.1.2.3"), ("::1", "::1"), ("fd00::", "fd00::"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("::ffff:10.0.0.1", "::ffff:a00:1"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("fe80::1%eth0", "fe80::1"),
    ])
    func parsesAndPrintsCanonically(text: String, canonical: String) {
        #expect(IPAddress(parsing: text)?.description == canonical)
    }

    @Test(arguments: ["1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "", "example.com", " 1.2.3.4"])
    func refusesWhatIsNotAnAddress(text: String) {
        #expect(IPAddress(parsing: text) == nil)
    }

    @Test func rangesContainTheirAddressesOnly() {
        let v4 = IPRange(parsing: "10.0.0.0/8")!
        #expect(v4.contains(IPAddress(parsing: "10.255.0.1")!))
        #expect(!v4.contains(IPAddress(parsing: "11.0.0.1")!))
        #expect(v4.contains(IPAddress(parsing: "::ffff:10.1.1.1")!), "IPv4-mapped IPv6 is the IPv4 address")
        #expect(!v4.contains(IPAddress(parsing: "fd00::1")!))
        let host = IPRange(parsing: "192.168.1.7")!
        #expect(host.prefixLength == 32 && host.contains(IPAddress(parsing: "192.168.1.7")!) && !host.contains(IPAddress(parsing: "192.168.1.8")!))
        let v6 = IPRange(parsing: "2001:db8::/33")!
        #expect(v6.contains(IPAddress(parsing: "2001:db8:7fff::1")!))
        #expect(!v6.contains(IPAddress(parsing: "2001:db8:8000::1")!))
        #expect(IPRange(parsing: "0.0.0.0/0")!.contains(IPAddress(parsing: "8.8.8.8")!))
        #expect(IPRange(parsing: "10.1.2.3/8")?.description == "10.0.0.0/8")
        for bad in ["10.0.0.0/33", "10.0.0.0/", "fd00::/129", "x/8", "10.0.0.0/-1"] { #expect(IPRange(parsing: bad) == nil, "\(bad)") }
    }
}
