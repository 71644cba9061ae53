import Foundation

/// A small secret file that only its owner may read or write (chmod 600):
/// the cluster secret, the admin API's token. Anyone who reads such a file
/// holds the credential, so a looser mode is refused, not warned about.
public enum OwnerOnlyFile {
    /// The text of the regular file at `path` (at most `maximumBytes`).
    /// `what` names it in the messages ("admin.token_file /etc/…"), which
    /// say what to do.
    public static func read(_ path: String, what: String, maximumBytes: Int = 4096) throws(ClusterSecretError) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ClusterSecretError("cannot read \(what) \(path): \(String(cString: strerror(errno))); create it and chmod 600 \(path)")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw ClusterSecretError("\(what) \(path) is not a regular file") }
        guard info.st_mode & 0o077 == 0 else {
            throw ClusterSecretError(
                "\(what) \(path) is readable or writable by group or others (mode "
                    + String(info.st_mode & 0o777, radix: 8) + "): chmod 600 \(path); anyone who reads it holds the credential")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ClusterSecretError("\(what) \(path): \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maximumBytes + 1)) ?? Data()
        guard data.count <= maximumBytes else { throw ClusterSecretError("\(what) \(path) is longer than \(maximumBytes) bytes") }
        return String(decoding: data, as: UTF8.self)
    }
}
