import BlockStorage
import EventLoopExecution
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import SCSITarget
import Testing

@testable import AIOBlockStorage
@testable import ISCSITargetServer

#if canImport(Glibc)
    import Glibc
#endif

/// libaio I/O submitted from a connection's event loop is reaped by that
/// loop (its eventfd is a pipe channel there): every read completes once,
/// on the loop, with the device's bytes; a failure still becomes sense data.
@Suite(.timeLimit(.minutes(1)))
struct LoopCompletionTests {
    static let quiet = Logger(label: "test.loop", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A file on the package's `.build` (ext4: O_DIRECT works there), removed afterwards.
    final class ScratchFile: @unchecked Sendable {
        let path: String
        init() {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("../../.build").standardized.path
            path = "\(root)/tessera-loop-\(UUID().uuidString).img"
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static func block(_ lba: Int) -> [UInt8] {
        (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 5 &+ lba &* 71 &+ 1) }
    }

    static func openDevice(_ file: ScratchFile, blocks: UInt64) throws -> AIOFileBlockDevice {
        try AIOFileBlockDevice(
            options: AIOFileBlockDevice.Options(
                path: file.path, geometry: BlockGeometry(blockSize: 4096, blockCount: blocks), directIO: .on,
                queueDepth: 16),
            logger: quiet)
    }

    @Test func readsSubmittedOnALoopCompleteOnItOnceEach() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        try await loop.submit { EventLoopCompletionPoller.installIfNeeded(on: loop) }.get()
        let file = ScratchFile()
        let blocks = 200
        let device = try Self.openDevice(file, blocks: UInt64(blocks))
        // Written from the test's thread: no poller there, the device's own engine.
        for lba in 0..<blocks {
            try await device.write(
                lba: UInt64(lba), blockCount: 1, from: IOBuffer(bytes: Self.block(lba)), offset: 0, fua: false)
        }
        #expect(device.routes.loop.load(ordering: .relaxed) == 0)
        let engineBefore = device.routes.engine.load(ordering: .relaxed)

        let executor = EventLoopTaskExecutor(eventLoop: loop)
        let outcomes = await Task(executorPreference: executor) {
            await withTaskGroup(of: (Bool, Bool).self) { tasks in
                for lba in 0..<blocks {
                    tasks.addTask {
                        let buffer = IOBuffer(count: 4096)
                        let read: Bool
                        do {
                            try await device.read(lba: UInt64(lba), blockCount: 1, into: buffer, offset: 0)
                            read = buffer.array() == Self.block(lba)
                        } catch {
                            read = false
                        }
                        return (read, loop.inEventLoop)
                    }
                }
                var all: [(Bool, Bool)] = []
                for await outcome in tasks { all.append(outcome) }
                return all
            }
        }.value
        #expect(outcomes.count == blocks)
        #expect(outcomes.allSatisfy { $0.0 }, "every block read back intact")
        #expect(outcomes.allSatisfy { $0.1 }, "every read resumed on the loop")
        #expect(device.routes.loop.load(ordering: .relaxed) == blocks)
        #expect(device.routes.engine.load(ordering: .relaxed) == engineBefore)
        await device.close()
        try await group.shutdownGracefully()
    }

    /// A short read reaped by the loop (the file was cut behind the device's
    /// back) is a MEDIUM ERROR, UNRECOVERED READ ERROR for the host.
    @Test func aShortReadOnTheLoopBecomesSenseData() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        try await loop.submit { EventLoopCompletionPoller.installIfNeeded(on: loop) }.get()
        let file = ScratchFile()
        let device = try Self.openDevice(file, blocks: 16)
        let target = SCSITargetDevice(logicalUnits: [
            0: LogicalUnit(configuration: LogicalUnitConfiguration(serial: "LOOP01", identifier: 0x10), device: device)
        ])
        #expect(truncate(file.path, 4 * 4096) == 0)
        let nexus = ITNexus(
            initiatorName: "iqn.2026-01.test:host", isid: 1, targetName: "iqn.2026-01.test:t", portalGroupTag: 1)
        // READ(10) of blocks 8...9: past the file's new end.
        let read10: [UInt8] = [0x28, 0, 0, 0, 0, 8, 0, 0, 2, 0]
        let executor = EventLoopTaskExecutor(eventLoop: loop)
        let response = await Task(executorPreference: executor) {
            // The nexus's first command reports its POWER ON unit attention; the second runs.
            var response = SCSIResponse(status: .good)
            for tag in 1...2 {
                response = await target.execute(
                    SCSICommand(
                        lun: 0, cdb: read10, nexus: nexus, taskTag: UInt32(tag), expectedDataTransferLength: 2 * 4096))
            }
            return response
        }.value
        #expect(response.status == .checkCondition)
        // Fixed format: sense key 3 (MEDIUM ERROR), ASC/ASCQ 11/00.
        #expect(response.sense.count >= 14)
        if response.sense.count >= 14 {
            #expect(response.sense[2] & 0x0F == 0x03)
            #expect(response.sense[12] == 0x11 && response.sense[13] == 0x00)
        }
        #expect(device.routes.loop.load(ordering: .relaxed) == 1)
        await device.close()
        try await group.shutdownGracefully()
    }

    /// An `EmbeddedEventLoop` cannot watch a descriptor: none is installed
    /// for it, and the thread's I/O keeps the device's own engine.
    @Test func anEmbeddedLoopGetsNoPoller() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (before, after) = try await group.next().submit { () -> (Bool, Bool) in
            let before = CompletionPollers.current == nil
            let embedded = EmbeddedEventLoop()
            EventLoopCompletionPoller.installIfNeeded(on: embedded)
            return (before, CompletionPollers.current == nil)
        }.get()
        #expect(before)
        #expect(after)
        try await group.shutdownGracefully()
    }
}
