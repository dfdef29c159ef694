@testable import FerryProxy
import FerryModel
import NIOCore
import Testing

struct AddressTextTests {
    @Test(arguments: ["0.0.0.0", "127.0.0.1", "10.20.30.40", "255.255.255.255", "192.168.1.100", "1.2.3.4", "100.64.0.9", "::1", "2001:db8::17"])
    func theTextIsWhatInetNtopWrites(_ ip: String) throws {
        let address = try SocketAddress(ipAddress: ip, port: 8080)
        #expect(address.ipText == address.ipAddress)
        #expect(address.ipText == ip)
    }

    @Test(arguments: ["0.0.0.0", "127.0.0.1", "10.20.30.40", "255.255.255.255", "::1", "2001:db8::17", "::ffff:10.1.2.3", "fe80::1:2:3:4", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"])
    func theNumberIsWhatParsingTheTextGives(_ ip: String) throws {
        let address = try SocketAddress(ipAddress: ip, port: 8080)
        #expect(address.ipValue != nil)
        #expect(address.ipValue == IPAddress(parsing: ip))
    }
}
