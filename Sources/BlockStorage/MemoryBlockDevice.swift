import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A RAM-backed block device for tests and `backing = "memory"` LUNs.
public final class MemoryBlockDevice: BlockDevice {
    public let geometry: BlockGeometry
    public var supportsUnmap: Bool { true }
    private let storage: Mutex<Storage>

    private struct Storage: ~Copyable {
        var memory: UnsafeMutableRawPointer?
        var flushCount = 0
        /// Per block: written since the last unmap (starts all deallocated, like a sparse file).
        var mapped: [Bool]
    }

    public init(geometry: BlockGeometry) {
        self.geometry = geometry
        let size = Int(geometry.byteCount)
        let memory = calloc(max(size, 1), 1)!
        self.storage = Mutex(Storage(memory: memory, mapped: [Bool](repeating: false, count: Int(geometry.blockCount))))
    }

    deinit {
        storage.withLock { s in
            if let m = s.memory { free(m) }
            s.memory = nil
        }
    }

    /// Number of completed flushes (tests check SYNCHRONIZE CACHE reaches the device).
    public var flushCount: Int { storage.withLock { $0.flushCount } }

    private func range(_ lba: UInt64, _ blocks: UInt64) throws(BlockDeviceError) -> (Int, Int) {
        guard contains(lba: lba, blockCount: blocks) else { throw BlockDeviceError(.outOfRange) }
        return (Int(lba) * Int(geometry.blockSize), Int(blocks) * Int(geometry.blockSize))
    }

    public func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError) {
        let (start, length) = try range(lba, UInt64(blockCount))
        precondition(offset >= 0 && offset + length <= buffer.count, "read buffer too small")
        try storage.withLock { (s: inout Storage) throws(BlockDeviceError) in
            guard let m = s.memory else { throw BlockDeviceError(.closed) }
            memcpy(buffer.baseAddress + offset, m + start, length)
        }
    }

    public func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool) async throws(BlockDeviceError) {
        let (start, length) = try range(lba, UInt64(blockCount))
        precondition(offset >= 0 && offset + length <= buffer.count, "write buffer too small")
        try storage.withLock { (s: inout Storage) throws(BlockDeviceError) in
            guard let m = s.memory else { throw BlockDeviceError(.closed) }
            memcpy(m + start, buffer.baseAddress + offset, length)
            for i in Int(lba)..<(Int(lba) + Int(blockCount)) { s.mapped[i] = true }
        }
    }

    public func flush() async throws(BlockDeviceError) {
        try storage.withLock { (s: inout Storage) throws(BlockDeviceError) in
            guard s.memory != nil else { throw BlockDeviceError(.closed) }
            s.flushCount += 1
        }
    }

    public func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) {
        let (start, length) = try range(lba, blockCount)
        try storage.withLock { (s: inout Storage) throws(BlockDeviceError) in
            guard let m = s.memory else { throw BlockDeviceError(.closed) }
            memset(m + start, 0, length)
            for i in Int(lba)..<(Int(lba) + Int(blockCount)) { s.mapped[i] = false }
        }
    }

    public func allocation(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) -> [BlockExtent] {
        _ = try range(lba, blockCount)
        return storage.withLock { s in
            var extents: [BlockExtent] = []
            for i in Int(lba)..<(Int(lba) + Int(blockCount)) {
                if let last = extents.last, last.mapped == s.mapped[i] {
                    extents[extents.count - 1].blockCount += 1
                } else {
                    extents.append(BlockExtent(lba: UInt64(i), blockCount: 1, mapped: s.mapped[i]))
                }
            }
            return extents
        }
    }

    public func close() async {
        storage.withLock { s in
            if let m = s.memory { free(m) }
            s.memory = nil
        }
    }
}
