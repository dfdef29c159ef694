/// How clients of a route prove who they are, when it asks: a bearer token listed in a token file (the
/// kube-apiserver `--token-auth-file` format) or a TLS client certificate verified by the listener (its
/// common name is the user). Clients that present neither get 401.
public struct ClientAuthentication: Sendable, Hashable, Encodable {
    public struct User: Sendable, Hashable {
        public var name: String
        public var groups: [String]

        public init(name: String, groups: [String] = []) {
            self.name = name
            self.groups = groups
        }
    }

    /// Token → user. Never shown in the configuration dump.
    public var tokens: [String: User]
    /// Where the tokens were read from, for the dump.
    public var tokensFile: String?
    /// Accept the client certificate the listener verified.
    public var clientCertificates: Bool

    public init(tokens: [String: User] = [:], tokensFile: String? = nil, clientCertificates: Bool = false) {
        self.tokens = tokens
        self.tokensFile = tokensFile
        self.clientCertificates = clientCertificates
    }

    /// The user for an `Authorization` value `Bearer TOKEN`, or nil.
    public func user(forAuthorization value: String?) -> User? {
        guard let value, value.count > 7, value.prefix(7).lowercased() == "bearer " else { return nil }
        return tokens[String(String(value.dropFirst(7)).trimmingSpaces)]
    }

    /// Reads a token file: one `token,user,uid[,"group1,group2"]` per line (`#` comments and blank lines
    /// ignored). Problems name the line.
    public static func parseTokens(_ text: String) -> (tokens: [String: User], problems: [String]) {
        var tokens: [String: User] = [:]
        var problems: [String] = []
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = String(String(raw).trimmingSpaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = csvFields(line)
            guard fields.count >= 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                problems.append("line \(index + 1): expected token,user[,uid[,\"group1,group2\"]]")
                continue
            }
            if tokens[fields[0]] != nil { problems.append("line \(index + 1): this token is already listed") }
            let groups = fields.count >= 4 ? fields[3].split(separator: ",").map { String(String($0).trimmingSpaces) }.filter { !$0.isEmpty } : []
            tokens[fields[0]] = User(name: fields[1], groups: groups)
        }
        return (tokens, problems)
    }

    /// Comma-separated fields; a field in double quotes may contain commas.
    static func csvFields(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        for c in line {
            if c == "\"" { quoted.toggle() } else if c == "," && !quoted {
                fields.append(String(current.trimmingSpaces))
                current = ""
            } else {
                current.append(c)
            }
        }
        fields.append(String(current.trimmingSpaces))
        return fields
    }

    public func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case tokensFile = "tokens_file", users, clientCertificates = "client_certificates" }
        var c = encoder.container(keyedBy: K.self)
        try c.encodeIfPresent(tokensFile, forKey: .tokensFile)
        if !tokens.isEmpty { try c.encode(Set(tokens.values.map(\.name)).sorted(), forKey: .users) }
        try c.encode(clientCertificates, forKey: .clientCertificates)
    }
}
