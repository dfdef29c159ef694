import FerryModel
import Foundation

/// The ingress-nginx annotations Ferry understands, read into typed settings. No annotation value ever
/// becomes configuration text: each is parsed into a number, a list of address ranges, a URL or a
/// regular expression used only for matching, or it is refused. Snippets and unknown annotations are
/// never applied; each one is listed in `ignored`.
public struct NginxAnnotations: Sendable {
    public static let prefix = "nginx.ingress.kubernetes.io/"

    public var rewriteTarget: String?
    public var useRegex = false
    public var appRoot: String?
    public var permanentRedirect: String?
    public var permanentRedirectCode = 301
    public var temporalRedirect: String?
    public var connectTimeout: Duration?
    public var readTimeout: Duration?
    public var sendTimeout: Duration?
    /// `Int.max`: no limit (`proxy-body-size: 0`).
    public var bodySize: Int?
    public var loadBalance: LoadBalancingPolicy?
    public var hashBy: RingHashKey?
    /// Nil: no allowlist. Empty after a refused value: nobody is allowed (fail closed).
    public var allowSources: [IPRange]?
    public var canary: Canary?
    /// `ssl-redirect`: nil follows the controller's `--ssl-redirect` (default true).
    public var sslRedirect: Bool?
    /// `force-ssl-redirect`: redirect plain HTTP to HTTPS even for hosts without a certificate.
    public var forceSSLRedirect = false
    /// `preserve-trailing-slash`: keep a trailing `/` in the HTTPS redirect's URI.
    public var preserveTrailingSlash = false
    /// `backend-protocol: HTTPS` or `GRPCS`: TLS to the Service's endpoints, their certificates not verified
    /// (ingress-nginx's `proxy_ssl_verify off` default).
    public var backendTLS = false
    /// `backend-protocol: GRPC` or `GRPCS`: HTTP/2 to the endpoints.
    public var backendHTTP2 = false
    /// `auth-tls-secret`: `namespace/name` (or `name` in the Ingress's namespace) of a Secret whose `ca.crt`
    /// signs the client certificates the Ingress's hosts ask for.
    public var authTLSSecret: String?
    /// `auth-tls-verify-client`: `on` (default), `optional`, `optional_no_ca`, `off`.
    public var authTLSVerifyClient = "on"
    /// `auth-tls-pass-certificate-to-upstream`: the client certificate goes upstream in `ssl-client-cert`.
    public var authTLSPassCertificate = false
    /// `ssl-passthrough`: TLS for the Ingress's hosts is relayed untouched to its backend (with
    /// `--enable-ssl-passthrough`).
    public var sslPassthrough = false
    /// `(annotation, why it was not applied)`.
    public var ignored: [(key: String, reason: String)] = []

    public struct Canary: Sendable {
        public var header: String?
        public var headerValue: String?
        public var cookie: String?
        public var weight = 0
        public var weightTotal = 100
    }

    /// Whether the paths of this Ingress make its hosts use regular-expression matching (ingress-nginx
    /// switches the whole host to regex locations when any Ingress on it sets `use-regex` or `rewrite-target`).
    public var needsRegex: Bool { useRegex || rewriteTarget != nil }

    /// The settings that shape a cluster (so that two Ingresses with different ones get separate clusters).
    var clusterSettings: ClusterSettings {
        ClusterSettings(connectTimeout: connectTimeout ?? .seconds(5), loadBalancing: hashBy.map { .ringHash($0) } ?? loadBalance ?? .roundRobin, tls: backendTLS, http2: backendHTTP2)
    }

    public init(annotations: [String: String]) {
        var canaryEnabled = false
        var canary = Canary()
        for key in annotations.keys.sorted() where key.hasPrefix(NginxAnnotations.prefix) {
            let value = annotations[key]!
            let name = String(key.dropFirst(NginxAnnotations.prefix.count))
            if let problem = apply(name, value.trimmingCharacters(in: .whitespaces), canary: &canary, canaryEnabled: &canaryEnabled) {
                ignored.append((key, problem))
            }
        }
        if canaryEnabled { self.canary = canary }
    }

