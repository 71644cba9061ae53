import BlockStorage

extension AIOFileBlockDevice {
    /// Whether to use O_DIRECT with libaio.
    public enum DirectIO: String, Sendable, Hashable, CaseIterable {
        /// O_DIRECT + libaio when the file system accepts it, else buffered I/O (logged).
        case auto
        /// O_DIRECT + libaio or fail to open (``AIOFileBlockDeviceError/Code/directIOUnsupported``).
        case on
        /// Buffered pread/pwrite on a thread pool, fdatasync for flush and FUA.
        case off
    }

    /// The I/O path a device ended up on.
    public enum IOPath: String, Sendable, Hashable {
        /// O_DIRECT file descriptor, libaio submission, completion thread.
        case directAIO = "libaio+O_DIRECT"
        /// Page-cache file descriptor, pread/pwrite on a small thread pool.
        case buffered = "buffered"
    }

    /// How to open and size the backing file.
    ///
    /// Sizing rules: a missing file is created sparse (`ftruncate`) — and
    /// fully allocated with `fallocate` when `thin` is false; a smaller
    /// existing file is extended the same way (its data is kept); a larger
    /// existing file is an error unless `allowLargerFile`, in which case only
    /// its first `geometry.byteCount` bytes are used. A read-only device never
    /// creates or extends its file.
    public struct Options: Sendable, Hashable {
        /// Path of the backing file.
        public var path: String
        /// Block size (512 or 4096) and block count.
        public var geometry: BlockGeometry
        /// O_DIRECT policy.
        public var directIO: DirectIO
        /// Open read-only; writes and unmaps fail with `.readOnly`.
        public var readOnly: Bool
        /// Sparse file with UNMAP support (punch hole); false allocates every block.
        public var thin: Bool
        /// Accept an existing file larger than the LUN.
        public var allowLargerFile: Bool
        /// Most libaio requests in the kernel at once.
        public var queueDepth: Int
        /// Threads for blocking calls (buffered I/O, fdatasync fallback, fallocate).
        public var blockingThreads: Int
        /// Test hook: behave as if open(O_DIRECT) failed with EINVAL (tmpfs on old kernels).
        var simulateDirectIORefusal = false

        public init(
            path: String, geometry: BlockGeometry, directIO: DirectIO = .auto, readOnly: Bool = false,
            thin: Bool = true, allowLargerFile: Bool = false, queueDepth: Int = 128, blockingThreads: Int = 4
        ) {
            self.path = path
            self.geometry = geometry
            self.directIO = directIO
            self.readOnly = readOnly
            self.thin = thin
            self.allowLargerFile = allowLargerFile
            self.queueDepth = queueDepth
            self.blockingThreads = blockingThreads
        }
    }
}
