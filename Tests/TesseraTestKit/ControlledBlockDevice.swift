import BlockStorage
import Synchronization

/// A block device whose operations complete only when the test says so
/// (SPDK's pattern): each call parks until ``complete(error:)`` releases it,
/// then runs against an in-memory device. Lets tests hold a command in
/// flight while they issue task management.
public final class ControlledBlockDevice: BlockDevice {
    /// Which operation is parked.
    public enum Operation: Sendable, Hashable {
        case read(lba: UInt64, blockCount: UInt32)
        case write(lba: UInt64, blockCount: UInt32, fua: Bool)
        case flush
        case unmap(lba: UInt64, blockCount: UInt64)
    }

    private struct Parked {
        var operation: Operation
        var continuation: CheckedContinuation<BlockDeviceError?, Never>
    }

    public let backing: MemoryBlockDevice
    public var geometry: BlockGeometry { backing.geometry }
    public var supportsUnmap: Bool { true }
    private let parked = Mutex<[Parked]>([])

    public init(geometry: BlockGeometry) {
        self.backing = MemoryBlockDevice(geometry: geometry)
    }

    /// Operations waiting for the test, oldest first.
    public var pending: [Operation] { parked.withLock { $0.map(\.operation) } }

    /// Waits (up to about five seconds) until at least `count` operations are parked.
    public func waitForPending(_ count: Int = 1) async -> Bool {
        for _ in 0..<5000 {
            if parked.withLock({ $0.count }) >= count { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return false
    }

    /// Releases the oldest parked operation, failing it with `error` when given.
    @discardableResult
    public func complete(error: BlockDeviceError? = nil) -> Operation? {
        let next = parked.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        next?.continuation.resume(returning: error)
        return next?.operation
    }

    /// Releases every parked operation.
    public func completeAll(error: BlockDeviceError? = nil) {
        let all = parked.withLock { p in
            defer { p.removeAll() }; return p
        }
        for p in all { p.continuation.resume(returning: error) }
    }

    private func park(_ operation: Operation) async throws(BlockDeviceError) {
        let error = await withCheckedContinuation { (c: CheckedContinuation<BlockDeviceError?, Never>) in
            parked.withLock { $0.append(Parked(operation: operation, continuation: c)) }
        }
        if let error { throw error }
    }

    public func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError)
    {
        try await park(.read(lba: lba, blockCount: blockCount))
        try await backing.read(lba: lba, blockCount: blockCount, into: buffer, offset: offset)
    }

    public func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError)
    {
        try await park(.write(lba: lba, blockCount: blockCount, fua: fua))
        try await backing.write(lba: lba, blockCount: blockCount, from: buffer, offset: offset, fua: fua)
    }

    public func flush() async throws(BlockDeviceError) {
        try await park(.flush)
        try await backing.flush()
    }

    public func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) {
        try await park(.unmap(lba: lba, blockCount: blockCount))
        try await backing.unmap(lba: lba, blockCount: blockCount)
    }

    public func close() async {
        completeAll(error: BlockDeviceError(.closed))
        await backing.close()
    }
}

/// A block device whose selected operations fail (medium errors, full thin pools).
public final class FailingBlockDevice: BlockDevice {
    public let backing: MemoryBlockDevice
    public var geometry: BlockGeometry { backing.geometry }
    public var supportsUnmap: Bool { true }
    /// Error for reads, nil to succeed.
    public let readError: BlockDeviceError?
    /// Error for writes, unmaps, nil to succeed.
    public let writeError: BlockDeviceError?
    /// Error for flushes, nil to succeed.
    public let flushError: BlockDeviceError?

    public init(
        geometry: BlockGeometry, readError: BlockDeviceError? = BlockDeviceError(.ioError),
        writeError: BlockDeviceError? = BlockDeviceError(.ioError),
        flushError: BlockDeviceError? = BlockDeviceError(.ioError)
    ) {
        self.backing = MemoryBlockDevice(geometry: geometry)
        self.readError = readError
        self.writeError = writeError
        self.flushError = flushError
    }

