/// What a route tells its upstream about the client certificate of the connection (ingress-nginx's
/// `ssl-client-*` fields, sent when a host has `auth-tls-secret`). Fields of these names that the client
/// sent are always replaced, so a client cannot claim a certificate it did not present.
public enum ClientCertificateHeaders: String, Sendable, Hashable, Encodable, CaseIterable {
    /// Nothing is added (the default).
    case none
    /// `ssl-client-verify` (`SUCCESS`, `NONE`, or `FAILED:…`), `ssl-client-subject-dn` and
    /// `ssl-client-issuer-dn` (RFC 4514, as nginx's `$ssl_client_s_dn`).
    case details
    /// `details` and `ssl-client-cert`: the certificate as URL-encoded PEM (nginx's `$ssl_client_escaped_cert`,
    /// ingress-nginx `auth-tls-pass-certificate-to-upstream`).
    case certificate

    /// The field names Ferry sets (and removes from what the client sent).
    public static let fieldNames = ["ssl-client-verify", "ssl-client-subject-dn", "ssl-client-issuer-dn", "ssl-client-cert"]
}

/// The client certificate of a connection as the upstream fields describe it.
public struct ClientCertificateFacts: Sendable, Hashable {
    /// `SUCCESS`, `NONE` (no certificate presented) or `FAILED:reason`.
    public var verify: String
    public var subjectDN: String
    public var issuerDN: String
    /// The leaf certificate as PEM, or empty.
    public var pem: String

    public init(verify: String, subjectDN: String = "", issuerDN: String = "", pem: String = "") {
        self.verify = verify
        self.subjectDN = subjectDN
        self.issuerDN = issuerDN
        self.pem = pem
    }

    /// No certificate was presented.
    public static let none = ClientCertificateFacts(verify: "NONE")

    /// The fields sent upstream for `headers` (empty for `.none`).
    public func fields(_ headers: ClientCertificateHeaders) -> [(name: String, value: String)] {
        guard headers != .none else { return [] }
        var fields = [("ssl-client-verify", verify), ("ssl-client-subject-dn", subjectDN), ("ssl-client-issuer-dn", issuerDN)]
        if headers == .certificate { fields.append(("ssl-client-cert", Self.urlEncoded(pem))) }
        return fields.filter { !$0.1.isEmpty }
    }

    /// Percent-encoding of everything but RFC 3986's unreserved characters (newlines, `+`, `/`, `=` included),
    /// so the PEM is one field value that any URL decoder restores.
    public static func urlEncoded(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count * 3 / 2)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out.append("%")
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xF)]))
            }
        }
        return out
    }
}
