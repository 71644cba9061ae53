import BlockStorage
import CAIO
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The result of opening and sizing a backing file.
struct OpenedBackingFile {
    var fd: Int32
    var ioPath: AIOFileBlockDevice.IOPath
    /// Buffer address alignment O_DIRECT needs (1 on the buffered path).
    var memoryAlignment: Int
}

extension AIOFileBlockDevice {
    /// Opens, locks, sizes and probes the backing file per ``Options``.
    static func openBackingFile(_ options: Options, logger: Logger) throws(AIOFileBlockDeviceError) -> OpenedBackingFile
    {
        let path = options.path
        let geometry = options.geometry
        guard geometry.blockSize == 512 || geometry.blockSize == 4096 else {
            throw AIOFileBlockDeviceError(
                .invalidGeometry, path: path, detail: "block size \(geometry.blockSize) is not 512 or 4096")
        }
        let (size, overflow) = UInt64(geometry.blockSize).multipliedReportingOverflow(by: geometry.blockCount)
        guard geometry.blockCount > 0, !overflow, size <= UInt64(Int64.max) else {
            throw AIOFileBlockDeviceError(
                .invalidGeometry, path: path, detail: "\(geometry.blockCount) blocks of \(geometry.blockSize) bytes")
        }
        guard options.queueDepth > 0, options.queueDepth <= 65536 else {
            throw AIOFileBlockDeviceError(
                .invalidGeometry, path: path, detail: "queue depth \(options.queueDepth) outside 1...65536")
        }

        let baseFlags = options.readOnly ? O_RDONLY : (O_RDWR | O_CREAT)
        var fd: Int32
        var direct = options.directIO != .off
        if direct {
            fd = options.simulateDirectIORefusal ? -EINVAL : tessera_open(path, baseFlags | tessera_o_direct())
            if fd == -EINVAL {
                if options.directIO == .on {
                    throw AIOFileBlockDeviceError(
                        .directIOUnsupported, path: path, errno: EINVAL, detail: "the file system refuses O_DIRECT")
                }
                logger.warning(
                    "file system refuses O_DIRECT; using buffered I/O on a thread pool with fdatasync for flush and FUA",
                    metadata: ["path": "\(path)"])
                direct = false
                fd = tessera_open(path, baseFlags)
            }
        } else {
            fd = tessera_open(path, baseFlags)
        }
        guard fd >= 0 else { throw openError(-fd, options) }

        do throws(AIOFileBlockDeviceError) {
            try checkAndSize(fd: fd, size: size, options: options, logger: logger)
            var memoryAlignment = 1
            if direct {
                if let alignment = try directAlignment(fd: fd, options: options, logger: logger) {
                    memoryAlignment = alignment
                } else {
                    // Reopen without O_DIRECT: the descriptor's flags are fixed at open.
                    direct = false
                    let buffered = tessera_open(path, options.readOnly ? O_RDONLY : O_RDWR)
                    guard buffered >= 0 else { throw openError(-buffered, options) }
                    Glibc.close(fd)
                    fd = buffered
                    try lock(fd: fd, options: options)
                }
            }
            return OpenedBackingFile(fd: fd, ioPath: direct ? .directAIO : .buffered, memoryAlignment: memoryAlignment)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    private static func openError(_ code: Int32, _ options: Options) -> AIOFileBlockDeviceError {
        let path = options.path
        switch code {
        case ENOENT where options.readOnly:
            return AIOFileBlockDeviceError(
                .fileMissing, path: path, errno: code, detail: "a read-only LUN needs an existing file")
        case ENOENT, ENOTDIR:
            return AIOFileBlockDeviceError(
                .directoryMissing, path: path, errno: code, detail: "create the parent directory first")
        case EACCES, EPERM:
            return AIOFileBlockDeviceError(.permissionDenied, path: path, errno: code)
        case EISDIR:
            return AIOFileBlockDeviceError(.notARegularFile, path: path, errno: code, detail: "is a directory")
        case EROFS:
            return AIOFileBlockDeviceError(
                .readOnlyFileSystem, path: path, errno: code, detail: "set read_only = true or move the file")
        case EMFILE, ENFILE, ENOMEM:
            return AIOFileBlockDeviceError(.resourcesUnavailable, path: path, errno: code)
        default:
            return AIOFileBlockDeviceError(.openFailed, path: path, errno: code)
        }
    }

    private static func lock(fd: Int32, options: Options) throws(AIOFileBlockDeviceError) {
        // A LUN's file belongs to one device: two writers would corrupt it.
        if flock(fd, (options.readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 {
            let code = errno
            if code == EWOULDBLOCK {
                throw AIOFileBlockDeviceError(
                    .inUse, path: options.path, errno: code, detail: "another device or process holds the file lock")
            }
            throw AIOFileBlockDeviceError(.openFailed, path: options.path, errno: code, detail: "flock")
        }
    }

    private static func checkAndSize(fd: Int32, size: UInt64, options: Options, logger: Logger)
        throws(AIOFileBlockDeviceError)
    {
        let path = options.path
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw AIOFileBlockDeviceError(.openFailed, path: path, errno: errno, detail: "fstat")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw AIOFileBlockDeviceError(.notARegularFile, path: path)
        }
        try lock(fd: fd, options: options)
        let existing = UInt64(max(info.st_size, 0))
        if existing > size {
            guard options.allowLargerFile else {
                throw AIOFileBlockDeviceError(
                    .fileTooLarge, path: path,
                    detail: "file has \(existing) bytes, the LUN \(size); shrinking would lose data")
            }
            logger.notice(
                "backing file is larger than the LUN; using its first bytes only",
                metadata: ["path": "\(path)", "fileBytes": "\(existing)", "lunBytes": "\(size)"])
            return
        }
        if existing == size && options.thin { return }
        if options.readOnly {
            if existing < size {
                throw AIOFileBlockDeviceError(
                    .fileTooSmall, path: path, detail: "file has \(existing) bytes, the LUN \(size)")
            }
            return
        }
        if existing < size {
            if ftruncate(fd, off_t(size)) != 0 {
                let code = errno
                throw AIOFileBlockDeviceError(
                    code == EFBIG || code == ENOSPC
                        ? .noSpace : (code == EPERM || code == EACCES ? .permissionDenied : .sizingFailed),
                    path: path, errno: code, detail: "ftruncate to \(size) bytes")
            }
            if existing > 0 {
                logger.notice(
                    "extended backing file", metadata: ["path": "\(path)", "from": "\(existing)", "to": "\(size)"])
            }
        }
        if !options.thin {
            let rc = tessera_allocate(fd, 0, Int64(size))
            if rc == -ENOSPC || rc == -EDQUOT {
                throw AIOFileBlockDeviceError(.noSpace, path: path, errno: -rc, detail: "fallocate \(size) bytes")
            } else if rc != 0 {
                logger.warning(
                    "cannot preallocate the backing file; it stays sparse",
                    metadata: ["path": "\(path)", "errno": "\(-rc)"])
            }
        }
    }

    /// The buffer alignment for O_DIRECT on `fd`, or nil when the file system
    /// cannot do O_DIRECT at this block size (auto mode falls back).
    private static func directAlignment(fd: Int32, options: Options, logger: Logger) throws(AIOFileBlockDeviceError)
        -> Int?
    {
        let blockSize = Int(options.geometry.blockSize)
        var memory: UInt32 = 512
        var offset: UInt32 = 512
        _ = tessera_dio_alignment(fd, &memory, &offset)
        let memoryAlignment = max(Int(memory), 1)
        var reason: String?
        if blockSize % Int(offset) != 0 || memoryAlignment > IOBuffer.defaultAlignment {
            reason =
                "O_DIRECT needs \(offset)-byte offsets and \(memory)-byte buffers; the LUN has \(blockSize)-byte blocks"
        } else {
            // Probe one block: some file systems accept O_DIRECT at open and refuse it at I/O.
            let probe = IOBuffer(count: blockSize)
            var rc: Int
            repeat { rc = pread(fd, probe.baseAddress, blockSize, 0) } while rc < 0 && errno == EINTR
            if rc < 0 && errno == EINVAL { reason = "O_DIRECT read refused (EINVAL)" }
        }
        guard let reason else { return memoryAlignment }
        if options.directIO == .on {
            throw AIOFileBlockDeviceError(.directIOUnsupported, path: options.path, detail: reason)
        }
        logger.warning(
            "O_DIRECT unusable; using buffered I/O on a thread pool with fdatasync for flush and FUA",
            metadata: ["path": "\(options.path)", "reason": "\(reason)"])
        return nil
    }
}
