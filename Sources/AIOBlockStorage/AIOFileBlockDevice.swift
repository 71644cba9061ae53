import BlockStorage
import CAIO
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A ``BlockDevice`` over a file: O_DIRECT with libaio when the file system
/// allows it, buffered pread/pwrite on a small thread pool otherwise.
///
/// - Reads and writes: one iocb per request (split at 1 GiB). Submitted from
///   an event loop's thread that has a ``CompletionPoller``, it completes on
///   that thread (``AIOLoopEngine``: the loop reaps the eventfd); from any
///   other thread, it is submitted in batches and completed by the device's
///   own completion thread (``AIOEngine``). A misaligned buffer goes through
///   an aligned bounce buffer.
/// - Buffered: a read of at most 64 KiB first takes what the page cache
///   holds on the caller's thread (`preadv2(RWF_NOWAIT)`, which never waits
///   for the disk) and sends the rest, if any, to the pool; a larger one
///   whose pages are all cached can be lent as the mapped page cache itself
///   (``mappedRead(lba:blockCount:)``) by a caller that sends it without
///   touching it; writes go to the
///   pool, except small writes of whole pages, copied on the caller's thread
///   while that stays fast (``InlineWritePolicy``).
/// - FUA: `RWF_DSYNC` on the write (buffered path: `pwrite` + `fdatasync`).
/// - Flush: an `IOCB_CMD_FDSYNC` (buffered path: `fdatasync`).
/// - Unmap: `fallocate(PUNCH_HOLE | KEEP_SIZE)` on thin devices.
///
/// No call blocks the caller's thread: libaio submission does not wait for
/// the I/O, and every blocking system call runs on the pool (a page-cache
/// write on the caller's thread that turned out slow sends the next ones to
/// the pool, see ``InlineWritePolicy``).
public final class AIOFileBlockDevice: BlockDevice {
    /// The geometry now: the block count grows with ``grow(toBlockCount:)``.
    public var geometry: BlockGeometry {
        BlockGeometry(blockSize: blockSize, blockCount: blockCount.load(ordering: .acquiring))
    }
    private let blockSize: UInt32
    /// Grows only, after the file has been extended (``grow(toBlockCount:)``).
    let blockCount: Atomic<UInt64>
    public let supportsUnmap: Bool
    /// The backing file.
    public let path: String
    /// The I/O path chosen at open.
    public let ioPath: IOPath
    /// Whether writes and unmaps are refused.
    public let isReadOnly: Bool

    let fd: Int32
    private let engine: AIOEngine?
    let pool: BlockingThreadPool
    private let memoryAlignment: Int
    private let gate = Mutex(Gate())
    private let inlineWrites: Mutex<InlineWritePolicy>
    let logger: Logger
    /// Whether buffered reads try the page cache on the caller's thread first;
    /// cleared when the kernel or file system refuses `RWF_NOWAIT`.
    private let cachedReads: Atomic<Bool>
    /// `preadv2(RWF_NOWAIT)`: bytes read or a negative errno (tests replace it).
    private let readCached: @Sendable (Int32, UnsafeMutableRawPointer, Int, Int) -> Int
    /// Where the requests went (tests and diagnostics).
    let routes = Routes()
    /// The read-only mappings reads are lent from, by window index, made on
    /// first use (``mappedRead(lba:blockCount:)``).
    let mappedWindows = Mutex(MappedWindows())

    /// Longest single transfer handed to the kernel (Linux caps one call at ~2 GiB).
    static let maxTransfer = 1 << 30
    /// Longest buffered read tried from the page cache on the caller's
    /// thread. A larger one is a long copy that would hold up the event loop,
    /// which then cannot send earlier reads' data meanwhile: on the pool the
    /// copies of a QD4 1 MiB stream overlap with the sends (measured: 1 MiB
    /// reads at QD4 ran 15-40 % slower copied on the loop). Larger cached
    /// reads are lent instead (``mappedRead(lba:blockCount:)``).
    static let maximumCachedRead = LentReads.lendsReadsAbove

    /// Counts operations in progress so ``close()`` can wait for them before
    /// closing the descriptor.
    private struct Gate {
        var closed = false
        var active = 0
        var drained: UnsafeContinuation<Void, Never>?
    }

    /// Opens (creating or extending as ``Options`` says) the backing file.
    public convenience init(options: Options, logger: Logger = Logger(label: "tessera.aio"))
        throws(AIOFileBlockDeviceError)
    {
        try self.init(options: options, logger: logger) { fd, address, length, offset in
            tessera_pread_nowait(fd, address, length, Int64(offset))
        }
    }

