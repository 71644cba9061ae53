#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The narrow interface every backing store implements (LIO's backend shape):
/// geometry, read, write, flush, unmap. The SCSI executor, the libaio file
/// device, the in-memory device and (later) the distributed device meet here.
///
/// Addresses are in logical blocks; buffers are ``IOBuffer``s so an O_DIRECT
/// device can use them without a bounce copy. Implementations must be safe to
/// call concurrently and must never block the caller's thread.
public protocol BlockDevice: AnyObject, Sendable {
    /// Block size and block count. The block size is fixed for the device's
    /// lifetime; the count grows only through ``GrowableBlockDevice/grow(toBlockCount:)``.
    var geometry: BlockGeometry { get }

    /// Whether ``unmap(lba:blockCount:)`` deallocates (thin provisioning).
    var supportsUnmap: Bool { get }

    /// Reads `blockCount` blocks starting at `lba` into `buffer` at byte `offset`.
    func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError)

    /// Writes `blockCount` blocks from `buffer` at byte `offset` to `lba`.
    /// With `fua` the data is durable when the call returns.
    func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool) async throws(BlockDeviceError)

    /// Makes every completed write durable (SYNCHRONIZE CACHE).
    func flush() async throws(BlockDeviceError)

    /// Deallocates the range; later reads return zeros.
    func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError)

    /// Releases file descriptors and threads; later calls fail with `.closed`.
    func close() async

    /// The allocation state of the blocks from `lba` on (thin provisioning,
    /// GET LBA STATUS): consecutive extents, the first starting at `lba`,
    /// covering at most `blockCount` blocks (fewer is allowed). A device that
    /// cannot tell reports everything mapped (the default).
    func allocation(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) -> [BlockExtent]

    /// COMPARE AND WRITE (SBC-3 §5.2) as one step: compares the `blockCount`
    /// blocks at `lba` with the first `blockCount` blocks of `buffer` from
    /// `offset`, and only when they are equal writes the next `blockCount`
    /// blocks there. The default reads, compares and writes, which is atomic
    /// only while the caller keeps other commands off the medium (the logical
    /// unit holds it exclusively); a distributed device runs it at the
    /// sub-unit's primary under that primary's write ordering, so it is atomic
    /// whichever node the command came through.
    func compareAndWrite(lba: UInt64, blockCount: UInt32, buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError) -> CompareAndWriteOutcome
}

/// A device whose capacity can grow while it serves (online LUN resize):
/// blocks below the old count keep their data, the new ones read as zeros.
public protocol GrowableBlockDevice: BlockDevice {
    /// Grows the device to `blockCount` blocks; a count at or below the
    /// current one changes nothing (a device never shrinks while it serves).
    func grow(toBlockCount blockCount: UInt64) async throws(BlockDeviceError)
}

/// What a COMPARE AND WRITE did.
public enum CompareAndWriteOutcome: Sendable, Hashable {
    /// The blocks matched and the new data was written.
    case written
    /// The first differing byte, counted from the start of the compared blocks; nothing was written.
    case miscompare(offset: Int)
}

extension BlockDevice {
    public func compareAndWrite(lba: UInt64, blockCount: UInt32, buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError) -> CompareAndWriteOutcome
    {
        let length = Int(blockCount) * Int(geometry.blockSize)
        precondition(offset >= 0 && offset + 2 * length <= buffer.count, "compare-and-write buffer too small")
        let medium = IOBuffer(count: length)
        try await read(lba: lba, blockCount: blockCount, into: medium, offset: 0)
        if let difference = CompareAndWriteOutcome.firstDifference(medium, 0, buffer, offset, length: length) {
            return .miscompare(offset: difference)
        }
        try await write(lba: lba, blockCount: blockCount, from: buffer, offset: offset + length, fua: fua)
        return .written
    }
}

extension CompareAndWriteOutcome {
    /// The first offset below `length` where `a` (from `aOffset`) and `b` (from `bOffset`) differ.
    public static func firstDifference(_ a: IOBuffer, _ aOffset: Int, _ b: IOBuffer, _ bOffset: Int, length: Int) -> Int? {
        if memcmp(a.baseAddress + aOffset, b.baseAddress + bOffset, length) == 0 { return nil }
        let x = UnsafeRawBufferPointer(start: a.baseAddress + aOffset, count: length)
        let y = UnsafeRawBufferPointer(start: b.baseAddress + bOffset, count: length)
        return (0..<length).first { x[$0] != y[$0] }
    }
}

extension BlockDevice {
    public func allocation(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) -> [BlockExtent] {
        guard contains(lba: lba, blockCount: blockCount) else { throw BlockDeviceError(.outOfRange) }
        return blockCount == 0 ? [] : [BlockExtent(lba: lba, blockCount: blockCount, mapped: true)]
    }
}

/// A run of blocks with one allocation state.
public struct BlockExtent: Sendable, Hashable {
    public var lba: UInt64
    public var blockCount: UInt64
    /// False for deallocated blocks (a hole: they read as zeros).
    public var mapped: Bool

    public init(lba: UInt64, blockCount: UInt64, mapped: Bool) {
        self.lba = lba
        self.blockCount = blockCount
        self.mapped = mapped
    }
}

extension BlockDevice {
    /// Checks that `[lba, lba + blockCount)` lies inside the device without overflowing.
    public func contains(lba: UInt64, blockCount: UInt64) -> Bool {
        let (end, overflow) = lba.addingReportingOverflow(blockCount)
        return !overflow && end <= geometry.blockCount
    }
}

/// Size and shape of a block device.
public struct BlockGeometry: Sendable, Hashable {
    /// Logical block length in bytes (512 or 4096).
    public var blockSize: UInt32
    /// Number of logical blocks.
    public var blockCount: UInt64

    public init(blockSize: UInt32, blockCount: UInt64) {
        self.blockSize = blockSize
        self.blockCount = blockCount
    }

    /// Capacity in bytes.
    public var byteCount: UInt64 { UInt64(blockSize) * blockCount }
}

/// A failure of a block device operation.
public struct BlockDeviceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as far as the SCSI layer needs to know.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate let raw: UInt8
        /// The range lies outside the device (a caller bug: the executor checks first).
        public static let outOfRange = Code(raw: 1)
        /// The medium failed (EIO and friends): MEDIUM ERROR / UNRECOVERED READ ERROR.
        public static let ioError = Code(raw: 2)
        /// The device is write-protected.
        public static let readOnly = Code(raw: 3)
        /// The operation is not supported by this device.
        public static let notSupported = Code(raw: 4)
        /// The device was closed.
        public static let closed = Code(raw: 5)
        /// No space left to allocate a block (thin provisioning).
        public static let noSpace = Code(raw: 6)
        /// The blocks cannot be reached just now (a replica's node did not
        /// answer in time): retryable, on this path or another.
        public static let unavailable = Code(raw: 7)

        public var description: String {
            switch raw {
            case 1: "out of range"
            case 2: "I/O error"
            case 3: "read-only"
            case 4: "not supported"
            case 5: "closed"
            case 6: "no space"
            case 7: "unavailable"
            default: "unknown(\(raw))"
            }
        }
    }

    public var code: Code
    /// The `errno` behind the failure, when there is one.
    public var errno: Int32
    /// Free text for logs; never shown to an initiator.
    public var detail: String

    public init(_ code: Code, errno: Int32 = 0, detail: String = "") {
        self.code = code
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        "BlockDeviceError(\(code)\(errno != 0 ? ", errno \(errno)" : "")\(detail.isEmpty ? "" : ": \(detail)"))"
    }
}
