import AIOBlockStorage
import BlockStorage
import Logging
import NIOCore
import TesseraTestKit
import Testing

@testable import ISCSITargetServer

/// Lent file pages become the Data-In payload without a copy wherever they
/// lie in a mapping (NIO copies a slice that begins past 16 MiB into its
/// storage, so the views must keep every slice's start below that), and the
/// mapping's views go once the device has closed and the last payload is gone.
@Suite("Lent file pages as Data-In payload", .serialized)
struct LentPayloadTests {
    static let blockSize = 512
    static let mebibyte = 1 << 20

    /// Ranges at the start, just before, across and past the 16 MiB view
    /// strides of a 64 MiB file: (byte offset, length).
    static let ranges: [(Int, Int)] = [
        (0, 1 << 20), (16 * mebibyte - 4096, 1 << 20), (16 * mebibyte, 65 << 10), (24 * mebibyte + 512, 3 << 20),
        (40 * mebibyte, 8 << 20), (56 * mebibyte - 512, 8 << 20),
    ]

    @Test func aLentRangeIsSentAsItIsWhereverItLies() async throws {
        let directory = ScratchDirectory()
        let device = try AIOFileBlockDevice(
            options: AIOFileBlockDevice.Options(
                path: directory.file(),
                geometry: BlockGeometry(blockSize: UInt32(Self.blockSize), blockCount: UInt64(64 * Self.mebibyte / Self.blockSize)),
                directIO: .off),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        var payloads: [ByteBuffer] = []
        for (offset, length) in Self.ranges {
            let lba = UInt64(offset / Self.blockSize)
            let blocks = UInt32(length / Self.blockSize)
            // Written just before, so the pages are in the page cache.
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: ($0 + offset) &* 0x9E37_79B1 >> 13) }
            try await device.write(lba: lba, blockCount: blocks, from: IOBuffer(bytes: bytes), offset: 0, fua: false)
            let lent = try #require(await device.mappedRead(lba: lba, blockCount: blocks), "\(offset)")
            let payload = SendBufferAllocator.payload(lent, length: length, allocator: ByteBufferAllocator())
            let address = payload.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            #expect(address == UInt(bitPattern: lent.baseAddress), "at \(offset): the payload is a copy")
            #expect(Array(payload.readableBytesView) == bytes, "at \(offset)")
            payloads.append(payload)
        }
        let window = try #require(await device.mappedRead(lba: 0, blockCount: 2048)?.owner as? MappedFileWindow)
        #expect(Self.views(of: window) > 0)
        await device.close()
        // Closed: a lent buffer from before still goes out as it is, until the
        // views are dropped with the last payload.
        #expect(payloads.allSatisfy { $0.readableBytes > 0 })
        payloads.removeAll()
        #expect(Self.views(of: window) == 0)
    }

    @Test func aRetiredWindowsPagesAreCopied() async throws {
        let directory = ScratchDirectory()
        let device = try AIOFileBlockDevice(
            options: AIOFileBlockDevice.Options(
                path: directory.file(), geometry: BlockGeometry(blockSize: UInt32(Self.blockSize), blockCount: 4096),
                directIO: .off),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let bytes = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 5) }
        try await device.write(lba: 0, blockCount: 2048, from: IOBuffer(bytes: bytes), offset: 0, fua: false)
        let lent = try #require(await device.mappedRead(lba: 0, blockCount: 2048))
        await device.close()
        let payload = SendBufferAllocator.payload(lent, length: bytes.count, allocator: ByteBufferAllocator())
        let address = payload.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(address != UInt(bitPattern: lent.baseAddress))
        #expect(Array(payload.readableBytesView) == bytes)
    }

    /// Views of `window` alive (registered by their storage).
    static func views(of window: MappedFileWindow) -> Int {
        LentWindowView.windows.withLock { $0.values.filter { $0 === window }.count }
    }
}
