import FerryModel
import NIOCore
import NIOSSL

/// A listener's TLS compiled for the snapshot in force: one `NIOSSLContext` per certificate and the table
/// that picks one by the client's server name (SNI). Files are read here, so a reload serves renewed
/// certificates to new connections while open ones keep theirs.
final class CompiledTLS: Sendable {
    /// One certificate's context and what its connections' client certificates are worth.
    struct Entry: Sendable {
        let context: NIOSSLContext
        /// Client certificates are asked for and accepted unverified (`optional_no_ca`): their name
        /// authenticates nobody.
        let acceptsUnverifiedClients: Bool
        /// Client certificates are verified against a CA: their common name can identify the client.
        let verifiesClients: Bool
    }

    let names: ServerNameTable<Entry>
    /// Server names relayed untouched: the cluster they go to (nil: terminated here).
    let passthrough: ServerNameTable<String?>
    /// The default certificate's entry.
    var defaultEntry: Entry { names.defaultValue }
    /// Whether the ClientHello must be read first: to choose a certificate (more than one), or to pass the
    /// connection through.
    var selectsByName: Bool { !names.isEmpty || !passthrough.isEmpty }

    /// Whether ALPN offers `h2` (and the pipeline asks which protocol was chosen).
    let offersHTTP2: Bool

    init(_ tls: DownstreamTLS, listener: String, http2: Bool = false) throws {
        offersHTTP2 = http2
        let alpn = http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        let defaultEntry = try Self.entry(tls.defaultCertificate, profile: tls.profile, alpn: alpn, what: "listeners \"\(listener)\": tls")
        var names = ServerNameTable(default: defaultEntry)
        for (index, certificate) in tls.certificates.enumerated() {
            let what = "listeners \"\(listener)\": tls: certificates[\(index)]"
            guard !certificate.serverNames.isEmpty else {
                throw TLSSettingsError(description: "\(what): no server_names (\(certificate.chain))")
            }
            let entry = try Self.entry(certificate, profile: tls.profile, alpn: alpn, what: what)
            for name in certificate.serverNames { names.add(name, entry) }
        }
        self.names = names
        var passthrough = ServerNameTable<String?>(default: nil)
        for route in tls.passthrough {
            for name in route.serverNames { passthrough.add(name, route.cluster) }
        }
        self.passthrough = passthrough
    }

    /// The entry for a ClientHello's server name.
    func entry(forServerName name: String?) -> Entry {
        names.select(name).value
    }

    /// The TLS handler for a connection whose client asked for `entry`'s certificate.
    static func handler(_ entry: Entry) -> NIOSSLServerHandler {
        guard entry.acceptsUnverifiedClients else { return NIOSSLServerHandler(context: entry.context) }
        return NIOSSLServerHandler(context: entry.context, customVerificationCallback: { _, promise in
            promise.succeed(.certificateVerified)
        })
    }

    private static func entry(_ certificate: ServerCertificate, profile: TLSProfile, alpn: [String], what: String) throws -> Entry {
        do {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try certificates(certificate.chain).map { .certificate($0) },
                privateKey: .privateKey(try privateKey(certificate.key)))
            configuration.applicationProtocols = alpn
            profile.apply(to: &configuration)
            if let verification = certificate.clientVerification {
                configuration.trustRoots = .certificates(try certificates(verification.ca))
                configuration.sendCANameList = true
                switch verification.mode {
                case .required: configuration.certificateVerification = .noHostnameVerification
                case .optional, .optionalNoCA: configuration.certificateVerification = .optionalVerification
                }
            }
            return Entry(
                context: try NIOSSLContext(configuration: configuration),
                acceptsUnverifiedClients: certificate.clientVerification?.mode == .optionalNoCA,
                verifiesClients: certificate.clientVerification.map { $0.mode != .optionalNoCA } ?? false)
        } catch let error as TLSSettingsError {
            throw error
        } catch {
            throw TLSSettingsError(description: "\(what): \(certificate.chain): \(error)")
        }
    }

    static func certificates(_ source: PEMSource) throws -> [NIOSSLCertificate] {
        switch source {
        case .file(let path): try NIOSSLCertificate.fromPEMFile(path)
        case .inline(let pem, _): try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
        }
    }

    static func privateKey(_ source: PEMSource) throws -> NIOSSLPrivateKey {
        switch source {
        case .file(let path): try NIOSSLPrivateKey(file: path, format: .pem)
        case .inline(let pem, _): try NIOSSLPrivateKey(bytes: Array(pem.utf8), format: .pem)
        }
    }
}

extension TLSProfile {
    /// TLS 1.2 suites of each profile, in BoringSSL's names; TLS 1.3 suites are fixed by BoringSSL.
    static let modernSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ]
    static let intermediateSuites = modernSuites + [
        "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256", "AES256-GCM-SHA384",
    ]

    func apply(to configuration: inout TLSConfiguration) {
        switch self {
        case .modern:
            configuration.minimumTLSVersion = .tlsv12
            configuration.cipherSuites = Self.modernSuites.joined(separator: ":")
        case .intermediate:
            configuration.minimumTLSVersion = .tlsv12
            configuration.cipherSuites = Self.intermediateSuites.joined(separator: ":")
        case .tls13:
            configuration.minimumTLSVersion = .tlsv13
        }
    }
}
