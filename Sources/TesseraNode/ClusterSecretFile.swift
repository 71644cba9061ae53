import ClusterAuth
import Foundation
import Logging

/// Where a node's cluster secret comes from: `cluster.secret_file`, or
/// `data_dir/cluster.secret`. A node that starts a cluster on its own (no
/// `cluster.join`) makes that file the first time; a node that joins must
/// be given a copy, since the members' store and peer ports take nothing
/// from a node that cannot prove the secret.
public enum ClusterSecretFile {
    /// The file name under `data_dir` when `cluster.secret_file` is not set.
    public static let defaultName = "cluster.secret"

    /// The path the node reads.
    static func path(_ settings: ClusterSettings, dataDirectory: String) -> String {
        if let file = settings.secretFile { return file }
        let base = dataDirectory.hasSuffix("/") ? String(dataDirectory.dropLast()) : dataDirectory
        return "\(base)/\(defaultName)"
    }

    /// Reads the node's secret, making it first when this node starts a
    /// cluster on its own and has none yet.
    static func resolve(_ settings: ClusterSettings, dataDirectory: String, logger: Logger) throws -> ClusterSecret {
        let path = path(settings, dataDirectory: dataDirectory)
        do {
            if FileManager.default.fileExists(atPath: path) { return try ClusterSecret.load(path: path) }
            guard settings.secretFile == nil, settings.join.isEmpty else {
                throw NodeStartupError(
                    message: "no cluster secret at \(path): a node that joins a cluster (cluster.join) must hold the cluster's "
                        + "secret; copy it from a member (\(defaultName) in the first node's data_dir, chmod 600) to \(path)"
                        + (settings.secretFile == nil ? " or set cluster.secret_file" : "")
                        + ", or make one for a new cluster with `tesserad --new-cluster-secret \(path)`")
            }
            try DataDirectory.create(dataDirectory)
            let secret = try ClusterSecret.create(at: path)
            logger.notice(
                "made a new cluster secret; every node that joins this cluster needs a copy (cluster.secret_file)",
                metadata: ["path": "\(path)"])
            return secret
        } catch let error as ClusterSecretError {
            throw NodeStartupError(message: error.description)
        }
    }

    /// `tesserad --new-cluster-secret PATH`: a new random secret in a new
    /// file (mode 600). Returns a message for the operator, or throws one.
    public static func makeNew(at path: String) throws -> String {
        do {
            _ = try ClusterSecret.create(at: path)
        } catch {
            throw NodeStartupError(message: error.description)
        }
        return "wrote a new cluster secret to \(path) (mode 600): copy it to every node of the cluster and point "
            + "cluster.secret_file at it (or put it at data_dir/\(defaultName))"
    }
}

/// The node's data directory holds the store (CHAP secrets in clear, since
/// CHAP's MD5 needs them) and the cluster secret, so it is made owner-only.
enum DataDirectory {
    /// Creates `path` (and parents) with mode 700 when missing.
    static func create(_ path: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else { return }
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw NodeStartupError(message: "cannot create data_dir \(path): \(error.localizedDescription)")
        }
    }

    /// Creates the directory owner-only, or warns when an existing one is
    /// open to others.
    static func prepare(_ path: String, logger: Logger) throws {
        try create(path)
        if let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
            logger.warning(
                "data_dir is open to other users: it holds the store (CHAP secrets) and the cluster secret; chmod 700 it",
                metadata: ["path": "\(path)", "mode": "\(String(mode, radix: 8))"])
        }
    }
}
