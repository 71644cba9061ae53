/// A contiguous range of another device's blocks, seen as a device of its
/// own: block 0 of the window is block `firstBlock` of the base. A node keeps
/// each LUN in one sparse file laid out like the LUN, holding only the
/// sub-units it has replicas of; each replica is a window on that file.
public final class BlockDeviceWindow: BlockDevice {
    /// The device the window looks into.
    public let base: any BlockDevice
    /// The base block where the window starts.
    public let firstBlock: UInt64
    public let geometry: BlockGeometry

    /// A window of `blockCount` blocks from `firstBlock`; the range must lie inside `base`.
    public init(base: any BlockDevice, firstBlock: UInt64, blockCount: UInt64) {
        precondition(base.contains(lba: firstBlock, blockCount: blockCount), "window outside its device")
        self.base = base
        self.firstBlock = firstBlock
        self.geometry = BlockGeometry(blockSize: base.geometry.blockSize, blockCount: blockCount)
    }

    public var supportsUnmap: Bool { base.supportsUnmap }

    private func translate(_ lba: UInt64, _ count: UInt64) throws(BlockDeviceError) -> UInt64 {
        guard contains(lba: lba, blockCount: count) else { throw BlockDeviceError(.outOfRange) }
        return firstBlock + lba
    }

    public func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError) {
        try await base.read(lba: translate(lba, UInt64(blockCount)), blockCount: blockCount, into: buffer, offset: offset)
    }

    public func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError)
    {
        try await base.write(
            lba: translate(lba, UInt64(blockCount)), blockCount: blockCount, from: buffer, offset: offset, fua: fua)
    }

    public func flush() async throws(BlockDeviceError) { try await base.flush() }

    public func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) {
        try await base.unmap(lba: translate(lba, blockCount), blockCount: blockCount)
    }

    public func allocation(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) -> [BlockExtent] {
        let start = try translate(lba, blockCount)
        return try await base.allocation(lba: start, blockCount: blockCount).map {
            BlockExtent(lba: $0.lba - firstBlock, blockCount: $0.blockCount, mapped: $0.mapped)
        }
    }

    /// Closing a window leaves the base open (it is shared by the LUN's windows).
    public func close() async {}
}
