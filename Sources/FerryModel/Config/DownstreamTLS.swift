/// TLS that Ferry terminates on a listener: a default certificate, more certificates chosen by the name the
/// client asks for (SNI), the protocol versions and ciphers, and client-certificate verification.
///
/// SNI selects a certificate as ingress-nginx and Envoy do: an exact server name first, then a wildcard
/// `*.example.com` (one label: `a.example.com`, not `a.b.example.com` nor `example.com`), then the default
/// certificate — a name that matches none, or no name at all, gets the default.
public struct DownstreamTLS: Sendable, Hashable, Encodable {
    /// Presented when SNI selects none of `certificates`.
    public var defaultCertificate: ServerCertificate
    /// Certificates selected by SNI, each for its `serverNames`.
    public var certificates: [ServerCertificate]
    /// Protocol versions and TLS 1.2 cipher suites.
    public var profile: TLSProfile
    /// Server names whose TLS is not terminated: the connection, its ClientHello first, goes as it is to a
    /// cluster (ingress-nginx `ssl-passthrough`, Envoy's `tls_inspector` + `server_names` filter chains).
    public var passthrough: [TLSPassthrough] = []

    public init(defaultCertificate: ServerCertificate, certificates: [ServerCertificate] = [], profile: TLSProfile = .modern) {
        self.defaultCertificate = defaultCertificate
        self.certificates = certificates
        self.profile = profile
    }

    /// One certificate from files, optionally verifying client certificates against `clientCAFile`.
    public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil, requireClientCertificate: Bool = false) {
        var certificate = ServerCertificate(chain: .file(certificateFile), key: .file(keyFile))
        if let clientCAFile {
            certificate.clientVerification = ClientVerification(ca: .file(clientCAFile), mode: requireClientCertificate ? .required : .optional)
        }
        self.init(defaultCertificate: certificate)
    }

    /// Every certificate, the default first.
    public var allCertificates: [ServerCertificate] { [defaultCertificate] + certificates }

    /// The files these settings read (to watch them, or to name them in a message).
    public var files: [String] {
        allCertificates.flatMap { c in [c.chain, c.key, c.clientVerification?.ca].compactMap { $0?.path } }
    }

    /// Whether any certificate verifies client certificates.
    public var verifiesClients: Bool { allCertificates.contains { $0.clientVerification != nil } }

    enum CodingKeys: String, CodingKey {
        case defaultCertificate = "default_certificate", certificates, profile, passthrough
    }
}

/// TLS connections for `serverNames` (exact or `*.` one label) relayed untouched to `cluster`.
public struct TLSPassthrough: Sendable, Hashable, Encodable {
    public var serverNames: [String]
    public var cluster: String

    public init(serverNames: [String], cluster: String) {
        self.serverNames = serverNames
        self.cluster = cluster
    }

    enum CodingKeys: String, CodingKey { case serverNames = "server_names", cluster }
}

/// A certificate chain and its private key, and what a connection that selects it must show.
public struct ServerCertificate: Sendable, Hashable, Encodable {
    public var chain: PEMSource
    public var key: PEMSource
    /// The names SNI selects this certificate for: exact names and `*.` plus one label. Empty: the DNS names
    /// of the certificate's subjectAltName (or its common name when it has none).
    public var serverNames: [String]
    /// Client certificates asked for on connections that select this certificate (ingress-nginx
    /// `auth-tls-secret` and `auth-tls-verify-client`, per host).
    public var clientVerification: ClientVerification?

    public init(chain: PEMSource, key: PEMSource, serverNames: [String] = [], clientVerification: ClientVerification? = nil) {
        self.chain = chain
        self.key = key
        self.serverNames = serverNames
        self.clientVerification = clientVerification
    }

    enum CodingKeys: String, CodingKey {
        case chain = "certificate", key, serverNames = "server_names", clientVerification = "client_verification"
    }
}

/// PEM text: a file read when the configuration is compiled (so a reload picks up a renewed file), or text
/// held in the configuration (a Kubernetes Secret's `tls.crt`), named by where it came from. Dumps show the
/// file or the origin, never the text.
public enum PEMSource: Sendable, Hashable, Encodable, CustomStringConvertible {
    case file(String)
    case inline(String, origin: String)

    public var path: String? {
        if case .file(let path) = self { return path }
        return nil
    }

    public var description: String {
        switch self {
        case .file(let path): path
        case .inline(_, let origin): origin
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Client-certificate verification of one certificate's connections.
public struct ClientVerification: Sendable, Hashable, Encodable {
    public enum Mode: String, Sendable, Hashable, Encodable {
        /// A certificate signed by the CA is required (ingress-nginx `auth-tls-verify-client: on`).
        case required = "on"
        /// Asked for; verified when given; a client without one is let in (`optional`).
        case optional
        /// Asked for and accepted whatever signed it; the application decides (`optional_no_ca`).
        case optionalNoCA = "optional_no_ca"
    }
    /// The CAs whose client certificates are accepted.
    public var ca: PEMSource
    public var mode: Mode

    public init(ca: PEMSource, mode: Mode = .required) {
        self.ca = ca
        self.mode = mode
    }
}

/// TLS protocol versions and TLS 1.2 cipher suites (TLS 1.3's suites are all AEAD and not configurable).
public enum TLSProfile: String, Sendable, Hashable, Encodable, CaseIterable {
    /// TLS 1.2 and 1.3; TLS 1.2 only with forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305),
    /// ingress-nginx's default list.
    case modern
    /// TLS 1.2 and 1.3, adding for old clients the ECDHE suites with AES-CBC and the RSA-key-exchange AES-GCM
    /// suites.
    case intermediate
    /// TLS 1.3 only (Mozilla's "modern").
    case tls13
}
