import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A device that can lend blocks it holds in memory already (a file's page
/// cache, mapped into the process) instead of copying them into a caller's
/// buffer: a transport then sends the page cache itself, and a large read
/// costs one copy (into the socket) where a read into a buffer costs two.
public protocol MappedReadableBlockDevice: BlockDevice {
    /// The blocks `[lba, lba + blockCount)` as a buffer over the device's own
    /// memory when all of them are in memory now, else nil (the caller reads
    /// them with ``BlockDevice/read(lba:blockCount:into:offset:)``). Never
    /// waits for the disk and never blocks. The buffer's owner is a
    /// ``MappedFileWindow``; its memory is read-only: writing it faults.
    func mappedRead(lba: UInt64, blockCount: UInt32) async -> IOBuffer?
}

/// Reads of at most ``lendsReadsAbove`` bytes are never lent, so a caller
/// need not ask: a copy of them costs what checking their residency does,
/// and a buffered file device copies them on the caller's thread anyway.
public enum LentReads {
    public static let lendsReadsAbove = 64 << 10
}

extension BlockDeviceWindow: MappedReadableBlockDevice {
    /// What the base device lends of the same blocks.
    public func mappedRead(lba: UInt64, blockCount: UInt32) async -> IOBuffer? {
        guard let lender = base as? any MappedReadableBlockDevice, contains(lba: lba, blockCount: UInt64(blockCount))
        else { return nil }
        return await lender.mappedRead(lba: firstBlock + lba, blockCount: blockCount)
    }
}

/// A read-only shared mapping of part of a file (`mmap(PROT_READ,
/// MAP_SHARED)`), unmapped when the last object holding it lets go: the
/// device that made it and every buffer lent from it.
///
/// A transport that sends lent memory builds views of its own over parts of
/// the window (NIO `ByteBuffer`s that slices share), kept by
/// ``transportView(_:_:)``; the device clears them with ``retire()`` when it
/// stops lending from the window, so the views, and then the mapping, go
/// once the last slice in flight has been sent.
public final class MappedFileWindow: Sendable {
    /// Where the mapping starts.
    public nonisolated(unsafe) let baseAddress: UnsafeMutableRawPointer
    /// Its length in bytes (it may reach past the file's end: those pages are
    /// never lent, the device checks residency first).
    public let count: Int
    /// The file offset the mapping starts at.
    public let fileOffset: Int
    /// A transport's views of this memory, by its key, while the window lends; none once retired.
    private let views = Mutex<(views: [Int: any AnyObject & Sendable], retired: Bool)>(([:], false))

    /// Maps `count` bytes of `fd` from `fileOffset` (a multiple of the page
    /// size); nil when the kernel refuses (the address space or the file
    /// system). The mapping does not keep `fd` open.
    public init?(fd: Int32, fileOffset: Int, count: Int) {
        let address = mmap(nil, count, PROT_READ, MAP_SHARED, fd, off_t(fileOffset))
        guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else { return nil }
        self.baseAddress = address
        self.count = count
        self.fileOffset = fileOffset
    }

    deinit { munmap(baseAddress, count) }

    /// The transport's view `key` of this window (the transport decides what
    /// part of it a key covers), made by `make` the first time it is asked
    /// for; nil once the window is retired (the caller then copies).
    public func transportView(_ key: Int, _ make: () -> any AnyObject & Sendable) -> (any AnyObject & Sendable)? {
        views.withLock { state in
            guard !state.retired else { return nil }
            if let made = state.views[key] { return made }
            let made = make()
            state.views[key] = made
            return made
        }
    }

    /// Stops lending: drops the transport's views, so the mapping ends with
    /// the last buffer that still uses it.
    public func retire() { views.withLock { $0 = ([:], true) } }

    /// Whether every page of `[offset, offset + length)` (offsets in the
    /// window) is in memory now (`mincore`); a range the kernel cannot tell
    /// about counts as not.
    public func isResident(offset: Int, length: Int) -> Bool {
        guard offset >= 0, length > 0, offset + length <= count else { return false }
        let page = Self.pageSize
        let first = offset / page * page
        let pages = (offset + length - first + page - 1) / page
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: pages) { vector in
            guard mincore(baseAddress + first, (offset + length) - first, vector.baseAddress) == 0 else { return false }
            return vector.allSatisfy { $0 & 1 != 0 }
        }
    }

    public static let pageSize = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)
}