    /// Opens the backing file; `readCached` stands for `preadv2(RWF_NOWAIT)`.
    init(
        options: Options, logger: Logger,
        readCached: @escaping @Sendable (Int32, UnsafeMutableRawPointer, Int, Int) -> Int
    ) throws(AIOFileBlockDeviceError) {
        var logger = logger
        logger[metadataKey: "path"] = "\(options.path)"
        let opened = try Self.openBackingFile(options, logger: logger)
        let threads = opened.ioPath == .buffered ? max(options.blockingThreads, 1) : 2
        guard let pool = BlockingThreadPool(threadCount: threads, name: "tessera-blk") else {
            Glibc.close(opened.fd)
            throw AIOFileBlockDeviceError(.resourcesUnavailable, path: options.path, detail: "cannot start I/O threads")
        }
        var engine: AIOEngine?
        if opened.ioPath == .directAIO {
            switch AIOEngine.make(depth: options.queueDepth, name: "tessera-aio") {
            case .success(let made): engine = made
            case .failure(let failure):
                pool.shutdown()
                Glibc.close(opened.fd)
                throw AIOFileBlockDeviceError(
                    .resourcesUnavailable, path: options.path, errno: failure.errno,
                    detail: "io_setup(\(options.queueDepth))")
            }
        }
        self.blockSize = options.geometry.blockSize
        self.blockCount = Atomic(options.geometry.blockCount)
        self.supportsUnmap = options.thin
        self.path = options.path
        self.ioPath = opened.ioPath
        self.isReadOnly = options.readOnly
        self.fd = opened.fd
        self.engine = engine
        self.pool = pool
        self.memoryAlignment = opened.memoryAlignment
        self.inlineWrites = Mutex(InlineWritePolicy(pageSize: max(Int(sysconf(Int32(_SC_PAGESIZE))), 512)))
        self.logger = logger
        self.cachedReads = Atomic(IOTuning.cachedReads)
        self.readCached = readCached
        logger.info(
            "opened backing file",
            metadata: [
                "bytes": "\(geometry.byteCount)", "blockSize": "\(geometry.blockSize)",
                "io": "\(ioPath.rawValue)", "readOnly": "\(isReadOnly)", "thin": "\(supportsUnmap)",
            ])
    }

    // MARK: BlockDevice

