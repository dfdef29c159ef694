import Crypto
import Foundation
import SwiftASN1
import X509

/// A self-signed certificate and its key (ECDSA P-256), as PEM: the Ingress controller's fallback certificate
/// when no default is configured (as ingress-nginx's "Kubernetes Ingress Controller Fake Certificate"), and
/// certificates for tests.
public struct SelfSignedCertificate: Sendable {
    public var certificatePEM: String
    public var keyPEM: String

    /// `dnsNames` go into the subjectAltName; `issuer` signs it instead of itself (a test CA).
    public init(commonName: String, dnsNames: [String] = [], notValidBefore: Date = Date().addingTimeInterval(-3600),
                notValidAfter: Date = Date().addingTimeInterval(365 * 86400), isCA: Bool = false, issuer: SelfSignedCertificate? = nil) throws {
        let key = P256.Signing.PrivateKey()
        let privateKey = Certificate.PrivateKey(key)
        let subject = try DistinguishedName { CommonName(commonName) }
        var issuerName = subject
        var issuerKey = privateKey
        if let issuer {
            let issuerCertificate = try Certificate(pemEncoded: issuer.certificatePEM)
            issuerName = issuerCertificate.subject
            issuerKey = try Certificate.PrivateKey(pemEncoded: issuer.keyPEM)
        }
        let extensions = try Certificate.Extensions {
            if isCA {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            } else {
                Critical(BasicConstraints.notCertificateAuthority)
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
            }
            KeyUsage(digitalSignature: true, keyCertSign: isCA)
            if !dnsNames.isEmpty {
                SubjectAlternativeNames(dnsNames.map { .dnsName($0) })
            }
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: privateKey.publicKey,
            notValidBefore: notValidBefore, notValidAfter: notValidAfter, issuer: issuerName, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: issuerKey)
        self.certificatePEM = try certificate.serializeAsPEM().pemString
        self.keyPEM = key.pemRepresentation
    }
}
