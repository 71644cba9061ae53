import AIOBlockStorage
import BlockStorage
import Foundation
import Logging
import Testing

@testable import TesseraNode

let quietLogger = Logger(label: "test.node", factory: { _ in SwiftLogNoOpLogHandler() })

@Suite struct LogicalUnitDevicesTests {
    /// A data directory under the package's `.build` (removed afterwards).
    final class DataDirectory: @unchecked Sendable {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.build/tessera-node-\(UUID().uuidString)").standardized.path
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    @Test func opensFileAndMemoryLUNsAndCreatesTheDataDirectory() async throws {
        let dir = DataDirectory()
        let configuration = try NodeConfiguration.parse(
            """
            [node]
            data_dir = "\(dir.path)/nested/data"
            [[target]]
            name = "iqn.2026-11.dev.tessera:a"
            [[target.lun]]
            id = 0
            size = "4MiB"
            path = "a0.img"
            [[target.lun]]
            id = 7
            size = "1MiB"
            block_size = 4096
            backing = "memory"
            """, source: "test")
        let units = try await TesseraNode.openLogicalUnitDevices(configuration: configuration, logger: quietLogger)
        #expect(units.map(\.lun.id) == [0, 7])
        #expect(
            units.map(\.device.geometry) == [
                BlockGeometry(blockSize: 512, blockCount: 8192), BlockGeometry(blockSize: 4096, blockCount: 256),
            ])
        #expect(units[0].device is AIOFileBlockDevice && units[1].device is MemoryBlockDevice)
        #expect(FileManager.default.fileExists(atPath: "\(dir.path)/nested/data/a0.img"))
        let buffer = IOBuffer(bytes: [UInt8](repeating: 0x5A, count: 512))
        try await units[0].device.write(lba: 1, blockCount: 1, from: buffer, offset: 0, fua: true)
        for unit in units { await unit.device.close() }
    }

    @Test func aLUNThatCannotOpenNamesTargetAndLUNAndClosesTheOthers() async throws {
        let dir = DataDirectory()
        let configuration = try NodeConfiguration.parse(
            """
            [node]
            data_dir = "\(dir.path)"
            [[target]]
            name = "iqn.2026-11.dev.tessera:a"
            [[target.lun]]
            id = 0
            size = "1MiB"
            path = "good.img"
            [[target.lun]]
            id = 1
            size = "1MiB"
            path = "missing-dir/bad.img"
            """, source: "test")
        do {
            _ = try await TesseraNode.openLogicalUnitDevices(configuration: configuration, logger: quietLogger)
            Issue.record("expected an error")
        } catch {
            #expect(error.targetName == "iqn.2026-11.dev.tessera:a" && error.lunID == 1)
            #expect(error.description.contains("directory missing"))
        }
        // good.img was closed (its lock released): it opens again.
        let again = try AIOFileBlockDevice(
            options: .init(path: "\(dir.path)/good.img", geometry: BlockGeometry(blockSize: 512, blockCount: 2048)),
            logger: quietLogger)
        await again.close()
    }

    @Test func relativeAndAbsolutePathsResolveAgainstDataDir() throws {
        let configuration = try NodeConfiguration.parse(
            """
            [node]
            data_dir = "/srv/tessera/"
            [[target]]
            name = "iqn.2026-11.dev.tessera:a"
            [[target.lun]]
            id = 0
            size = 512
            path = "rel.img"
            [[target.lun]]
            id = 1
            size = 512
            path = "/abs/a.img"
            read_only = true
            thin = false
            """, source: "test")
        let options = configuration.logicalUnitPlans().compactMap { plan -> AIOFileBlockDevice.Options? in
            if case .file(let options) = plan.device { return options }
            return nil
        }
        #expect(options.map(\.path) == ["/srv/tessera/rel.img", "/abs/a.img"])
        #expect(options.map(\.readOnly) == [false, true])
        #expect(options.map(\.thin) == [true, false])
    }

    @Test func terminationSignalsResumeTheWaiter() async throws {
        let signals = TerminationSignals(logger: quietLogger)
        async let received = signals.wait()
        try await Task.sleep(for: .milliseconds(50))
        kill(getpid(), SIGTERM)
        #expect(await received == SIGTERM)
        signals.cancel()
    }
}