    public func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError)
    {
        if let readError { throw readError }
        try await backing.read(lba: lba, blockCount: blockCount, into: buffer, offset: offset)
    }

    public func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError)
    {
        if let writeError { throw writeError }
        try await backing.write(lba: lba, blockCount: blockCount, from: buffer, offset: offset, fua: fua)
    }

    public func flush() async throws(BlockDeviceError) {
        if let flushError { throw flushError }
        try await backing.flush()
    }

    public func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) {
        if let writeError { throw writeError }
        try await backing.unmap(lba: lba, blockCount: blockCount)
    }

    public func close() async { await backing.close() }
}

/// Counts operations on a wrapped device (tests that check FUA, flushes, unmaps reach the device),
/// and keeps each read's result: where the data went and what it was, so a test can check
/// that what a host receives is that memory, unchanged (no copy on the way), byte for byte.
public final class RecordingBlockDevice: BlockDevice {
    /// One read as the wrapped device completed it.
    public struct FilledRead: Sendable, Hashable {
        public var lba: UInt64
        public var blockCount: UInt32
        /// Where the data starts (the buffer's base address plus the offset).
        public var address: UInt
        /// The bytes as they were when the read completed.
        public var bytes: [UInt8]
        /// Whether the device lent its own memory (``MappedReadableBlockDevice``) instead of filling a buffer.
        public var lent = false
    }

    public let backing: any BlockDevice
    public var geometry: BlockGeometry { backing.geometry }
    public var supportsUnmap: Bool { backing.supportsUnmap }
    private let log = Mutex<[ControlledBlockDevice.Operation]>([])
    private let filled = Mutex<[FilledRead]>([])

    public init(_ backing: any BlockDevice) { self.backing = backing }

    /// Every operation so far, in order.
    public var operations: [ControlledBlockDevice.Operation] { log.withLock { $0 } }

    /// Every read that succeeded, oldest first.
    public var reads: [FilledRead] { filled.withLock { $0 } }

    public func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError)
    {
        log.withLock { $0.append(.read(lba: lba, blockCount: blockCount)) }
        try await backing.read(lba: lba, blockCount: blockCount, into: buffer, offset: offset)
        let length = Int(blockCount) * Int(geometry.blockSize)
        let read = FilledRead(
            lba: lba, blockCount: blockCount, address: UInt(bitPattern: buffer.baseAddress + offset),
            bytes: buffer.array(offset..<offset + length))
        filled.withLock { $0.append(read) }
    }

    public func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError)
    {
        log.withLock { $0.append(.write(lba: lba, blockCount: blockCount, fua: fua)) }
        try await backing.write(lba: lba, blockCount: blockCount, from: buffer, offset: offset, fua: fua)
    }

    public func flush() async throws(BlockDeviceError) {
        log.withLock { $0.append(.flush) }
        try await backing.flush()
    }

    public func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) {
        log.withLock { $0.append(.unmap(lba: lba, blockCount: blockCount)) }
        try await backing.unmap(lba: lba, blockCount: blockCount)
    }

    public func close() async { await backing.close() }
}

/// Lends what the wrapped device lends, recorded like a read it filled.
extension RecordingBlockDevice: MappedReadableBlockDevice {
    public func mappedRead(lba: UInt64, blockCount: UInt32) async -> IOBuffer? {
        guard let lender = backing as? any MappedReadableBlockDevice,
            let lent = await lender.mappedRead(lba: lba, blockCount: blockCount)
        else { return nil }
        log.withLock { $0.append(.read(lba: lba, blockCount: blockCount)) }
        let read = FilledRead(
            lba: lba, blockCount: blockCount, address: UInt(bitPattern: lent.baseAddress), bytes: lent.array(),
            lent: true)
        filled.withLock { $0.append(read) }
        return lent
    }
}
