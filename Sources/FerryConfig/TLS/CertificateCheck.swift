import Foundation
import SwiftASN1
import X509

/// Reads a PEM certificate chain and its private key as a TLS server will use them, and says in one sentence
/// what is wrong: no certificate, an unreadable key, a key that is not the certificate's, a certificate not
/// valid now. Used where configuration is checked (`ferry validate`, reloads, Kubernetes Secrets), so a bad
/// certificate is refused with the file and field that hold it instead of failing handshakes later.
public enum CertificateCheck {
    /// What a usable certificate serves.
    public struct Summary: Sendable, Hashable {
        /// The DNS names of the leaf's subjectAltName, lower-cased.
        public var dnsNames: [String]
        /// The leaf's subject common name.
        public var commonName: String?
        public var notValidAfter: Date

        /// The names SNI selects this certificate for when none are configured: the subjectAltName's DNS
        /// names, else the common name (as clients did before subjectAltName).
        public var serverNames: [String] {
            if !dnsNames.isEmpty { return dnsNames }
            return commonName.map { [$0.lowercased()] } ?? []
        }
    }

    /// Checks `chainPEM` (the leaf first, then intermediates) against `keyPEM` at `now`.
    public static func check(chainPEM: String, keyPEM: String, now: Date = Date()) -> Result<Summary, Problem> {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: chainPEM).filter { $0.discriminator == "CERTIFICATE" }
        } catch {
            return .failure(Problem("the certificate is not PEM (-----BEGIN CERTIFICATE-----)"))
        }
        guard let leafDocument = documents.first else {
            return .failure(Problem("no PEM certificate (-----BEGIN CERTIFICATE-----) found"))
        }
        let leaf: Certificate
        do {
            leaf = try Certificate(pemDocument: leafDocument)
            for document in documents.dropFirst() { _ = try Certificate(pemDocument: document) }
        } catch {
            return .failure(Problem("a certificate cannot be read: \(error)"))
        }
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: keyPEM)
        } catch {
            return .failure(Problem("the private key cannot be read (an unencrypted PEM key: PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY): \(error)"))
        }
        guard key.publicKey == leaf.publicKey else {
            return .failure(Problem("the private key does not belong to the certificate (\(describe(leaf))): their public keys differ"))
        }
        if leaf.notValidAfter < now {
            return .failure(Problem("the certificate (\(describe(leaf))) expired on \(day(leaf.notValidAfter))"))
        }
        if leaf.notValidBefore > now {
            return .failure(Problem("the certificate (\(describe(leaf))) is not valid before \(day(leaf.notValidBefore))"))
        }
        var names: [String] = []
        if let alternatives = try? leaf.extensions.subjectAlternativeNames {
            for name in alternatives {
                if case .dnsName(let dns) = name { names.append(dns.lowercased()) }
            }
        }
        return .success(Summary(dnsNames: names, commonName: commonName(leaf), notValidAfter: leaf.notValidAfter))
    }

    /// Checks that `pem` holds at least one readable certificate (a CA bundle).
    public static func checkBundle(_ pem: String) -> Problem? {
        guard let documents = try? PEMDocument.parseMultiple(pemString: pem).filter({ $0.discriminator == "CERTIFICATE" }), !documents.isEmpty else {
            return Problem("no PEM certificate (-----BEGIN CERTIFICATE-----) found")
        }
        for document in documents {
            do { _ = try Certificate(pemDocument: document) } catch { return Problem("a certificate cannot be read: \(error)") }
        }
        return nil
    }

    public struct Problem: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    static func commonName(_ certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(attribute.value)
            }
        }
        return nil
    }

    static func describe(_ certificate: Certificate) -> String {
        commonName(certificate).map { "CN=\($0)" } ?? "serial \(certificate.serialNumber)"
    }

    static func day(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: date)
    }
}
