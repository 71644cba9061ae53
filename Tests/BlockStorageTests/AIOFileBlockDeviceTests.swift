import BlockStorage
import Foundation
import Logging
import Testing
import TesseraTestKit

@testable import AIOBlockStorage

extension ScratchDirectory.Place: CustomTestStringConvertible {
    public var testDescription: String { rawValue }
}

/// Tests keep the output quiet.
let quietLogger = Logger(label: "test.aio", factory: { _ in SwiftLogNoOpLogHandler() })

extension AIOFileBlockDevice {
    convenience init(options: Options) throws(AIOFileBlockDeviceError) {
        try self.init(options: options, logger: quietLogger)
    }
}

private func options(
    _ path: String, blocks: UInt64 = 256, blockSize: UInt32 = 512, direct: AIOFileBlockDevice.DirectIO
) -> AIOFileBlockDevice.Options {
    AIOFileBlockDevice.Options(
        path: path, geometry: BlockGeometry(blockSize: blockSize, blockCount: blocks), directIO: direct, queueDepth: 16)
}

private func pattern(_ seed: Int, count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ 1) }
}

@Suite struct AIOFileBlockDeviceTests {
    /// Both I/O paths on each kind of file system, chosen explicitly.
    /// nil: depends on the machine (/tmp may be tmpfs; tmpfs takes O_DIRECT
    /// only since Linux 6.6), so `auto` may land on either path there.
    static let paths: [(ScratchDirectory.Place, AIOFileBlockDevice.DirectIO, AIOFileBlockDevice.IOPath?)] = [
        (.tmp, .auto, nil), (.tmp, .off, .buffered),
        (.shm, .off, .buffered), (.shm, .auto, nil),
        (.work, .on, .directAIO), (.work, .off, .buffered), (.work, .auto, .directAIO),
    ]

