#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A heap buffer aligned for O_DIRECT I/O (4096 bytes by default).
///
/// Reference type so a buffer can be filled by the transport (Data-Out),
/// handed to a device, and read back without copies. Not synchronised: one
/// owner at a time, as the command lifecycle guarantees.
///
/// A buffer either owns its memory (from ``IOBufferPool``, given back on
/// deinit) or lives in memory another object owns
/// (``init(adopting:count:owner:)``): a transport's send buffer, so the data
/// a device reads into it goes out without a copy.
public final class IOBuffer: @unchecked Sendable {
    /// The alignment every buffer gets; covers 512- and 4096-byte sector devices.
    public static let defaultAlignment = 4096

    /// Start of the memory.
    public let baseAddress: UnsafeMutableRawPointer
    /// Size in bytes.
    public let count: Int
    /// The object whose memory this is, kept alive while the buffer is; nil
    /// when the buffer allocated the memory itself.
    public let owner: AnyObject?

    /// Allocates `count` bytes (zero-filled when `zeroed`).
    public init(count: Int, alignment: Int = IOBuffer.defaultAlignment, zeroed: Bool = false) {
        precondition(count >= 0, "negative buffer size")
        let pointer =
            alignment <= Self.defaultAlignment
            ? IOBufferPool.shared.allocate(count: count) : IOBufferPool.alignedAllocation(count, alignment: alignment)
        self.baseAddress = pointer
        self.count = count
        self.owner = nil
        if zeroed { memset(pointer, 0, max(count, 1)) }
    }

    /// Allocates a buffer holding a copy of `bytes`.
    public convenience init(bytes: some Collection<UInt8>) {
        self.init(count: bytes.count)
        UnsafeMutableRawBufferPointer(start: baseAddress, count: count).copyBytes(from: bytes)
    }

    /// A buffer over `count` bytes at `baseAddress`, memory that `owner` keeps
    /// valid for as long as it lives; the buffer holds `owner` and never frees
    /// the memory. The caller is responsible for any alignment the memory needs.
    public init(adopting baseAddress: UnsafeMutableRawPointer, count: Int, owner: AnyObject) {
        precondition(count >= 0, "negative buffer size")
        self.baseAddress = baseAddress
        self.count = count
        self.owner = owner
    }

    deinit { if owner == nil { IOBufferPool.shared.release(baseAddress) } }

    /// The whole buffer as a raw buffer pointer.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: baseAddress, count: count)
    }

    /// A copy of `range` as an array (tests and small control data).
    public func array(_ range: Range<Int>? = nil) -> [UInt8] {
        let r = range ?? 0..<count
        precondition(r.lowerBound >= 0 && r.upperBound <= count, "IOBuffer range out of bounds")
        return Array(UnsafeRawBufferPointer(rebasing: bytes[r]))
    }

    /// Fills the buffer with zeros.
    public func zero() { memset(baseAddress, 0, count) }
}

/// Where a command's read data is allocated: a transport provides one whose
/// buffers it can send as they are, so the device fills the bytes that go on
/// the wire. Buffers must be aligned to ``IOBuffer/defaultAlignment``.
public protocol IOBufferAllocator: Sendable {
    /// An uninitialised buffer of `count` bytes, aligned to ``IOBuffer/defaultAlignment``.
    func buffer(count: Int) -> IOBuffer

    /// Whether the transport can send a device's own memory as it is
    /// (``MappedReadableBlockDevice``): read-only, never written, and never
    /// read by the transport's own code, only handed to the kernel.
    var sendsLentMemory: Bool { get }
}

extension IOBufferAllocator {
    public var sendsLentMemory: Bool { false }
}
