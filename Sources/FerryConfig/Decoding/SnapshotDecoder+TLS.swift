import FerryModel

/// `tls:` on a listener:
///
/// ```yaml
/// tls:
///   certificate_file: default.pem        # the default certificate (chain) and key
///   key_file: default.key
///   client_ca_file: clients.pem          # optional: verify client certificates (every certificate below
///   require_client_certificate: true     #   without its own client_ca_file), required or optional
///   profile: modern                      # modern (default) | intermediate | tls13
///   certificates:                        # more certificates, chosen by the client's server name (SNI)
///     - certificate_file: shop.pem
///       key_file: shop.key
///       server_names: [shop.example.com, "*.shop.example.com"]   # default: the certificate's DNS names
///       client_ca_file: partners.pem
///       verify_client: on                # on (default) | optional | optional_no_ca
///   passthrough:                         # names whose TLS goes untouched to a cluster
///     - {server_names: [db.example.com], cluster: db}
/// ```
///
/// Files are relative to the configuration file. Each certificate is read and checked now: a key that is
/// not the certificate's, an expired certificate or an unreadable file is an error on its field.
struct DownstreamTLSDecoding {
    let decoder: SnapshotDecoder

    func decode(_ node: ConfigNode) -> DownstreamTLS? {
        guard let f = node.fields(allowed: ["certificate_file", "key_file", "client_ca_file", "require_client_certificate", "profile", "certificates", "passthrough"]) else { return nil }
        var listenerVerification: ClientVerification?
        if let caNode = f["client_ca_file"], let ca = caFile(caNode) {
            let required = f["require_client_certificate"]?.bool() ?? false
            listenerVerification = ClientVerification(ca: .file(ca), mode: required ? .required : .optional)
        } else if let requireNode = f["require_client_certificate"], f["client_ca_file"] == nil {
            requireNode.error("require_client_certificate needs client_ca_file, the CA that signs client certificates")
        }
        var profile = TLSProfile.modern
        if let profileNode = f["profile"], let text = profileNode.string() {
            if let value = TLSProfile(rawValue: text) {
                profile = value
            } else {
                profileNode.error("unknown profile \"\(text)\"; expected one of: \(TLSProfile.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        let defaultCertificate = certificate(
            f, verification: listenerVerification, namesRequired: false,
            certificateHint: "the PEM certificate (chain) the listener presents", keyHint: "the PEM private key of that certificate")
        var certificates: [ServerCertificate] = []
        var seen: [String: Int] = [:]
        for (index, item) in (f["certificates"]?.items("certificates") ?? []).enumerated() {
            guard let cf = item.fields(allowed: ["certificate_file", "key_file", "server_names", "client_ca_file", "verify_client"]) else { continue }
            var verification = listenerVerification
            if let caNode = cf["client_ca_file"] {
                if let ca = caFile(caNode) { verification = ClientVerification(ca: .file(ca), mode: verifyMode(cf["verify_client"]) ?? .required) }
            } else if let modeNode = cf["verify_client"] {
                modeNode.error("verify_client needs client_ca_file, the CA that signs client certificates")
            }
            guard let entry = certificate(cf, verification: verification, namesRequired: true, certificateHint: "the PEM certificate (chain) served for server_names", keyHint: "the PEM private key of that certificate") else { continue }
            for name in entry.serverNames {
                if let earlier = seen[name] {
                    (cf["server_names"] ?? item).error("server name \"\(name)\" is already served by certificates[\(earlier)]; a name selects one certificate")
                } else {
                    seen[name] = index
                }
            }
            certificates.append(entry)
        }
        var passthrough: [TLSPassthrough] = []
        for item in f["passthrough"]?.items("passthrough") ?? [] {
            guard let pf = item.fields(allowed: ["server_names", "cluster"]),
                  let cluster = pf.required("cluster", "the cluster the TLS connections go to, untouched")?.string(),
                  let namesNode = pf.required("server_names", "the server names (SNI) relayed without terminating TLS") else { continue }
            var names: [String] = []
            for nameNode in namesNode.items("server_names") ?? [] {
                guard let name = nameNode.string() else { continue }
                if let problem = ServerNameTable<Int>.problem(name) { nameNode.error(problem); continue }
                if let earlier = seen[name.lowercased()] { nameNode.error("server name \"\(name)\" is already served by certificates[\(earlier)]; it cannot also be passed through"); continue }
                names.append(name.lowercased())
            }
            passthrough.append(TLSPassthrough(serverNames: names, cluster: cluster))
        }
        guard let defaultCertificate else { return nil }
        var tls = DownstreamTLS(defaultCertificate: defaultCertificate, certificates: certificates, profile: profile)
        tls.passthrough = passthrough
        return tls
    }

    /// One certificate and key from `f`, checked; its server names from `server_names` or, when
    /// `namesRequired` and none are listed, from the certificate.
    private func certificate(_ f: Fields, verification: ClientVerification?, namesRequired: Bool, certificateHint: String, keyHint: String) -> ServerCertificate? {
        guard let certNode = f.required("certificate_file", certificateHint), let keyNode = f.required("key_file", keyHint),
              let certPath = certNode.string(), let keyPath = keyNode.string() else { return nil }
        let cert = decoder.relativeToConfig(certPath), key = decoder.relativeToConfig(keyPath)
        guard let certText = FileReading.readText(cert) else { certNode.error("cannot read \(certPath)"); return nil }
        guard let keyText = FileReading.readText(key) else { keyNode.error("cannot read \(keyPath)"); return nil }
        let summary: CertificateCheck.Summary
        switch CertificateCheck.check(chainPEM: certText, keyPEM: keyText) {
        case .success(let s): summary = s
        case .failure(let problem):
            (problem.description.hasPrefix("the private key") ? keyNode : certNode).error("\(problem) (\(certPath), \(keyPath))")
            return nil
        }
        var names: [String] = []
        if let namesNode = f["server_names"] {
            for item in namesNode.items("server_names") ?? [] {
                guard let name = item.string() else { continue }
                if let problem = ServerNameTable<Int>.problem(name) { item.error(problem); continue }
                names.append(name.lowercased())
            }
        } else if namesRequired {
            names = summary.serverNames
            if names.isEmpty { certNode.error("\(certPath) names no host (no subjectAltName DNS name, no common name); list the names it serves in server_names") }
        }
        return ServerCertificate(chain: .file(cert), key: .file(key), serverNames: names, clientVerification: verification)
    }

    private func caFile(_ node: ConfigNode) -> String? {
        guard let path = node.string() else { return nil }
        let resolved = decoder.relativeToConfig(path)
        guard let text = FileReading.readText(resolved) else { node.error("cannot read \(path)"); return nil }
        if let problem = CertificateCheck.checkBundle(text) { node.error("\(path): \(problem)"); return nil }
        return resolved
    }

    private func verifyMode(_ node: ConfigNode?) -> ClientVerification.Mode? {
        guard let node, let text = node.string() else { return nil }
        if let mode = ClientVerification.Mode(rawValue: text) { return mode }
        node.error("unknown verify_client \"\(text)\"; expected on, optional or optional_no_ca")
        return nil
    }
}