    @Test(arguments: paths)
    func writeReadFlushUnmapRoundTrip(
        place: ScratchDirectory.Place, mode: AIOFileBlockDevice.DirectIO, expected: AIOFileBlockDevice.IOPath?
    ) async throws {
        let dir = ScratchDirectory(place)
        let device = try AIOFileBlockDevice(options: options(dir.file(), direct: mode))
        if let expected { #expect(device.ioPath == expected) }
        let data = IOBuffer(bytes: pattern(1, count: 8 * 512))
        try await device.write(lba: 10, blockCount: 8, from: data, offset: 0, fua: false)
        try await device.write(lba: 100, blockCount: 2, from: data, offset: 1024, fua: true)
        try await device.flush()
        let back = IOBuffer(count: 8 * 512)
        try await device.read(lba: 10, blockCount: 8, into: back, offset: 0)
        #expect(back.array() == data.array())
        try await device.read(lba: 100, blockCount: 2, into: back, offset: 0)
        #expect(back.array(0..<1024) == data.array(1024..<2048))

        try await device.unmap(lba: 10, blockCount: 4)
        try await device.read(lba: 10, blockCount: 8, into: back, offset: 0)
        #expect(back.array(0..<2048).allSatisfy { $0 == 0 })
        #expect(back.array(2048..<4096) == data.array(2048..<4096))
        await device.close()
    }

    @Test(arguments: [AIOFileBlockDevice.DirectIO.on, .off])
    func manyConcurrentIOsBeyondTheQueueDepth(mode: AIOFileBlockDevice.DirectIO) async throws {
        let dir = ScratchDirectory(.work)
        let blocks: UInt64 = 600
        let device = try AIOFileBlockDevice(options: options(dir.file(), blocks: blocks, blockSize: 4096, direct: mode))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lba in 0..<blocks {
                group.addTask {
                    let buffer = IOBuffer(bytes: pattern(Int(lba), count: 4096))
                    try await device.write(lba: lba, blockCount: 1, from: buffer, offset: 0, fua: lba % 50 == 0)
                }
            }
            try await group.waitForAll()
        }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for lba in 0..<blocks {
                group.addTask {
                    let buffer = IOBuffer(count: 4096)
                    try await device.read(lba: lba, blockCount: 1, into: buffer, offset: 0)
                    return buffer.array() == pattern(Int(lba), count: 4096)
                }
            }
            var good = 0
            for try await ok in group where ok { good += 1 }
            #expect(good == Int(blocks))
        }
        await device.close()
    }

    @Test(arguments: [AIOFileBlockDevice.DirectIO.on, .off])
    func misalignedBufferOffsetsGoThroughABounceBuffer(mode: AIOFileBlockDevice.DirectIO) async throws {
        let dir = ScratchDirectory(.work)
        let device = try AIOFileBlockDevice(options: options(dir.file(), direct: mode))
        let data = IOBuffer(bytes: [UInt8](repeating: 0, count: 7) + pattern(3, count: 1024))
        try await device.write(lba: 5, blockCount: 2, from: data, offset: 7, fua: false)
        let back = IOBuffer(count: 1024 + 13)
        try await device.read(lba: 5, blockCount: 2, into: back, offset: 13)
        #expect(back.array(13..<(13 + 1024)) == pattern(3, count: 1024))
        await device.close()
    }

    @Test func dataSurvivesCloseAndReopen() async throws {
        let dir = ScratchDirectory(.work)
        let first = try AIOFileBlockDevice(options: options(dir.file(), direct: .on))
        try await first.write(
            lba: 255, blockCount: 1, from: IOBuffer(bytes: pattern(9, count: 512)), offset: 0, fua: true)
        await first.close()
        let second = try AIOFileBlockDevice(options: options(dir.file(), direct: .off))
        let back = IOBuffer(count: 512)
        try await second.read(lba: 255, blockCount: 1, into: back, offset: 0)
        #expect(back.array() == pattern(9, count: 512))
        await second.close()
    }

    @Test func aSmallerExistingFileIsExtendedAndKeepsItsData() async throws {
        let dir = ScratchDirectory(.work)
        try Data(pattern(4, count: 1024)).write(to: URL(fileURLWithPath: dir.file()))
        let device = try AIOFileBlockDevice(options: options(dir.file(), blocks: 64, direct: .auto))
        let size = try FileManager.default.attributesOfItem(atPath: dir.file())[.size] as? Int
        #expect(size == 64 * 512)
        let back = IOBuffer(count: 1024)
        try await device.read(lba: 0, blockCount: 2, into: back, offset: 0)
        #expect(back.array() == pattern(4, count: 1024))
        await device.close()
    }

    @Test func aLargerExistingFileIsRefusedUnlessAllowed() async throws {
        let dir = ScratchDirectory(.work)
        try Data(count: 128 * 512).write(to: URL(fileURLWithPath: dir.file()))
        #expect(throws: AIOFileBlockDeviceError.self) {
            _ = try AIOFileBlockDevice(options: options(dir.file(), blocks: 64, direct: .auto))
        }
        do {
            _ = try AIOFileBlockDevice(options: options(dir.file(), blocks: 64, direct: .auto))
        } catch {
            #expect(error.code == .fileTooLarge)
        }
        var allowed = options(dir.file(), blocks: 64, direct: .auto)
        allowed.allowLargerFile = true
        let device = try AIOFileBlockDevice(options: allowed)
        #expect(device.geometry.blockCount == 64)
        await device.close()
    }

    @Test func whenTheFileSystemRefusesODirectAutoFallsBackAndOnFails() async throws {
        let dir = ScratchDirectory(.shm)
        var refused = options(dir.file(), direct: .auto)
        refused.simulateDirectIORefusal = true
        let device = try AIOFileBlockDevice(options: refused)
        #expect(device.ioPath == .buffered)
        try await device.write(
            lba: 0, blockCount: 1, from: IOBuffer(bytes: pattern(2, count: 512)), offset: 0, fua: true)
        await device.close()

        refused.directIO = .on
        #expect(openErrorCode(refused) == .directIOUnsupported)
    }

    @Test func thickDevicesAllocateAndRefuseUnmap() async throws {
        let dir = ScratchDirectory(.work)
        var thick = options(dir.file(), blocks: 64, direct: .auto)
        thick.thin = false
        let device = try AIOFileBlockDevice(options: thick)
        #expect(!device.supportsUnmap)
        await #expect(throws: BlockDeviceError(.notSupported, detail: "thick-provisioned \(dir.file())")) {
            try await device.unmap(lba: 0, blockCount: 1)
        }
        await device.close()
    }

    @Test func readOnlyDevicesRefuseWritesAndUnmaps() async throws {
        let dir = ScratchDirectory(.work)
        await (try AIOFileBlockDevice(options: options(dir.file(), direct: .auto))).close()
        var readOnly = options(dir.file(), direct: .auto)
        readOnly.readOnly = true
        let device = try AIOFileBlockDevice(options: readOnly)
        await #expect(throws: BlockDeviceError.self) {
            try await device.write(lba: 0, blockCount: 1, from: IOBuffer(count: 512), offset: 0, fua: false)
        }
        await #expect(throws: BlockDeviceError.self) { try await device.unmap(lba: 0, blockCount: 1) }
        try await device.read(lba: 0, blockCount: 1, into: IOBuffer(count: 512), offset: 0)
        await device.close()
    }

    @Test(arguments: [
        (UInt64(255), UInt32(2)), (UInt64.max, UInt32(1)), (UInt64(257), UInt32(0)), (UInt64(256), UInt32(1)),
    ])
    func rangesPastTheEndAreRefused(lba: UInt64, blocks: UInt32) async throws {
        let dir = ScratchDirectory()
        let device = try AIOFileBlockDevice(options: options(dir.file(), direct: .auto))
        await #expect(throws: BlockDeviceError(.outOfRange)) {
            try await device.read(lba: lba, blockCount: blocks, into: IOBuffer(count: 4096), offset: 0)
        }
        await #expect(throws: BlockDeviceError(.outOfRange)) {
            try await device.write(lba: lba, blockCount: blocks, from: IOBuffer(count: 4096), offset: 0, fua: false)
        }
        await #expect(throws: BlockDeviceError(.outOfRange)) {
            try await device.unmap(lba: lba, blockCount: UInt64(blocks))
        }
        await device.close()
    }

    @Test func aClosedDeviceRefusesEverything() async throws {
        let dir = ScratchDirectory()
        let device = try AIOFileBlockDevice(options: options(dir.file(), direct: .auto))
        await device.close()
        await device.close()
        await #expect(throws: BlockDeviceError(.closed)) {
            try await device.read(lba: 0, blockCount: 1, into: IOBuffer(count: 512), offset: 0)
        }
        await #expect(throws: BlockDeviceError(.closed)) { try await device.flush() }
    }

    @Test func aSecondDeviceOnTheSameFileIsRefused() async throws {
        let dir = ScratchDirectory()
        let device = try AIOFileBlockDevice(options: options(dir.file(), direct: .auto))
        #expect(openErrorCode(options(dir.file(), direct: .auto)) == .inUse)
        await device.close()
        await (try AIOFileBlockDevice(options: options(dir.file(), direct: .auto))).close()
    }

    /// Open failures, each with a clear code.
    @Test func openErrors() throws {
        let dir = ScratchDirectory()
        var readOnlyMissing = options(dir.file(), direct: .auto)
        readOnlyMissing.readOnly = true
        try Data(count: 512).write(to: URL(fileURLWithPath: dir.file("small.img")))
        var readOnlySmall = options(dir.file("small.img"), direct: .auto)
        readOnlySmall.readOnly = true
        let cases: [(AIOFileBlockDevice.Options, AIOFileBlockDeviceError.Code, UInt)] = [
            (options(dir.file("missing/lun.img"), direct: .auto), .directoryMissing, #line),
            (options(dir.path, direct: .auto), .notARegularFile, #line),
            (readOnlyMissing, .fileMissing, #line),
            (readOnlySmall, .fileTooSmall, #line),
            (options(dir.file(), blockSize: 1000, direct: .auto), .invalidGeometry, #line),
            (options(dir.file(), blocks: 0, direct: .auto), .invalidGeometry, #line),
            (options(dir.file(), blocks: UInt64.max / 512, direct: .auto), .invalidGeometry, #line),
        ]
        for (options, code, line) in cases {
            #expect(openErrorCode(options) == code, "case at line \(line)")
        }
    }

    @Test(.enabled(if: geteuid() != 0, "root bypasses file permissions"))
    func aDirectoryWithoutWritePermissionIsReported() throws {
        let dir = ScratchDirectory()
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: dir.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir.path) }
        #expect(openErrorCode(options(dir.file(), direct: .auto)) == .permissionDenied)
    }
}

private func openErrorCode(_ options: AIOFileBlockDevice.Options) -> AIOFileBlockDeviceError.Code? {
    do {
        let device = try AIOFileBlockDevice(options: options)
        Task { await device.close() }
        return nil
    } catch {
        return error.code
    }
}

/// GET LBA STATUS reads the sparse file's real allocation (SEEK_DATA / SEEK_HOLE).
@Suite struct AIOAllocationTests {
    @Test(arguments: [AIOFileBlockDevice.DirectIO.on, .off])
    func allocationFollowsWritesAndUnmaps(mode: AIOFileBlockDevice.DirectIO) async throws {
        let dir = ScratchDirectory(.work)
        let device = try AIOFileBlockDevice(options: options(dir.file(), blocks: 64, blockSize: 4096, direct: mode))
        #expect(try await device.allocation(lba: 0, blockCount: 64) == [BlockExtent(lba: 0, blockCount: 64, mapped: false)])
        try await device.write(lba: 10, blockCount: 2, from: IOBuffer(bytes: pattern(1, count: 8192)), offset: 0, fua: true)
        #expect(
            try await device.allocation(lba: 0, blockCount: 64) == [
                BlockExtent(lba: 0, blockCount: 10, mapped: false), BlockExtent(lba: 10, blockCount: 2, mapped: true),
                BlockExtent(lba: 12, blockCount: 52, mapped: false),
            ])
        #expect(try await device.allocation(lba: 11, blockCount: 3) == [
            BlockExtent(lba: 11, blockCount: 1, mapped: true), BlockExtent(lba: 12, blockCount: 2, mapped: false),
        ])
        try await device.unmap(lba: 10, blockCount: 1)
        #expect(try await device.allocation(lba: 10, blockCount: 2) == [
            BlockExtent(lba: 10, blockCount: 1, mapped: false), BlockExtent(lba: 11, blockCount: 1, mapped: true),
        ])
        await #expect(throws: BlockDeviceError.self) { try await device.allocation(lba: 63, blockCount: 2) }
        await device.close()
    }
}

