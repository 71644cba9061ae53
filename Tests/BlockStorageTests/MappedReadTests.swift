import BlockStorage
import Testing
import TesseraTestKit

@testable import AIOBlockStorage

#if canImport(Glibc)
    import Glibc
#endif

/// Large cached reads lent as the mapped page cache: exactly the file's
/// bytes, only when every page is in memory, never for small reads, O_DIRECT
/// devices or a range across a window, and memory that stays valid while a
/// lent buffer lives, even after the device has closed.
@Suite struct MappedReadTests {
    static let blockSize = 512
    /// 512 KiB of a multiplicative hash of each byte's offset: no two blocks
    /// alike, so a range lent from the wrong offset shows.
    static let data: [UInt8] = (0..<(1024 * blockSize)).map { i in
        UInt8(truncatingIfNeeded: (UInt64(i) &* 0x9E37_79B9_7F4A_7C15) >> 56)
    }

    static func device(_ dir: ScratchDirectory, blocks: UInt64 = 1024, directIO: AIOFileBlockDevice.DirectIO = .off)
        throws -> AIOFileBlockDevice
    {
        try AIOFileBlockDevice(
            options: AIOFileBlockDevice.Options(
                path: dir.file(), geometry: BlockGeometry(blockSize: UInt32(blockSize), blockCount: blocks),
                directIO: directIO),
            logger: quietLogger)
    }

    static func filled(_ dir: ScratchDirectory) async throws -> AIOFileBlockDevice {
        let device = try device(dir)
        try await device.write(lba: 0, blockCount: 1024, from: IOBuffer(bytes: data), offset: 0, fua: false)
        return device
    }

    static func bytes(_ buffer: IOBuffer) -> [UInt8] { buffer.array() }

    static func expected(lba: Int, blocks: Int) -> [UInt8] {
        Array(data[lba * blockSize..<(lba + blocks) * blockSize])
    }

    @Test func aCachedLargeReadIsLentAsTheFilesBytes() async throws {
        let dir = ScratchDirectory()
        let device = try await Self.filled(dir)
        // 300 blocks from block 3: larger than the 64 KiB copied on the caller's
        // thread, and not page-aligned at either end.
        let lent = try #require(device.mappedRead(lba: 3, blockCount: 300))
        #expect(lent.count == 300 * Self.blockSize)
        #expect(lent.owner is MappedFileWindow)
        #expect(Self.bytes(lent) == Self.expected(lba: 3, blocks: 300))
        #expect(device.routes.lent.load(ordering: .relaxed) == 1)
        // A later write shows in the next lent read: the memory is the page cache.
        let changed = IOBuffer(bytes: [UInt8](repeating: 0xA5, count: Self.blockSize))
        try await device.write(lba: 100, blockCount: 1, from: changed, offset: 0, fua: false)
        let again = try #require(device.mappedRead(lba: 0, blockCount: 256))
        #expect(again.array(100 * Self.blockSize..<101 * Self.blockSize) == changed.array())
        await device.close()
    }

    @Test func readsUpToTheCachedReadLimitAreNotLent() async throws {
        let dir = ScratchDirectory()
        let device = try await Self.filled(dir)
        let limit = UInt32(AIOFileBlockDevice.maximumCachedRead / Self.blockSize)
        #expect(device.mappedRead(lba: 0, blockCount: limit) == nil)
        #expect(device.mappedRead(lba: 0, blockCount: 1) == nil)
        #expect(device.mappedRead(lba: 0, blockCount: limit + 1) != nil)
        await device.close()
    }

    @Test func aRangeOutsideTheDeviceIsNotLent() async throws {
        let dir = ScratchDirectory()
        let device = try await Self.filled(dir)
        #expect(device.mappedRead(lba: 900, blockCount: 200) == nil)
        #expect(device.mappedRead(lba: UInt64.max - 10, blockCount: 200) == nil)
        await device.close()
    }

    @Test func pagesNotInMemoryAreNotLent() async throws {
        let dir = ScratchDirectory()
        let device = try await Self.filled(dir)
        try await device.flush()
        // Clean pages that nothing maps yet: the kernel drops them from the cache.
        let fd = open(dir.file(), O_RDONLY)
        #expect(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
        close(fd)
        #expect(device.mappedRead(lba: 0, blockCount: 512) == nil)
        // Reading them brings them back, and then they are lent.
        let read = IOBuffer(count: 512 * Self.blockSize)
        try await device.read(lba: 0, blockCount: 512, into: read, offset: 0)
        let lent = try #require(device.mappedRead(lba: 0, blockCount: 512))
        #expect(Self.bytes(lent) == Self.expected(lba: 0, blocks: 512))
        await device.close()
    }

    @Test func aReadAcrossAWindowIsNotLent() async throws {
        let dir = ScratchDirectory()
        let window = AIOFileBlockDevice.mappedWindowSize / Self.blockSize
        // A sparse file just over one window; only the blocks around its end are written.
        let device = try Self.device(dir, blocks: UInt64(window + 2048))
        let around = window - 1024
        try await device.write(
            lba: UInt64(around), blockCount: 2048, from: IOBuffer(bytes: Self.data + Self.data), offset: 0, fua: false)
        #expect(device.mappedRead(lba: UInt64(window - 200), blockCount: 400) == nil)
        let below = try #require(device.mappedRead(lba: UInt64(window - 400), blockCount: 400))
        #expect(Self.bytes(below) == Array(Self.data[624 * Self.blockSize..<1024 * Self.blockSize]))
        let above = try #require(device.mappedRead(lba: UInt64(window), blockCount: 400))
        #expect(Self.bytes(above) == Self.expected(lba: 0, blocks: 400))
        await device.close()
    }

    @Test func lentMemoryOutlivesTheDevice() async throws {
        let dir = ScratchDirectory()
        let device = try await Self.filled(dir)
        let lent = try #require(device.mappedRead(lba: 7, blockCount: 200))
        let window = try #require(lent.owner as? MappedFileWindow)
        #expect(window.transportView(0) { Marker() } != nil)
        await device.close()
        // Closed: nothing more is lent, and the window hands out no view.
        #expect(device.mappedRead(lba: 7, blockCount: 200) == nil)
        #expect(window.transportView(0) { Marker() } == nil)
        // The buffer lent before still holds the mapping and the bytes.
        #expect(Self.bytes(lent) == Self.expected(lba: 7, blocks: 200))
    }

    @Test func anODirectDeviceDoesNotLend() async throws {
        let dir = ScratchDirectory(.work)
        let device = try Self.device(dir, directIO: .auto)
        try await device.write(lba: 0, blockCount: 1024, from: IOBuffer(bytes: Self.data), offset: 0, fua: false)
        if device.ioPath == .directAIO {
            #expect(device.mappedRead(lba: 0, blockCount: 512) == nil)
        } else {
            // A file system without O_DIRECT: the device is buffered, and lends.
            #expect(device.mappedRead(lba: 0, blockCount: 512) != nil)
        }
        await device.close()
    }

    final class Marker: Sendable {}
}
