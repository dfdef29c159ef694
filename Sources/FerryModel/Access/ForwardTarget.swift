/// Where a forward-proxy request wants to go, read from its request target.
public enum ForwardTarget: Sendable, Hashable {
    /// `CONNECT host:port`.
    case connect(host: HostName, port: Int)
    /// `GET http://host[:port]/path?query`: `authority` is the Host field to send, `pathAndQuery` the
    /// origin-form target.
    case absolute(host: HostName, port: Int, authority: String, pathAndQuery: String)

    public var host: HostName {
        switch self {
        case .connect(let h, _), .absolute(let h, _, _, _): h
        }
    }

    public var port: Int {
        switch self {
        case .connect(_, let p), .absolute(_, let p, _, _): p
        }
    }

    /// Parses the request target of a request to a forward proxy. The failure says what to fix.
    public static func parse(method: String, target: String) -> Result<ForwardTarget, ForwardTargetError> {
        if method == "CONNECT" {
            if target.contains("@") { return .failure(ForwardTargetError("CONNECT target must not carry user information")) }
            guard let (host, port) = hostAndPort(Substring(target), defaultPort: nil) else {
                return .failure(ForwardTargetError("CONNECT needs host:port with a port from 1 to 65535, e.g. CONNECT example.com:443"))
            }
            return .success(.connect(host: host, port: port))
        }
        if target.hasPrefix("/") || target == "*" {
            return .failure(ForwardTargetError("this is a forward proxy: send absolute-form requests (GET http://host/path) or CONNECT host:port; clients do so when HTTP_PROXY/HTTPS_PROXY point here"))
        }
        let lower = target.prefix(8).lowercased()
        guard lower.hasPrefix("http://") else {
            if lower.hasPrefix("https://") { return .failure(ForwardTargetError("https:// URLs go through CONNECT; set HTTPS_PROXY so the client tunnels")) }
            return .failure(ForwardTargetError("only http:// URLs are forwarded (others go through CONNECT)"))
        }
        let rest = target.dropFirst(7)
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<end]
        if authority.contains("@") { return .failure(ForwardTargetError("URLs with user information (user@host) are refused")) }
        guard let (host, port) = hostAndPort(authority, defaultPort: 80) else {
            return .failure(ForwardTargetError("the URL's host or port is invalid"))
        }
        var path = String(rest[end...])
        if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
        // An empty path is `/`, except for OPTIONS, where it asks about the server itself (RFC 9112 §3.2.4).
        if path.isEmpty { path = method == "OPTIONS" ? "*" : "/" } else if path.hasPrefix("?") { path = "/" + path }
        let hostText: String = {
            if case .address(.v6) = host { return host.description }
            return host.description
        }()
        return .success(.absolute(host: host, port: port, authority: port == 80 ? hostText : "\(hostText):\(port)", pathAndQuery: path))
    }

    /// The target of a request the kernel redirected to Ferry (transparent capture): origin-form, its
    /// destination named by Host. A port in Host must be the port the connection was going to (Squid's
    /// host verification); without Host the request is judged on the address alone (`nil`).
    public static func intercepted(host: String?, uri: String, originalPort: Int) -> Result<ForwardTarget?, ForwardTargetError> {
        guard uri.hasPrefix("/") || uri == "*" else {
            return .failure(ForwardTargetError("an intercepted request's target is a path (origin-form); this connection was not addressed to a proxy"))
        }
        guard let host, !host.isEmpty else { return .success(nil) }
        guard let (name, port) = hostAndPort(Substring(host), defaultPort: originalPort) else {
            return .failure(ForwardTargetError("the Host field \"\(host)\" is not a host name or address with an optional port"))
        }
        guard port == originalPort else {
            return .failure(ForwardTargetError("the Host field names port \(port), but the connection was going to port \(originalPort)", conflictsWithDestination: true))
        }
        return .success(.absolute(host: name, port: port, authority: host, pathAndQuery: uri))
    }

    static func hostAndPort(_ text: Substring, defaultPort: Int?) -> (HostName, Int)? {
        var hostText: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostText = text[...close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portText = rest.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            hostText = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            hostText = text
        }
        let port: Int
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let p = Int(portText), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            guard let d = defaultPort else { return nil }
            port = d
        }
        guard let host = HostName(normalising: String(hostText)) else { return nil }
        return (host, port)
    }
}

public struct ForwardTargetError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// The target is well formed but names another place than the connection goes to (409, not 400).
    public var conflictsWithDestination = false
    public init(_ message: String, conflictsWithDestination: Bool = false) {
        self.message = message
        self.conflictsWithDestination = conflictsWithDestination
    }
    public var description: String { message }
}
