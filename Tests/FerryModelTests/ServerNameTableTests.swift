import FerryModel
import Testing

/// SNI selection: exact names, then one-label wildcards, then the default (ingress-nginx and Envoy order).
struct ServerNameTableTests {
    static let table: ServerNameTable<String> = {
        var t = ServerNameTable(default: "default")
        t.add("shop.example.com", "shop")
        t.add("*.example.com", "wildcard")
        t.add("API.Example.ORG", "api")
        t.add("*.dev.example.com", "dev")
        return t
    }()

    @Test(arguments: [
        ("shop.example.com", "shop", "shop.example.com"),
        ("SHOP.example.com", "shop", "shop.example.com"),
        ("shop.example.com.", "shop", "shop.example.com"),
        ("blog.example.com", "wildcard", "*.example.com"),
        ("a.b.example.com", "default", nil),         // a wildcard covers one label only
        ("example.com", "default", nil),             // ... and not its parent
        ("x.dev.example.com", "dev", "*.dev.example.com"),
        ("dev.example.com", "wildcard", "*.example.com"),
        ("api.example.org", "api", "api.example.org"),
        ("other.test", "default", nil),
        ("", "default", nil),
        (".example.com", "default", nil),
    ] as [(String, String, String?)])
    func selects(_ name: String, _ expected: String, _ matched: String?) {
        let result = Self.table.select(name)
        #expect(result.value == expected)
        #expect(result.matched == matched)
    }

    @Test func noNameGetsTheDefault() {
        #expect(Self.table.select(nil).value == "default")
        #expect(!Self.table.isEmpty)
        #expect(ServerNameTable<Int>(default: 0).isEmpty)
    }

    @Test func theFirstEntryForANameWins() {
        var t = ServerNameTable(default: 0)
        let added = [t.add("a.example.com", 1), t.add("A.example.com", 2), t.add("*.example.com", 3), t.add("*.EXAMPLE.com", 4)]
        #expect(added == [true, false, true, false])
        #expect(t.select("a.example.com").value == 1)
        #expect(t.select("b.example.com").value == 3)
    }

    @Test(arguments: ["shop.example.com", "*.example.com", "localhost", "a-b.c1.example", "example.com."])
    func acceptsNames(_ name: String) {
        #expect(ServerNameTable<Int>.problem(name) == nil)
    }

    @Test(arguments: ["", "*", "*.", "a.*.example.com", "shop..example.com", "sh op.example.com", "*example.com", "ex_ample.com"])
    func refusesNames(_ name: String) {
        #expect(ServerNameTable<Int>.problem(name) != nil)
    }
}
