import Crypto
import CryptoExtras
import FerryModel
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Checks `Proxy-Authorization: Basic` credentials against a users file (PBKDF2-HMAC-SHA256 hashes).
/// The hash is deliberately slow, so it runs on NIO's blocking pool, never on an event loop, and a
/// credential that verified is remembered (bounded) so each one is hashed once per snapshot.
final class ProxyAuthenticator: Sendable {
    let users: ProxyUsers
    /// The `Proxy-Authorization` value of a verified credential → the user.
    private let verified = NIOLockedValueBox<[String: String]>([:])
    static let rememberedLimit = 10_000
    /// Rounds for new hashes (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
    static let defaultRounds = 600_000

    init(users: ProxyUsers) {
        self.users = users
    }

    /// The user of an already verified credential.
    func rememberedUser(_ header: String) -> String? {
        verified.withLockedValue { $0[header] }
    }

    /// Verifies `header` off the event loop; the future gives the user, or nil when the credential is wrong.
    func verify(_ header: String, on eventLoop: EventLoop) -> EventLoopFuture<String?> {
        guard let (user, password) = ProxyUsers.basicCredentials(header), let expected = users.users[user] else {
            return eventLoop.makeSucceededFuture(nil)
        }
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { () -> String? in
            let derived = try ProxyAuthenticator.derive(password: password, salt: expected.salt, rounds: expected.rounds)
            guard ProxyAuthenticator.constantTimeEqual(derived, expected.hash) else { return nil }
            self.verified.withLockedValue { cache in
                if cache.count >= ProxyAuthenticator.rememberedLimit { cache.removeAll() }
                cache[header] = user
            }
            return user
        }.flatMapErrorThrowing { _ in nil }
    }

    static func derive(password: String, salt: [UInt8], rounds: Int) throws -> [UInt8] {
        // The file's round count is checked when it is read (at least 1000, as other tools write); the
        // library's own minimum would refuse hashes made elsewhere with fewer rounds.
        let key = try KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: rounds)
        return key.withUnsafeBytes { Array($0) }
    }

    /// A new hash for `password` with a random salt: what `ferry egress --hash-password` prints.
    public static func makeHash(password: String, rounds: Int = defaultRounds) throws -> ProxyUsers.PasswordHash {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return ProxyUsers.PasswordHash(rounds: rounds, salt: salt, hash: try derive(password: password, salt: salt, rounds: rounds))
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

/// `ferry egress --hash-password`: a users-file hash for a password.
public enum PasswordHashing {
    public static func hashLine(password: String) throws -> String {
        try ProxyAuthenticator.makeHash(password: password).text
    }
}
