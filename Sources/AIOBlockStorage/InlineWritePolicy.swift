/// Which thread copies a buffered (page-cache) write: the caller's, or the
/// blocking pool.
///
/// A small write of whole pages into the page cache is a memory copy that
/// almost never waits, and handing it to a pool thread costs two thread
/// wake-ups (the pool's, then the caller's event loop's), which on a QD1
/// workload is most of the time and CPU per write. But `pwrite` can wait
/// (dirty-page throttling, the file system's journal), and ext4 refuses
/// `RWF_NOWAIT` on buffered writes, so there is no way to ask first. So a
/// write that qualifies runs on the caller's thread and is timed; one that
/// took longer than ``slowWrite`` sends the next ``backOffWrites`` writes
/// to the pool before the caller's thread is tried again. The caller's
/// thread therefore waits at most once per ``backOffWrites`` writes while
/// the page cache is slow. Pure: the device measures and reports the time.
struct InlineWritePolicy: Sendable, Hashable {
    /// Longest write the caller's thread copies (larger ones are not small
    /// copies any more, and throughput comes from the pool's parallelism).
    static let maximumLength = 64 << 10
    /// A write that took longer than this waited for something other than a copy.
    static let slowWrite = Duration.microseconds(200)
    /// Writes sent to the pool after a slow one.
    static let backOffWrites = 1024

    /// Page size: a write covering whole pages never reads a page first.
    let pageSize: Int
    /// Writes still to send to the pool after the last slow one.
    private(set) var poolWritesLeft = 0

    init(pageSize: Int) {
        precondition(pageSize > 0, "a page has bytes")
        self.pageSize = pageSize
    }

    /// Where a buffered write goes.
    enum Route: Sendable, Hashable {
        /// Copy it on the caller's thread and report the time it took.
        case inline
        /// Run it on the blocking pool.
        case pool
    }

    /// The route for a buffered write of `length` bytes at `fileOffset`.
    /// FUA writes always go to the pool: their `fdatasync` waits for the disk.
    mutating func route(fileOffset: Int, length: Int, fua: Bool) -> Route {
        guard !fua, length > 0, length <= Self.maximumLength, fileOffset % pageSize == 0, length % pageSize == 0
        else { return .pool }
        if poolWritesLeft > 0 {
            poolWritesLeft -= 1
            return .pool
        }
        return .inline
    }

    /// An inline write took `elapsed`.
    mutating func inlineWriteTook(_ elapsed: Duration) {
        if elapsed > Self.slowWrite { poolWritesLeft = Self.backOffWrites }
    }
}
