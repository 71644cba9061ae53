#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Aligned memory for I/O buffers, kept for reuse instead of being handed
/// back to the allocator.
///
/// Why: glibc serves an allocation of 128 KiB and more with a fresh `mmap`
/// (or grows and trims an arena for it), so every 1 MiB command buffer cost
/// 256 page faults and as many cleared pages, about a sixth of the event loop's
/// time in a 1 MiB write profile. Smaller aligned buffers are cheaper but not
/// cheap: a 4 KiB Data-In buffer (8 KiB with its alignment pad) is too large
/// for malloc's per-thread cache, so it went through the bins with their
/// consolidation, and malloc and free were a tenth of a 4 KiB QD32 read
/// profile. A buffer that comes back here is kept, up to
/// ``retainedBytesLimit`` in all, and the next request of its size class gets
/// it with its pages already mapped.
///
/// Size classes are the powers of two from ``smallestPooled`` (4 KiB, the
/// alignment) to ``largestPooled``. Smaller requests go to `posix_memalign`
/// as they are, larger ones too (rare: a transfer above the negotiated burst
/// lengths).
///
/// ``release(_:)`` takes any pointer ``allocate(count:)`` returned and finds
/// its class from `malloc_usable_size`, so callers that know only the pointer
/// (NIO's allocator hooks) can give memory back. A pointer is kept for a class
/// only if it is aligned and at least the class's size is usable, whatever
/// path it took, so a kept buffer always fits the requests that class serves.
///
/// Memory from here is not cleared: as with malloc, a caller that needs zeros
/// writes them.
public final class IOBufferPool: Sendable {
    /// The smallest size class: 4 KiB.
    public static let smallestPooled = 4 << 10
    /// The largest size class: 16 MiB.
    public static let largestPooled = 16 << 20
    /// The process's pool: keeps up to 64 MiB, or `TESSERA_IO_BUFFER_POOL_MIB`
    /// MiB when that is set (0 keeps nothing: every buffer is freed as before).
    public static let shared = IOBufferPool(retainedBytesLimit: limitFromEnvironment() ?? 64 << 20)

    static func limitFromEnvironment() -> Int? {
        guard let text = getenv("TESSERA_IO_BUFFER_POOL_MIB").map({ String(cString: $0) }),
            let mib = Int(text), mib >= 0, mib <= 1 << 20
        else { return nil }
        return mib << 20
    }

    /// Bytes the pool keeps at most (free buffers only; buffers in use are not counted).
    public let retainedBytesLimit: Int
    private let state: Mutex<State>

    private struct State: ~Copyable {
        /// Free buffers per size class, smallest first (addresses: a pointer is not Sendable).
        var free: [[UInt]]
        var retainedBytes = 0
        var counts = IOBufferPool.Counts()
    }

    /// What the pool has done since it was made (tests and benchmarks).
    public struct Counts: Sendable, Equatable {
        /// Requests served with a kept buffer.
        public var reused = 0
        /// Requests of a pooled size that needed new memory.
        public var allocated = 0
        /// Pooled-size buffers freed because the pool was full.
        public var dropped = 0

        public init(reused: Int = 0, allocated: Int = 0, dropped: Int = 0) {
            self.reused = reused
            self.allocated = allocated
            self.dropped = dropped
        }
    }

    private static let classCount = (largestPooled / smallestPooled).trailingZeroBitCount + 1

    public init(retainedBytesLimit: Int) {
        self.retainedBytesLimit = retainedBytesLimit
        self.state = Mutex(State(free: Array(repeating: [], count: Self.classCount)))
    }

    deinit {
        state.withLock { state in
            for list in state.free { for address in list { free(UnsafeMutableRawPointer(bitPattern: address)) } }
        }
    }

    /// The size class serving `count` bytes (the next power of two), nil when unpooled.
    static func sizeClass(serving count: Int) -> (index: Int, size: Int)? {
        guard count >= smallestPooled, count <= largestPooled else { return nil }
        let size = 1 << (Int.bitWidth - (count - 1).leadingZeroBitCount)
        return ((size / smallestPooled).trailingZeroBitCount, size)
    }

    /// The size class whose size `usable` bytes cover with less than twice it
    /// to spare, nil below the smallest and from twice the largest: a kept
    /// block is then less than twice what ``retainedBytes`` counts for it.
    static func sizeClass(covering usable: Int) -> (index: Int, size: Int)? {
        guard usable >= smallestPooled else { return nil }
        let size = 1 << (Int.bitWidth - 1 - usable.leadingZeroBitCount)
        guard size <= largestPooled else { return nil }
        return ((size / smallestPooled).trailingZeroBitCount, size)
    }

    /// At least `count` bytes aligned to ``IOBuffer/defaultAlignment``, uninitialised;
    /// give them back with ``release(_:)`` (or `free`).
    public func allocate(count: Int) -> UnsafeMutableRawPointer {
        guard let sizeClass = Self.sizeClass(serving: count) else { return Self.alignedAllocation(count) }
        let kept: UInt? = state.withLock { state in
            guard let address = state.free[sizeClass.index].popLast() else {
                state.counts.allocated += 1
                return nil
            }
            state.retainedBytes -= sizeClass.size
            state.counts.reused += 1
            return address
        }
        return kept.flatMap { UnsafeMutableRawPointer(bitPattern: $0) } ?? Self.alignedAllocation(sizeClass.size)
    }

    /// Takes back memory from ``allocate(count:)``: kept when its class has room, freed otherwise.
    public func release(_ pointer: UnsafeMutableRawPointer) {
        guard Int(bitPattern: pointer) % IOBuffer.defaultAlignment == 0,
            let sizeClass = Self.sizeClass(covering: Self.usableSize(pointer))
        else { return free(pointer) }
        let address = UInt(bitPattern: pointer)
        let kept = state.withLock { state in
            guard state.retainedBytes + sizeClass.size <= retainedBytesLimit else {
                state.counts.dropped += 1
                return false
            }
            state.free[sizeClass.index].append(address)
            state.retainedBytes += sizeClass.size
            return true
        }
        if !kept { free(pointer) }
    }

    /// Free bytes kept now.
    public var retainedBytes: Int { state.withLock { $0.retainedBytes } }

    /// The counts so far.
    public var counts: Counts { state.withLock { $0.counts } }

    private static func usableSize(_ pointer: UnsafeMutableRawPointer) -> Int {
        #if canImport(Darwin)
        malloc_size(pointer)
        #else
        glibcMallocUsableSize(pointer)
        #endif
    }

    /// `posix_memalign` of at least one byte, trapping when memory is exhausted.
    static func alignedAllocation(_ count: Int, alignment: Int = IOBuffer.defaultAlignment) -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        let rc = posix_memalign(&pointer, alignment, max(count, 1))
        guard rc == 0, let pointer else { preconditionFailure("posix_memalign(\(count)) failed: \(rc)") }
        return pointer
    }
}

#if !canImport(Darwin)
/// glibc's `malloc_usable_size` (declared in `<malloc.h>`, which the Glibc module does not import).
@_silgen_name("malloc_usable_size")
private func glibcMallocUsableSize(_ pointer: UnsafeMutableRawPointer) -> Int
#endif
