import CClusterAuth
import Foundation

/// The cluster's shared secret: what a node proves before its store or peer
/// port carries anything (``ClusterHandshakeResponder``). The file holds one
/// line of text (``create(at:)`` writes 64 hex digits); the HMAC key is that
/// line's bytes, surrounding white space removed. Printing a secret shows no
/// part of it.
public struct ClusterSecret: Sendable, Hashable, CustomStringConvertible {
    /// Fewer bytes than this are refused: 128 bits is what an HMAC key
    /// needs against guessing.
    public static let minimumLength = 16

    let bytes: [UInt8]

    /// The secret in `text` (trimmed), or nil when shorter than ``minimumLength``.
    public init?(text: String) {
        let trimmed = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        guard trimmed.count >= Self.minimumLength else { return nil }
        bytes = trimmed
    }

    public var description: String { "ClusterSecret(\(bytes.count) bytes, redacted)" }

    /// A new random secret: 32 bytes from the system's cryptographic source, as hex text.
    public static func random() throws(ClusterSecretError) -> (secret: ClusterSecret, text: String) {
        var raw = [UInt8](repeating: 0, count: 32)
        guard tessera_auth_random(&raw, raw.count) == 0 else { throw ClusterSecretError("no random source for a new cluster secret") }
        let text = raw.map { String(format: "%02x", $0) }.joined()
        tessera_auth_wipe(&raw, raw.count)
        guard let secret = ClusterSecret(text: text) else { throw ClusterSecretError("generated secret too short") }
        return (secret, text)
    }

    /// Reads the secret file at `path`. It must be a regular file that
    /// neither its group nor others can read or write (chmod 600), since
    /// anyone who reads it can join the cluster.
    public static func load(path: String) throws(ClusterSecretError) -> ClusterSecret {
        let text = try OwnerOnlyFile.read(path, what: "the cluster secret file")
        guard let secret = ClusterSecret(text: text) else {
            throw ClusterSecretError("the cluster secret in \(path) is shorter than \(minimumLength) bytes")
        }
        return secret
    }

    /// Writes a new random secret to `path` (mode 600; never over an
    /// existing file) and returns it.
    public static func create(at path: String) throws(ClusterSecretError) -> ClusterSecret {
        let (secret, text) = try random()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ClusterSecretError("cannot create the cluster secret file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let line = Array((text + "\n").utf8)
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(fd) == 0 else {
            unlink(path)
            throw ClusterSecretError("cannot write the cluster secret file \(path): \(String(cString: strerror(errno)))")
        }
        return secret
    }
}

/// Why a cluster secret could not be read or made; the message says what to do.
public struct ClusterSecretError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension ClusterSecret {
    /// The key bytes, for code that hands them to C (libdqlite's connect function).
    public func withBytes<T>(_ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        try bytes.withUnsafeBufferPointer(body)
    }
}