    /// Applies one annotation; returns why it was not applied, or nil.
    private mutating func apply(_ name: String, _ value: String, canary: inout Canary, canaryEnabled: inout Bool) -> String? {
        if name.hasSuffix("snippet") || name.hasSuffix("-snippets") {
            return "snippet annotations insert configuration text and are never applied"
        }
        switch name {
        case "rewrite-target":
            guard value.hasPrefix("/") || value.hasPrefix("$") else { return "must be a path starting with \"/\" (capture groups as $1)" }
            rewriteTarget = value
        case "use-regex":
            guard let b = Bool(value) else { return "must be \"true\" or \"false\"" }
            useRegex = b
        case "auth-tls-secret":
            let parts = value.split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && NginxAnnotations.isToken(String($0)) }) else {
                return "must be NAMESPACE/NAME or NAME of a Secret with ca.crt"
            }
            authTLSSecret = value
        case "auth-tls-verify-client":
            guard ["on", "off", "optional", "optional_no_ca"].contains(value) else { return "must be on, off, optional or optional_no_ca" }
            authTLSVerifyClient = value
        case "auth-tls-pass-certificate-to-upstream":
            guard let b = Bool(value) else { return "must be \"true\" or \"false\"" }
            authTLSPassCertificate = b
        case "backend-protocol":
            switch value.uppercased() {
            case "HTTP": (backendTLS, backendHTTP2) = (false, false)
            case "HTTPS": (backendTLS, backendHTTP2) = (true, false)
            case "GRPC": (backendTLS, backendHTTP2) = (false, true)
            case "GRPCS": (backendTLS, backendHTTP2) = (true, true)
            case "AUTO_HTTP", "FCGI": return "\(value.uppercased()) backends are not served (HTTP, HTTPS, GRPC and GRPCS are); the backend is reached over HTTP/1.1"
            default: return "must be HTTP, HTTPS, GRPC, GRPCS, AUTO_HTTP or FCGI"
            }
        case "ssl-passthrough":
            guard let b = Bool(value) else { return "must be \"true\" or \"false\"" }
            sslPassthrough = b
        case "ssl-redirect", "force-ssl-redirect", "preserve-trailing-slash":
            guard let b = Bool(value) else { return "must be \"true\" or \"false\"" }
            switch name {
            case "ssl-redirect": sslRedirect = b
            case "force-ssl-redirect": forceSSLRedirect = b
            default: preserveTrailingSlash = b
            }
        case "app-root":
            guard value.hasPrefix("/"), !value.contains("://"), NginxAnnotations.isPlainURLText(value) else { return "must be a path starting with \"/\"" }
            appRoot = value
        case "permanent-redirect", "temporal-redirect":
            guard NginxAnnotations.isRedirectURL(value) else { return "must be an absolute http(s) URL without spaces or control characters" }
            if name == "permanent-redirect" { permanentRedirect = value } else { temporalRedirect = value }
        case "permanent-redirect-code":
            guard let code = Int(value), (300...308).contains(code) else { return "must be a redirect status between 300 and 308" }
            permanentRedirectCode = code
        case "proxy-connect-timeout", "proxy-read-timeout", "proxy-send-timeout":
            guard let seconds = NginxAnnotations.seconds(value) else { return "must be a whole number of seconds greater than 0" }
            switch name {
            case "proxy-connect-timeout": connectTimeout = .seconds(seconds)
            case "proxy-read-timeout": readTimeout = .seconds(seconds)
            default: sendTimeout = .seconds(seconds)
            }
        case "proxy-body-size":
            guard let size = NginxAnnotations.size(value) else { return "must be a size such as 8m, 512k or 0 (no limit)" }
            bodySize = size == 0 ? Int.max : size
        case "load-balance":
            switch value {
            case "round_robin": loadBalance = .roundRobin
            case "ewma": loadBalance = .leastRequest
            default: return "\"\(value)\" is not supported; use round_robin or ewma (served as least_request)"
            }
        case "upstream-hash-by":
            guard let key = NginxAnnotations.hashKey(value) else {
                return "only one of $remote_addr, $binary_remote_addr, $request_uri, $http_NAME or $cookie_NAME is supported"
            }
            hashBy = key
        case "whitelist-source-range", "allowlist-source-range":
            let entries = value.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let ranges = entries.compactMap(IPRange.init(parsing:))
            if ranges.count != entries.count || entries.isEmpty {
                allowSources = []
                return "has an entry that is not an address or CIDR; the paths of this Ingress answer 403 to everyone until it is fixed"
            }
            allowSources = (allowSources ?? []) + ranges
        case "canary":
            guard let b = Bool(value) else { return "must be \"true\" or \"false\"" }
            canaryEnabled = b
        case "canary-by-header":
            guard NginxAnnotations.isToken(value) else { return "must be a header name" }
            canary.header = value.lowercased()
        case "canary-by-header-value":
            guard !value.isEmpty, value.allSatisfy({ $0.isASCII && !$0.isNewline }) else { return "must be a plain header value" }
            canary.headerValue = value
        case "canary-by-cookie":
            guard NginxAnnotations.isToken(value) else { return "must be a cookie name" }
            canary.cookie = value
        case "canary-weight":
            guard let w = Int(value), w >= 0 else { return "must be a whole number from 0 to canary-weight-total (100)" }
            canary.weight = w
        case "canary-weight-total":
            guard let t = Int(value), t > 0 else { return "must be a whole number greater than 0" }
            canary.weightTotal = t
        default:
            return "not supported by Ferry"
        }
        return nil
    }

    // MARK: value parsers

    /// `10` → 10 (ingress-nginx timeouts are whole seconds); a trailing `s` is accepted.
    static func seconds(_ text: String) -> Int64? {
        let digits = text.hasSuffix("s") ? String(text.dropLast()) : text
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = Int64(digits), n > 0, n <= 86_400 * 7 else { return nil }
        return n
    }

    /// nginx sizes: `1024`, `8k`, `1m`, `1g` (either case).
    static func size(_ text: String) -> Int? {
        guard let last = text.last else { return nil }
        var digits = text
        var factor = 1
        switch last {
        case "k", "K": factor = 1024
        case "m", "M": factor = 1024 * 1024
        case "g", "G": factor = 1024 * 1024 * 1024
        default: break
        }
        if factor != 1 { digits = String(text.dropLast()) }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits), n <= Int.max / factor else { return nil }
        return n * factor
    }

    static func hashKey(_ text: String) -> RingHashKey? {
        switch text {
        case "$remote_addr", "$binary_remote_addr": return .sourceAddress
        case "$request_uri": return .requestURI
        default: break
        }
        for (prefix, make) in [("$http_", { (n: String) in RingHashKey.header(n.replacingOccurrences(of: "_", with: "-").lowercased()) }), ("$cookie_", { RingHashKey.cookie($0) })] where text.hasPrefix(prefix) {
            let name = String(text.dropFirst(prefix.count))
            guard isToken(name), !name.contains("$") else { return nil }
            return make(name)
        }
        return nil
    }

    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f || c == 0x2e
        }
    }

    static func isPlainURLText(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "'") && $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: "{") && $0 != UInt8(ascii: "}") && $0 != UInt8(ascii: "\\") }
    }

    static func isRedirectURL(_ text: String) -> Bool {
        (text.hasPrefix("http://") || text.hasPrefix("https://")) && text.count > 8 && isPlainURLText(text)
    }
}

/// The cluster-shaping settings of an Ingress.
struct ClusterSettings: Hashable {
    var connectTimeout: Duration
    var loadBalancing: LoadBalancingPolicy
    /// TLS to the endpoints (`backend-protocol: HTTPS`, `GRPCS`).
    var tls = false
    /// HTTP/2 to the endpoints (`backend-protocol: GRPC`, `GRPCS`).
    var http2 = false

    var isDefault: Bool { connectTimeout == .seconds(5) && loadBalancing == .roundRobin && !tls && !http2 }
}
