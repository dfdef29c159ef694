import FerryModel
import Testing

/// The target of an intercepted request: its Host names the destination, and a port in it must be the one
/// the connection was going to (Squid's host verification).
struct InterceptedTargetTests {
    @Test func hostNamesTheDestination() throws {
        let target = try #require(try ForwardTarget.intercepted(host: "Shop.Example.com", uri: "/cart?x=1", originalPort: 80).get())
        #expect(target == .absolute(host: .name("shop.example.com"), port: 80, authority: "Shop.Example.com", pathAndQuery: "/cart?x=1"))
        let withPort = try #require(try ForwardTarget.intercepted(host: "api.test:8080", uri: "/", originalPort: 8080).get())
        #expect(withPort.port == 8080)
        let literal = try #require(try ForwardTarget.intercepted(host: "[2001:db8::1]", uri: "/", originalPort: 80).get())
        #expect(literal.host == .address(IPAddress(parsing: "2001:db8::1")!))
    }

    @Test func withoutHostTheAddressDecides() throws {
        #expect(try ForwardTarget.intercepted(host: nil, uri: "/", originalPort: 80).get() == nil)
        #expect(try ForwardTarget.intercepted(host: "", uri: "/", originalPort: 80).get() == nil)
    }

    @Test func refusals() {
        func message(_ r: Result<ForwardTarget?, ForwardTargetError>) -> String? {
            if case .failure(let e) = r { return e.message } else { return nil }
        }
        #expect(message(ForwardTarget.intercepted(host: "api.test:8443", uri: "/", originalPort: 443)) == "the Host field names port 8443, but the connection was going to port 443")
        if case .failure(let e) = ForwardTarget.intercepted(host: "api.test:8443", uri: "/", originalPort: 443) { #expect(e.conflictsWithDestination) }
        if case .failure(let e) = ForwardTarget.intercepted(host: "bad host", uri: "/", originalPort: 80) { #expect(!e.conflictsWithDestination) }
        #expect(message(ForwardTarget.intercepted(host: "api.test", uri: "http://api.test/", originalPort: 80))?.hasPrefix("an intercepted request's target is a path") == true)
        #expect(message(ForwardTarget.intercepted(host: "bad host", uri: "/", originalPort: 80)) == "the Host field \"bad host\" is not a host name or address with an optional port")
    }
}