    public func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError)
    {
        let (start, length) = try byteRange(lba, UInt64(blockCount))
        precondition(offset >= 0 && offset + length <= buffer.count, "read buffer too small")
        try enter()
        defer { leave() }
        var done = 0
        while done < length {
            let chunk = min(length - done, Self.maxTransfer)
            try await transfer(
                isWrite: false, buffer: buffer, offset: offset + done, length: chunk, fileOffset: start + done,
                fua: false)
            done += chunk
        }
    }

    public func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError)
    {
        let (start, length) = try byteRange(lba, UInt64(blockCount))
        precondition(offset >= 0 && offset + length <= buffer.count, "write buffer too small")
        guard !isReadOnly else { throw BlockDeviceError(.readOnly, detail: path) }
        try enter()
        defer { leave() }
        var done = 0
        while done < length {
            let chunk = min(length - done, Self.maxTransfer)
            try await transfer(
                isWrite: true, buffer: buffer, offset: offset + done, length: chunk, fileOffset: start + done, fua: fua)
            done += chunk
        }
    }

    public func flush() async throws(BlockDeviceError) {
        try enter()
        defer { leave() }
        if let engine {
            let request = AIORequest()
            tessera_prep_fdsync(request.iocb, fd, nil)
            let result = await perform(request, engine)
            // Kernels before 4.18 refuse IOCB_CMD_FDSYNC on most file systems.
            if result != -Int(EINVAL) { return try Self.check(result, expected: 0, operation: "fdsync") }
        }
        try await blockingFlush()
    }

    public func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) {
        let (start, length) = try byteRange(lba, blockCount)
        guard supportsUnmap else { throw BlockDeviceError(.notSupported, detail: "thick-provisioned \(path)") }
        guard !isReadOnly else { throw BlockDeviceError(.readOnly, detail: path) }
        try enter()
        defer { leave() }
        guard length > 0 else { return }
        let fd = self.fd
        let result = await pool.run { Int(tessera_punch_hole(fd, Int64(start), Int64(length))) }
        try Self.check(result ?? -Int(EBADF), expected: 0, operation: "punch hole")
    }

    /// Allocation from the file's holes (`lseek` SEEK_DATA / SEEK_HOLE); a
    /// block partly backed by data counts as mapped. A thick file is all mapped.
    public func allocation(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) -> [BlockExtent] {
        let (start, length) = try byteRange(lba, blockCount)
        guard supportsUnmap, length > 0 else {
            return length == 0 ? [] : [BlockExtent(lba: lba, blockCount: blockCount, mapped: true)]
        }
        try enter()
        defer { leave() }
        let fd = self.fd
        let blockSize = Int64(geometry.blockSize)
        let end = Int64(start + length)
        let runs: [(Int64, Int64, Bool)]? = await pool.run {
            var runs: [(Int64, Int64, Bool)] = []
            var at = Int64(start)
            while at < end {
                let data = lseek(fd, off_t(at), 3 /* SEEK_DATA */)
                if data < 0 {
                    // ENXIO: no data after `at`; anything else: report mapped (cannot tell).
                    runs.append((at, end, errno != ENXIO))
                    break
                }
                if data > at {
                    runs.append((at, min(Int64(data), end), false))
                    at = min(Int64(data), end)
                    continue
                }
                let hole = lseek(fd, off_t(at), 4 /* SEEK_HOLE */)
                let next = hole < 0 ? end : min(Int64(hole), end)
                runs.append((at, max(next, at + 1), true))
                at = max(next, at + 1)
            }
            return runs
        }
        guard let runs else { throw BlockDeviceError(.closed) }
        // Bytes → blocks: a block holding any data is mapped; the rest of the range is not.
        let rangeEnd = lba + blockCount
        var extents: [BlockExtent] = []
        var cursor = lba
        for (from, to, mapped) in runs where mapped {
            let first = max(UInt64(from / blockSize), cursor)
            let last = min(UInt64((to + blockSize - 1) / blockSize), rangeEnd)
            guard last > first else { continue }
            if first > cursor { extents.append(BlockExtent(lba: cursor, blockCount: first - cursor, mapped: false)) }
            if let tail = extents.last, tail.mapped, tail.lba + tail.blockCount == first {
                extents[extents.count - 1].blockCount += last - first
            } else {
                extents.append(BlockExtent(lba: first, blockCount: last - first, mapped: true))
            }
            cursor = last
        }
        if cursor < rangeEnd { extents.append(BlockExtent(lba: cursor, blockCount: rangeEnd - cursor, mapped: false)) }
        return extents
    }

    public func close() async {
        let wait: Bool = gate.withLock { g in
            if g.closed { return false }
            g.closed = true
            return true
        }
        guard wait else { return }
        retireMappedWindows()
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let now: Bool = gate.withLock { g in
                if g.active == 0 { return true }
                g.drained = continuation
                return false
            }
            if now { continuation.resume() }
        }
        await engine?.shutdown()
        pool.shutdown()
        Glibc.close(fd)
        logger.info("closed backing file")
    }

    // MARK: Internals

    func byteRange(_ lba: UInt64, _ blocks: UInt64) throws(BlockDeviceError) -> (Int, Int) {
        guard contains(lba: lba, blockCount: blocks) else { throw BlockDeviceError(.outOfRange) }
        let blockSize = Int(geometry.blockSize)
        let (length, overflow) = Int(blocks).multipliedReportingOverflow(by: blockSize)
        guard !overflow else { throw BlockDeviceError(.outOfRange) }
        return (Int(lba) * blockSize, length)
    }

    func enter() throws(BlockDeviceError) {
        try gate.withLock { (g: inout Gate) throws(BlockDeviceError) in
            guard !g.closed else { throw BlockDeviceError(.closed) }
            g.active += 1
        }
    }

    func leave() {
        let waiter: UnsafeContinuation<Void, Never>? = gate.withLock { g in
            g.active -= 1
            guard g.active == 0, let waiter = g.drained else { return nil }
            g.drained = nil
            return waiter
        }
        waiter?.resume()
    }

    private func transfer(isWrite: Bool, buffer: IOBuffer, offset: Int, length: Int, fileOffset: Int, fua: Bool)
        async throws(BlockDeviceError)
    {
        guard let engine else {
            return try await bufferedTransfer(
                isWrite: isWrite, buffer: buffer, offset: offset, length: length, fileOffset: fileOffset, fua: fua)
        }
        let address = buffer.baseAddress + offset
        if Int(bitPattern: address) % memoryAlignment == 0 {
            return try await aioTransfer(
                engine, isWrite: isWrite, address: address, length: length, fileOffset: fileOffset, fua: fua)
        }
        // O_DIRECT needs an aligned buffer: go through a bounce buffer.
        let bounce = IOBuffer(count: length, alignment: max(memoryAlignment, IOBuffer.defaultAlignment))
        if isWrite { memcpy(bounce.baseAddress, address, length) }
        try await aioTransfer(
            engine, isWrite: isWrite, address: bounce.baseAddress, length: length, fileOffset: fileOffset, fua: fua)
        if !isWrite { memcpy(address, bounce.baseAddress, length) }
    }

    private func aioTransfer(
        _ engine: AIOEngine, isWrite: Bool, address: UnsafeMutableRawPointer, length: Int, fileOffset: Int, fua: Bool
    ) async throws(BlockDeviceError) {
        let request = AIORequest()
        if isWrite {
            tessera_prep_pwrite(request.iocb, fd, address, length, Int64(fileOffset), fua ? 1 : 0, nil)
        } else {
            tessera_prep_pread(request.iocb, fd, address, length, Int64(fileOffset), nil)
        }
        let result = await perform(request, engine)
        if isWrite && fua && result == -Int(EINVAL) {
            // A kernel without RWF_DSYNC for aio: plain write, then fdatasync.
            let plain = AIORequest()
            tessera_prep_pwrite(plain.iocb, fd, address, length, Int64(fileOffset), 0, nil)
            try Self.check(await perform(plain, engine), expected: length, operation: "write")
            return try await blockingFlush()
        }
        try Self.check(result, expected: length, operation: isWrite ? "write" : "read")
    }

    /// Runs a prepared request on the calling thread's loop engine when it
    /// has one that takes it (the completion comes back on this thread), else
    /// on the device's engine.
    private func perform(_ request: AIORequest, _ engine: AIOEngine) async -> Int {
        if IOTuning.loopCompletions, let loop = AIOLoopEngine.current,
            case .completed(let result) = await loop.perform(request)
        {
            Routes.count(routes.loop)
            return result
        }
        Routes.count(routes.engine)
        return await engine.perform(request)
    }

    private func bufferedTransfer(isWrite: Bool, buffer: IOBuffer, offset: Int, length: Int, fileOffset: Int, fua: Bool)
        async throws(BlockDeviceError)
    {
        let fd = self.fd
        var cachedBytes = 0
        if !isWrite, length <= Self.maximumCachedRead, cachedReads.load(ordering: .relaxed) {
            let rc = readCached(fd, buffer.baseAddress + offset, length, fileOffset)
            if rc == length {
                Routes.count(routes.cached)
                return
            }
            if rc > 0 {
                // Part of the range is not in the page cache: the pool reads the rest.
                Routes.count(routes.partlyCached)
                cachedBytes = rc
            } else if rc == -Int(EOPNOTSUPP) || rc == -Int(EINVAL) || rc == -Int(ENOSYS) {
                // The kernel or the file system does not offer RWF_NOWAIT: stop asking.
                cachedReads.store(false, ordering: .relaxed)
            }
            // EAGAIN (nothing cached), 0 (past a truncated end) or an error: the pool's pread decides.
        }
        if !isWrite { Routes.count(routes.pool) }
        let first = cachedBytes
        let work = { @Sendable () -> Int in
            var done = first
            while done < length {
                let address = buffer.baseAddress + offset + done
                let position = off_t(fileOffset + done)
                let rc =
                    isWrite ? pwrite(fd, address, length - done, position) : pread(fd, address, length - done, position)
                if rc < 0 {
                    if errno == EINTR { continue }
                    return -Int(errno)
                }
                if rc == 0 {
                    if isWrite { return -Int(EIO) }
                    // Past the end of a file someone truncated: the blocks read as zeros.
                    memset(address, 0, length - done)
                    break
                }
                done += rc
            }
            if isWrite && fua && fdatasync(fd) != 0 { return -Int(errno) }
            return length
        }
        let result: Int?
        if isWrite, inlineWrites.withLock({ $0.route(fileOffset: fileOffset, length: length, fua: fua) }) == .inline {
            let clock = ContinuousClock()
            let start = clock.now
            result = work()
            let elapsed = clock.now - start
            inlineWrites.withLock { $0.inlineWriteTook(elapsed) }
        } else {
            result = await pool.run(work)
        }
        try Self.check(result ?? -Int(EBADF), expected: length, operation: isWrite ? "pwrite" : "pread")
    }

    private func blockingFlush() async throws(BlockDeviceError) {
        let fd = self.fd
        let result = await pool.run { fdatasync(fd) == 0 ? 0 : -Int(errno) }
        try Self.check(result ?? -Int(EBADF), expected: 0, operation: "fdatasync")
    }

    /// Maps a byte count or negative errno to success or a ``BlockDeviceError``.
    static func check(_ result: Int, expected: Int, operation: String) throws(BlockDeviceError) {
        if result == expected { return }
        guard result < 0 else {
            throw BlockDeviceError(.ioError, detail: "short \(operation): \(result) of \(expected) bytes")
        }
        let code = Int32(-result)
        switch code {
        case ENOSPC, EDQUOT: throw BlockDeviceError(.noSpace, errno: code, detail: operation)
        case EROFS: throw BlockDeviceError(.readOnly, errno: code, detail: operation)
        case EOPNOTSUPP: throw BlockDeviceError(.notSupported, errno: code, detail: operation)
        case EBADF: throw BlockDeviceError(.closed, errno: code, detail: operation)
        default: throw BlockDeviceError(.ioError, errno: code, detail: operation)
        }
    }
}
