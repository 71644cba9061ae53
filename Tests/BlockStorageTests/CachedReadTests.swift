import BlockStorage
import Foundation
import Synchronization
import Testing
import TesseraTestKit

@testable import AIOBlockStorage

#if canImport(Glibc)
    import Glibc
#endif

/// Buffered reads: the page cache first, on the caller's thread
/// (`preadv2(RWF_NOWAIT)`), the blocking pool for whatever it did not hold.
/// The kernel call is replaced by a script so every answer it can give is
/// exercised whatever the file system does.
@Suite struct CachedReadTests {
    /// Answers of the stand-in for `preadv2(RWF_NOWAIT)`, by call; past the
    /// end of the script it reads for real.
    final class Script: Sendable {
        enum Answer: Sendable {
            /// Reads this many bytes for real (a short read: the rest is not cached).
            case bytes(Int)
            /// Fails with this errno, reading nothing.
            case error(Int32)
        }
        private let answers: Mutex<[Answer]>
        let calls = Atomic<Int>(0)
        init(_ answers: [Answer]) { self.answers = Mutex(answers) }

        func call(_ fd: Int32, _ address: UnsafeMutableRawPointer, _ length: Int, _ offset: Int) -> Int {
            calls.wrappingAdd(1, ordering: .relaxed)
            let answer = answers.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            switch answer {
            case .error(let code): return -Int(code)
            case .bytes(let count): return pread(fd, address, min(count, length), off_t(offset))
            case nil: return pread(fd, address, length, off_t(offset))
            }
        }
    }

    private static func device(_ dir: ScratchDirectory, _ script: Script) throws -> AIOFileBlockDevice {
        try AIOFileBlockDevice(
            options: AIOFileBlockDevice.Options(
                path: dir.file(), geometry: BlockGeometry(blockSize: 512, blockCount: 64), directIO: .off),
            logger: quietLogger, readCached: { script.call($0, $1, $2, $3) })
    }

    private static let data: [UInt8] = (0..<(16 * 512)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }

    private static func filled(_ dir: ScratchDirectory, _ script: Script) async throws -> AIOFileBlockDevice {
        let device = try device(dir, script)
        try await device.write(lba: 8, blockCount: 16, from: IOBuffer(bytes: data), offset: 0, fua: true)
        return device
    }

    private static func readBack(_ device: AIOFileBlockDevice) async throws -> [UInt8] {
        let buffer = IOBuffer(count: 16 * 512 + 100)
        try await device.read(lba: 8, blockCount: 16, into: buffer, offset: 100)
        return buffer.array(100..<(100 + 16 * 512))
    }

    @Test func aCachedRangeIsServedWithoutThePool() async throws {
        let dir = ScratchDirectory(.work)
        let script = Script([])
        let device = try await Self.filled(dir, script)
        #expect(try await Self.readBack(device) == Self.data)
        #expect(device.routes.cached.load(ordering: .relaxed) == 1)
        #expect(device.routes.pool.load(ordering: .relaxed) == 0)
        await device.close()
    }

    @Test func nothingCachedFallsBackToThePool() async throws {
        let dir = ScratchDirectory(.work)
        let script = Script([.error(EAGAIN)])
        let device = try await Self.filled(dir, script)
        #expect(try await Self.readBack(device) == Self.data)
        #expect(device.routes.cached.load(ordering: .relaxed) == 0)
        #expect(device.routes.pool.load(ordering: .relaxed) == 1)
        // EAGAIN is about this range only: the next read asks the page cache again.
        #expect(try await Self.readBack(device) == Self.data)
        #expect(script.calls.load(ordering: .relaxed) == 2)
        #expect(device.routes.cached.load(ordering: .relaxed) == 1)
        await device.close()
    }

    @Test(arguments: [1, 511, 512, 4096, 16 * 512 - 1])
    func aShortCachedReadIsCompletedByThePool(cachedBytes: Int) async throws {
        let dir = ScratchDirectory(.work)
        let script = Script([.bytes(cachedBytes)])
        let device = try await Self.filled(dir, script)
        #expect(try await Self.readBack(device) == Self.data)
        #expect(device.routes.partlyCached.load(ordering: .relaxed) == 1)
        #expect(device.routes.pool.load(ordering: .relaxed) == 1)
        await device.close()
    }

    @Test(arguments: [EOPNOTSUPP, EINVAL, ENOSYS])
    func aKernelWithoutNowaitIsNotAskedAgain(code: Int32) async throws {
        let dir = ScratchDirectory(.work)
        let script = Script([.error(code)])
        let device = try await Self.filled(dir, script)
        #expect(try await Self.readBack(device) == Self.data)
        #expect(try await Self.readBack(device) == Self.data)
        #expect(script.calls.load(ordering: .relaxed) == 1)
        #expect(device.routes.pool.load(ordering: .relaxed) == 2)
        await device.close()
    }

    @Test func anErrorFromTheCacheLeavesTheVerdictToThePool() async throws {
        let dir = ScratchDirectory(.work)
        let script = Script([.error(EIO)])
        let device = try await Self.filled(dir, script)
        // The pool's pread succeeds: the bytes are there.
        #expect(try await Self.readBack(device) == Self.data)
        #expect(device.routes.pool.load(ordering: .relaxed) == 1)
        await device.close()
    }

    @Test func theRealKernelCallReadsTheSameBytes() async throws {
        let dir = ScratchDirectory(.work)
        let device = try AIOFileBlockDevice(
            options: AIOFileBlockDevice.Options(
                path: dir.file(), geometry: BlockGeometry(blockSize: 512, blockCount: 64), directIO: .off))
        try await device.write(lba: 8, blockCount: 16, from: IOBuffer(bytes: Self.data), offset: 0, fua: false)
        #expect(try await Self.readBack(device) == Self.data)
        // Either path, once: the page cache (just written) or, without RWF_NOWAIT, the pool.
        let routes = device.routes
        #expect(routes.cached.load(ordering: .relaxed) + routes.pool.load(ordering: .relaxed) == 1)
        await device.close()
    }
}
