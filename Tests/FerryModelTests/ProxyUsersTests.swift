import FerryModel
import Testing

@Suite struct ProxyUsersTests {
    @Test func base64RoundTrips() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(($0 * 37 + 11) & 0xff) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        #expect(Base64.encode(Array("user:pw".utf8)) == "dXNlcjpwdw==")
        #expect(Base64.decode("dXNlcjpwdw") == Array("user:pw".utf8))
        #expect(Base64.decode("not base64!") == nil)
    }

    @Test func usersFileLinesAndProblems() {
        let good = "$pbkdf2-sha256$1000$c2FsdHNhbHQ=$" + Base64.encode(Array(repeating: 7, count: 32))
        let (users, problems) = ProxyUsers.parse("# proxy users\nalice:\(good)\r\n\nbob:$pbkdf2-sha256$10$c2FsdHNhbHQ=$AA==\nnocolon\nalice:\(good)\n")
        #expect(users.users.keys.sorted() == ["alice"])
        #expect(users.users["alice"]?.rounds == 1000 && users.users["alice"]?.salt == Array("saltsalt".utf8))
        #expect(problems.map(\.0) == [4, 5, 6])
        #expect(problems[0].1.contains("hash of bob"))
        #expect(problems[2].1.contains("appears twice"))
    }

    @Test func basicCredentials() {
        #expect(ProxyUsers.basicCredentials("Basic YWxpY2U6czNjcjp0") ?? ("", "") == ("alice", "s3cr:t"))
        #expect(ProxyUsers.basicCredentials("basic  YWxpY2U6eA==")?.user == "alice")
        #expect(ProxyUsers.basicCredentials("Bearer abc") == nil)
        #expect(ProxyUsers.basicCredentials("Basic bm9jb2xvbg==") == nil)
    }

    @Test func rulesForUsers() throws {
        let rule = try AccessRule.parse(.allow, ".example.com:443 for alice, bob").get()
        #expect(rule.match.users == ["alice", "bob"] && rule.match.ports == [443...443] && rule.match.domains == [.subtree("example.com")])
        if case .success = AccessRule.parse(.allow, ".example.com for ") { Issue.record("accepted a rule without users") }
    }
}
