import Logging
import MetadataStore

#if canImport(Glibc)
    import Glibc
#endif

/// A node that was away while a LUN was shrunk through the cluster.
extension DataPlane {
    /// Its replica file is still longer than the LUN (up to the size the LUN
    /// had before): it is cut to the LUN's size before it is opened, as the
    /// others cut theirs (a file longer than that is left for the open to refuse).
    static func cutAfterShrink(_ key: LUNKey, _ lun: LUNConfiguration, configuration: NodeConfiguration, logger: Logger)
    {
        guard let before = lun.shrunkFromBytes, !lun.readOnly, case .file(let path) = lun.backing else { return }
        let resolved = configuration.resolve(path)
        switch cutReplicaFile(resolved, to: lun.size, ifAtMost: before) {
        case .success(let length?):
            logger.notice(
                "LUN was shrunk while this node was away; its replica file is cut to the LUN's size",
                metadata: ["lun": "\(key)", "path": "\(resolved)", "from": "\(length)", "to": "\(lun.size)"])
        case .success(nil): break
        case .failure(let code):
            logger.warning(
                "cannot cut a shrunk LUN's replica file", metadata: ["path": "\(resolved)", "errno": "\(code)"])
        }
    }

    /// Cuts the file at `path` to `size` bytes when it is longer than that
    /// and at most `before` bytes long; answers its length before the cut,
    /// nil when it was left alone (missing, short enough, or longer than any
    /// size the LUN had), or the errno of a failed cut.
    static func cutReplicaFile(_ path: String, to size: UInt64, ifAtMost before: UInt64) -> Result<UInt64?, Errno> {
        var info = stat()
        guard stat(path, &info) == 0 else { return .success(nil) }
        let length = UInt64(max(info.st_size, 0))
        guard length > size, length <= before else { return .success(nil) }
        return truncate(path, off_t(size)) == 0 ? .success(length) : .failure(Errno(errno))
    }

    /// An `errno` as an error.
    struct Errno: Error, Hashable, CustomStringConvertible {
        var code: Int32
        init(_ code: Int32) { self.code = code }
        var description: String { "\(code) (\(String(cString: strerror(code))))" }
    }
}
