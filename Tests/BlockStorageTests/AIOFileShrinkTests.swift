import BlockStorage
import Foundation
import Testing
import TesseraTestKit

@testable import AIOBlockStorage

/// A file device shrunk by force (an administrator's LUN shrink): the file
/// is cut, the blocks past the end are refused, and grown again they read
/// as zeros.
@Suite struct AIOFileShrinkTests {
    private func device(_ dir: ScratchDirectory, readOnly: Bool = false) throws -> AIOFileBlockDevice {
        try AIOFileBlockDevice(
            options: AIOFileBlockDevice.Options(
                path: dir.file(), geometry: BlockGeometry(blockSize: 512, blockCount: 256), directIO: .auto,
                readOnly: readOnly, queueDepth: 16))
    }

    @Test func aShrinkCutsTheFileAndAGrowAfterItReadsZeros() async throws {
        let dir = ScratchDirectory(.work)
        let device = try device(dir)
        let block = IOBuffer(bytes: [UInt8](repeating: 0xA5, count: 512))
        try await device.write(lba: 200, blockCount: 1, from: block, offset: 0, fua: true)
        try await device.write(lba: 99, blockCount: 1, from: block, offset: 0, fua: true)
        try await device.shrink(toBlockCount: 100)
        #expect(device.geometry.blockCount == 100)
        #expect(try FileManager.default.attributesOfItem(atPath: dir.file())[.size] as? Int == 100 * 512)
        await #expect(throws: BlockDeviceError.self) {
            try await device.write(lba: 100, blockCount: 1, from: block, offset: 0, fua: false)
        }
        let back = IOBuffer(count: 512)
        try await device.read(lba: 99, blockCount: 1, into: back, offset: 0)
        #expect(back.array() == block.array(), "the blocks before the new end keep their data")
        try await device.grow(toBlockCount: 256)
        try await device.read(lba: 200, blockCount: 1, into: back, offset: 0)
        #expect(back.array() == [UInt8](repeating: 0, count: 512), "a block cut off reads as zeros once grown again")
        // A count at or above the current one changes nothing; zero blocks is refused.
        try await device.shrink(toBlockCount: 300)
        #expect(device.geometry.blockCount == 256)
        await #expect(throws: BlockDeviceError.self) { try await device.shrink(toBlockCount: 0) }
        await device.close()
    }

    @Test func aReadOnlyDeviceRefusesToShrink() async throws {
        let dir = ScratchDirectory(.work)
        try Data(count: 256 * 512).write(to: URL(fileURLWithPath: dir.file()))
        let device = try device(dir, readOnly: true)
        await #expect(throws: BlockDeviceError.self) { try await device.shrink(toBlockCount: 10) }
        #expect(device.geometry.blockCount == 256)
        await device.close()
    }
}
