import BlockStorage
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

extension AIOFileBlockDevice: GrowableBlockDevice {
    /// Extends the backing file (sparse, `ftruncate`) to `blockCount` blocks,
    /// then serves them; a read-only device refuses, a smaller count changes
    /// nothing. Grows run one at a time per device (the caller's order).
    public func grow(toBlockCount newCount: UInt64) async throws(BlockDeviceError) {
        let current = geometry
        guard newCount > current.blockCount else { return }
        guard !isReadOnly else { throw BlockDeviceError(.readOnly, detail: "\(path) is read-only") }
        let (bytes, overflow) = UInt64(current.blockSize).multipliedReportingOverflow(by: newCount)
        guard !overflow, bytes <= UInt64(Int64.max) else {
            throw BlockDeviceError(.outOfRange, detail: "\(newCount) blocks of \(current.blockSize) bytes")
        }
        try enter()
        defer { leave() }
        let fd = self.fd
        let failure: Int32 = await pool.run {
            var info = stat()
            guard fstat(fd, &info) == 0 else { return errno }
            // A file already longer (it held more before, or another grow
            // got there first) keeps its length and its bytes.
            if UInt64(info.st_size) >= bytes { return 0 }
            return ftruncate(fd, off_t(bytes)) == 0 ? 0 : errno
        } ?? EIO
        if failure != 0 {
            let code: BlockDeviceError.Code = failure == ENOSPC || failure == EFBIG ? .noSpace : .ioError
            throw BlockDeviceError(code, detail: "extending \(path) to \(bytes) bytes: \(String(cString: strerror(failure)))")
        }
        blockCount.store(newCount, ordering: .releasing)
    }

    /// Cuts the backing file (`ftruncate`) to `blockCount` blocks and serves
    /// only those: an administrator's forced shrink, so the blocks past the
    /// new end are gone and read as zeros if the device grows again. A
    /// read-only device refuses, zero blocks is refused, a count at or above
    /// the current one changes nothing. The caller keeps I/O off the blocks
    /// that are cut (the distributed LUN has stopped serving them).
    public func shrink(toBlockCount newCount: UInt64) async throws(BlockDeviceError) {
        let current = geometry
        guard newCount < current.blockCount else { return }
        guard newCount > 0 else { throw BlockDeviceError(.outOfRange, detail: "\(path): a device keeps one block at least") }
        guard !isReadOnly else { throw BlockDeviceError(.readOnly, detail: "\(path) is read-only") }
        let bytes = UInt64(current.blockSize) * newCount
        try enter()
        defer { leave() }
        // Serve the smaller count first: nothing new starts past the new end
        // while the file is being cut.
        blockCount.store(newCount, ordering: .releasing)
        let fd = self.fd
        let failure: Int32 = await pool.run {
            var info = stat()
            guard fstat(fd, &info) == 0 else { return errno }
            if UInt64(info.st_size) <= bytes { return 0 }
            return ftruncate(fd, off_t(bytes)) == 0 ? 0 : errno
        } ?? EIO
        if failure != 0 {
            // Still the old length: serve the old count so that a retry cuts it.
            blockCount.store(current.blockCount, ordering: .releasing)
            throw BlockDeviceError(.ioError, detail: "cutting \(path) to \(bytes) bytes: \(String(cString: strerror(failure)))")
        }
    }
}
