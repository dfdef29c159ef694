@testable import FerryProxy
import NIOCore
import Testing

struct AddressTextTests {
    @Test(arguments: ["0.0.0.0", "127.0.0.1", "10.20.30.40", "255.255.255.255", "192.168.1.100", "1.2.3.4", "100.64.0.9", "::1", "2001:db8::17"])
    func theTextIsWhatInetNtopWrites(_ ip: String) throws {
        let address = try SocketAddress(ipAddress: ip, port: 8080)
        #expect(address.ipText == address.ipAddress)
        #expect(address.ipText == ip)
    }
}