/// Which buffered writes the caller's thread copies, and the back-off after a slow one.
@Suite struct InlineWritePolicyTests {
    @Test(arguments: [
        (0, 4096, false, InlineWritePolicy.Route.inline, #line),
        (8192, 65536, false, .inline, #line),
        (4096, 4096, true, .pool, #line),  // FUA: its fdatasync waits for the disk
        (512, 4096, false, .pool, #line),  // not page-aligned: the kernel may read a page first
        (4096, 512, false, .pool, #line),  // part of a page
        (0, 65536 + 4096, false, .pool, #line),  // larger than the inline limit
        (0, 0, false, .pool, #line),
    ])
    func route(offset: Int, length: Int, fua: Bool, expected: InlineWritePolicy.Route, line: Int) {
        var policy = InlineWritePolicy(pageSize: 4096)
        #expect(policy.route(fileOffset: offset, length: length, fua: fua) == expected, "line \(line)")
    }

    @Test func aSlowWriteSendsTheNextOnesToThePool() {
        var policy = InlineWritePolicy(pageSize: 4096)
        #expect(policy.route(fileOffset: 0, length: 4096, fua: false) == .inline)
        policy.inlineWriteTook(InlineWritePolicy.slowWrite)
        #expect(policy.route(fileOffset: 0, length: 4096, fua: false) == .inline, "at the limit is not slow")
        policy.inlineWriteTook(InlineWritePolicy.slowWrite + .microseconds(1))
        // Writes that never go inline do not use up the back-off.
        #expect(policy.route(fileOffset: 512, length: 4096, fua: false) == .pool)
        for _ in 0..<InlineWritePolicy.backOffWrites {
            #expect(policy.route(fileOffset: 0, length: 4096, fua: false) == .pool)
        }
        #expect(policy.route(fileOffset: 0, length: 4096, fua: false) == .inline, "tried again after the back-off")
    }

    /// Every route of a buffered write puts its bytes in the backing file
    /// (read with a second descriptor, not through the device).
    @Test func everyRouteReachesTheFile() async throws {
        let dir = ScratchDirectory(.work)
        let device = try AIOFileBlockDevice(options: options(dir.file(), blocks: 512, blockSize: 512, direct: .off))
        #expect(device.ioPath == .buffered)
        let writes: [(lba: UInt64, blocks: UInt32, fua: Bool)] = [
            (8, 8, false),  // one page: the caller's thread
            (64, 128, false),  // 64 KiB of whole pages: the caller's thread
            (17, 1, false),  // one 512-byte block: the pool
            (200, 8, true),  // FUA: the pool
            (300, 200, false),  // 100 KiB: the pool
        ]
        for (i, write) in writes.enumerated() {
            let data = IOBuffer(bytes: pattern(40 + i, count: Int(write.blocks) * 512))
            try await device.write(lba: write.lba, blockCount: write.blocks, from: data, offset: 0, fua: write.fua)
        }
        let file = try #require(FileHandle(forReadingAtPath: dir.file()))
        defer { try? file.close() }
        for (i, write) in writes.enumerated() {
            try file.seek(toOffset: write.lba * 512)
            let bytes = try #require(try file.read(upToCount: Int(write.blocks) * 512))
            #expect([UInt8](bytes) == pattern(40 + i, count: Int(write.blocks) * 512), "write \(i) at LBA \(write.lba)")
        }
        await device.close()
    }
}
