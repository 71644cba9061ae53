import BlockStorage
import Testing

@Suite struct MemoryBlockDeviceTests {
    @Test func writeThenReadReturnsTheSameBytes() async throws {
        let device = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 16))
        let data = IOBuffer(bytes: (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try await device.write(lba: 3, blockCount: 2, from: data, offset: 0, fua: false)
        let back = IOBuffer(count: 1024)
        try await device.read(lba: 3, blockCount: 2, into: back, offset: 0)
        #expect(back.array() == data.array())
    }

    // A zero-length transfer at LBA == capacity is inside the device by
    // `BlockDevice.contains` (SBC-3: refused only when LBA + length exceeds
    // the capacity), so the past-the-end zero-length case starts one further.
    @Test(arguments: [(UInt64(15), UInt32(2)), (UInt64.max, UInt32(1)), (UInt64(17), UInt32(0))])
    func rangesPastTheEndAreRefused(lba: UInt64, blocks: UInt32) async {
        let device = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 16))
        await #expect(throws: BlockDeviceError(.outOfRange)) {
            try await device.read(lba: lba, blockCount: blocks, into: IOBuffer(count: 4096), offset: 0)
        }
    }

    @Test func unmapReadsBackZeros() async throws {
        let device = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 4))
        try await device.write(
            lba: 0, blockCount: 1, from: IOBuffer(bytes: [UInt8](repeating: 0xAB, count: 512)), offset: 0, fua: true)
        try await device.unmap(lba: 0, blockCount: 1)
        let back = IOBuffer(count: 512)
        try await device.read(lba: 0, blockCount: 1, into: back, offset: 0)
        #expect(back.array().allSatisfy { $0 == 0 })
    }
}
