import BlockStorage
import Synchronization

/// A device over another that runs every operation at once, except the
/// next write to a range the test armed with ``holdNextWrite(overlapping:)``:
/// that one parks until ``release()``. Unlike ``ControlledBlockDevice`` the
/// rest of the traffic (a resync's reads, flushes) goes on by itself, so a
/// test can hold one write in its primary's ordering while everything
/// around it runs.
public final class HeldBlockDevice: BlockDevice {
    public let backing: any BlockDevice
    public var geometry: BlockGeometry { backing.geometry }
    public var supportsUnmap: Bool { backing.supportsUnmap }
    private let armed = Mutex<Range<UInt64>?>(nil)
    private let lot = ParkingLot()

    public init(_ backing: any BlockDevice) { self.backing = backing }

    /// The next write that overlaps `blocks` parks until ``release()``.
    public func holdNextWrite(overlapping blocks: Range<UInt64>) { armed.withLock { $0 = blocks } }

    /// Writes parked now.
    public var held: Int { lot.count }

    /// Lets every parked write go on.
    public func release() { lot.release() }

    public func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError)
    {
        try await backing.read(lba: lba, blockCount: blockCount, into: buffer, offset: offset)
    }

    public func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError)
    {
        let blocks = lba..<lba + UInt64(blockCount)
        let hold = armed.withLock { armed in
            guard let range = armed, range.overlaps(blocks) else { return false }
            armed = nil
            return true
        }
        if hold { await lot.park() }
        try await backing.write(lba: lba, blockCount: blockCount, from: buffer, offset: offset, fua: fua)
    }

    public func flush() async throws(BlockDeviceError) { try await backing.flush() }

    public func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) {
        try await backing.unmap(lba: lba, blockCount: blockCount)
    }

    public func close() async {
        release()
        await backing.close()
    }
}
