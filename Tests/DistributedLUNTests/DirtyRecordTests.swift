import BlockStorage
import ClusterModel
import Foundation
import Synchronization
import TesseraTestKit
import Testing

@testable import DistributedLUN

/// `blocks` 512-byte blocks, each block's bytes derived from `seed` and its index.
private func content(_ blocks: Int, seed: UInt32) -> IOBuffer {
    let buffer = IOBuffer(count: blocks * 512)
    var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    for i in 0..<buffer.count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        buffer.bytes[i] = UInt8(truncatingIfNeeded: state)
    }
    return buffer
}

/// Writes through `device` while the link to one secondary is cut: the
/// first write waits for its replication timeout on `clock`, which marks
/// that secondary stale; the rest only mark regions. With `reaching`, the
/// clock moves only once that other secondary has the first write (its
/// reply must not time out too).
private func missedWrites(
    _ writes: [(lba: UInt64, blocks: UInt32)], through device: DistributedBlockDevice, clock: ManualClock,
    reaching other: MemoryBlockDevice? = nil
) async throws {
    for (i, write) in writes.enumerated() {
        let data = content(Int(write.blocks), seed: UInt32(1000 + i))
        let task = Task {
            try await device.write(lba: write.lba, blockCount: write.blocks, from: data, offset: 0, fua: false)
        }
        if i == 0 {
            for _ in 0..<10_000 where clock.sleeperCount < 1 { try? await Task.sleep(for: .milliseconds(1)) }
            if let other {
                let buffer = IOBuffer(count: data.count)
                for _ in 0..<10_000 {
                    try await other.read(lba: write.lba, blockCount: write.blocks, into: buffer, offset: 0)
                    if buffer.array() == data.array() { break }
                    try? await Task.sleep(for: .milliseconds(1))
                }
                for _ in 0..<10_000 where clock.sleeperCount > 1 { try? await Task.sleep(for: .milliseconds(1)) }
            }
            clock.advance(by: .seconds(2))
        }
        try await task.value
    }
}

/// The 64 KiB regions (of 512-byte blocks) the writes touch.
private func regions(of writes: [(lba: UInt64, blocks: UInt32)]) -> Set<UInt64> {
    Set(writes.flatMap { ($0.lba / 128)...(($0.lba + UInt64($0.blocks) - 1) / 128) })
}

@Suite("Dirty-region records kept across a restart of the primary", .timeLimit(.minutes(1)))
struct DirtyRecordTests {
    let lun = LUNID(0x7E55_E4A0)

    @Test(
        "a replica that missed writes is resynced after its primary restarted through its record, not in full",
        arguments: [true, false])
    func returningReplicaAfterPrimaryRestart(extentsStillLogged: Bool) async throws {
        let clock = ManualClock()
        // A 16 MiB sub-unit: four 4 MiB activity log extents, 256 regions.
        let cluster = InProcessCluster(
            subUnitBlocks: 32768, subUnitCount: 1, placement: [[1, 2]], clock: clock, activityLogs: true)
        for i in 0..<8 {
            try await cluster.device(3).write(
                lba: UInt64(i) * 512, blockCount: 8, from: content(8, seed: UInt32(i)), offset: 0, fua: false)
        }
        // Node 2 misses 40 writes in extents 2 and 3.
        var random = SplitMix64(state: 7)
        let writes: [(lba: UInt64, blocks: UInt32)] = (0..<40).map { _ in
            let blocks = UInt32.random(in: 1...16, using: &random)
            return (16384 + UInt64.random(in: 0...(16384 - UInt64(blocks)), using: &random), blocks)
        }
        cluster.network.partition(NodeID(1), NodeID(2))
        try await missedWrites(writes, through: cluster.device(1), clock: clock)
        #expect(await cluster.storedSet(0)?.replicas.last == Replica(node: NodeID(2), state: .stale))
        let log = try #require(cluster.activityStores[NodeID(1)])
        let dirty = regions(of: writes)
        let saved = try #require(log.records.record(0, 2))
        #expect(
            saved.regions.count == dirty.count, "every region it lacks is on disk before its write was acknowledged")
        #expect(dirty.allSatisfy { saved.regions.contains(Int($0)) })
        #expect(log.extents.map(Set.init) == [0, 2, 3])
        cluster.network.heal()
        if !extentsStillLogged {
            // As when 64 hotter extents pushed them out of the log long ago.
            try await log.save([], extentBlocks: 8192)
        }

        // Node 1 restarts and resyncs node 2: the record's regions, plus
        // the extents the activity log still names (a write in flight at the
        // crash may be in them): 3 × 64 regions, or the 'dirty' ones alone.
        let (restarted, _) = await cluster.restart(1)
        #expect(await restarted.recoverActivityLog(lun).done)
        #expect(await restarted.resyncReturned(lun, isLive: { _ in true }) == 1)
        let expected = extentsStillLogged ? 3 * 64 : dirty.count
        #expect(restarted.resyncStatus.bytesCopied == UInt64(expected) * 65536, "not the 256 regions of a full copy")
        #expect(await cluster.storedSet(0)?.replicas.allSatisfy { $0.state == .inSync } == true)
        let contents = await cluster.replicaContents(0)
        #expect(differingRegions(contents[NodeID(1)], contents[NodeID(2)]) == [], "byte-identical")
        for _ in 0..<10_000 where !log.records.all.isEmpty { try? await Task.sleep(for: .milliseconds(1)) }
        #expect(log.records.all.isEmpty, "no record on disk once the replica is in sync")
    }

    @Test("a promoted primary that restarts before the old one returns still asks for the old primary's log")
    func promotedPrimaryRestartKeepsThePeerLogFlag() async throws {
        let clock = ManualClock()
        // A 32 MiB sub-unit: eight 4 MiB activity log extents.
        let cluster = InProcessCluster(
            subUnitBlocks: 65536, subUnitCount: 1, placement: [[1, 2]], clock: clock, activityLogs: true)
        for i in 0..<8 {
            try await cluster.device(3).write(
                lba: UInt64(i) * 16, blockCount: 8, from: content(8, seed: UInt32(i)), offset: 0, fua: false)
        }
        // Node 1 applies one more write (extent 0) locally and dies before node 2 has it.
        cluster.network.partition(NodeID(1), NodeID(2))
        cluster.views[NodeID(1)]!.setCut(true)
        let doubt = Task {
            try await cluster.device(3).write(
                lba: 200, blockCount: 8, from: content(8, seed: 999), offset: 0, fua: false)
        }
        for _ in 0..<10_000 where clock.sleeperCount < 2 { try? await Task.sleep(for: .milliseconds(1)) }
        clock.advance(by: .seconds(2))
        _ = try? await doubt.value
        cluster.network.isolate(NodeID(1))
        cluster.nodes[NodeID(1)]!.serveOnlyWhile { false }
        #expect(await cluster.failOver(1).map(\.set.primary) == [NodeID(2)])
        // Node 2, primary now, writes in extent 5: its record of node 1, with the flag, is on disk.
        try await cluster.device(3).write(
            lba: 5 * 8192 + 40, blockCount: 8, from: content(8, seed: 77), offset: 0, fua: false)
        let records = try #require(cluster.activityStores[NodeID(2)]?.records)
        #expect(records.record(0, 1)?.needsPeerLog == true)

        // Node 2 restarts; node 1 returns. Node 2 copies what node 1's log
        // names (extent 0), its record's region and the extent its own log
        // recovered (5): 128 regions of 512, and node 1's lone write is gone.
        let (restarted, _) = await cluster.restart(2)
        #expect(await restarted.recoverActivityLog(lun).done)
        cluster.network.heal()
        cluster.views[NodeID(1)]!.setCut(false)
        await cluster.nodes[NodeID(1)]!.reloadMaps()
        #expect(await restarted.resync(lun, index: 0, node: NodeID(1)))
        #expect(restarted.resyncStatus.bytesCopied == 128 * 65536, "\(restarted.resyncStatus.bytesCopied) bytes")
        let contents = await cluster.replicaContents(0)
        #expect(differingRegions(contents[NodeID(1)], contents[NodeID(2)]) == [], "byte-identical")
    }

    @Test(
        "a record that cannot be saved is removed instead: the write is acknowledged, and a restart means a full copy")
    func unsavableRecordMeansFullCopy() async throws {
        let clock = ManualClock()
        let cluster = InProcessCluster(
            subUnitBlocks: 16384, subUnitCount: 1, placement: [[1, 2]], clock: clock, activityLogs: true)
        let log = try #require(cluster.activityStores[NodeID(1)])
        try await cluster.device(3).write(
            lba: 0, blockCount: 16384, from: content(16384, seed: 1), offset: 0, fua: false)
        try await log.records.save(
            DirtyRecord(
                lun: lun, index: 0, node: NodeID(2), needsPeerLog: false,
                regions: DirtyRegions(blockCount: 16384, regionBlocks: 128)))
        log.records.setFailing(true)
        cluster.network.partition(NodeID(1), NodeID(2))
        try await missedWrites([(100, 8), (9000, 8), (15000, 16)], through: cluster.device(1), clock: clock)
        #expect(log.records.record(0, 2) == nil, "removed, not left saying less")
        cluster.network.heal()

        let (restarted, _) = await cluster.restart(1)
        _ = await restarted.recoverActivityLog(lun)
        #expect(await restarted.resyncReturned(lun, isLive: { _ in true }) == 1)
        #expect(restarted.resyncStatus.bytesCopied == 16384 * 512, "a full copy")
        let contents = await cluster.replicaContents(0)
        #expect(differingRegions(contents[NodeID(1)], contents[NodeID(2)]) == [], "byte-identical")
    }

    @Test(
        "a record that can be neither saved nor removed fails the write, and the replica that missed it is still stale")
    func recordThatCannotBeWrittenFailsTheWrite() async throws {
        let clock = ManualClock()
        let cluster = InProcessCluster(
            subUnitBlocks: 16384, subUnitCount: 1, placement: [[1, 2]], clock: clock, activityLogs: true)
        let log = try #require(cluster.activityStores[NodeID(1)])
        log.records.setFailing(true, removals: true)
        cluster.network.partition(NodeID(1), NodeID(2))
        await #expect(throws: BlockDeviceError.self) {
            try await missedWrites([(100, 8)], through: cluster.device(1), clock: clock)
        }
        // (required: a replica left in sync would make the next write wait for it)
        try #require(await cluster.storedSet(0)?.replicas.last == Replica(node: NodeID(2), state: .stale))
        // Once the store takes saves again, writes go on and the record has them.
        log.records.setFailing(false)
        try await cluster.device(1).write(lba: 9000, blockCount: 8, from: content(8, seed: 3), offset: 0, fua: false)
        #expect(log.records.record(0, 2)?.regions.contains(9000 / 128) == true)
    }

    /// Regression: a primary kept its records of a sub-unit after another
    /// node took it over; leading it again later, it resynced a replica that
    /// had been stale all along through the old record alone, without what
    /// that replica missed under the other primary.
    @Test(
        "a primary that leads a sub-unit again keeps no record from before: a replica stale all along gets a full copy")
    func recordsOfAnEarlierTenureAreDropped() async throws {
        let clock = ManualClock()
        let cluster = InProcessCluster(
            subUnitBlocks: 8192, subUnitCount: 1, replicas: 3, placement: [[1, 2, 3]], clock: clock)
        try await cluster.device(1).write(lba: 0, blockCount: 8192, from: content(8192, seed: 1), offset: 0, fua: false)
        // Node 3 misses a write under node 1: stale, and node 1 records one region.
        cluster.network.isolate(NodeID(3))
        try await missedWrites(
            [(100, 8)], through: cluster.device(1), clock: clock, reaching: cluster.extents[NodeID(2)]![0]!)
        #expect(await cluster.storedSet(0)?.replicas.last == Replica(node: NodeID(3), state: .stale))

        // Node 1 is failed over to node 2, which takes writes node 3 (stale) never gets.
        cluster.network.isolate(NodeID(1))
        #expect(await cluster.failOver(1).map(\.set.primary) == [NodeID(2)])
        let underTwo = content(16, seed: 2)
        try await cluster.device(2).write(lba: 4000, blockCount: 16, from: underTwo, offset: 0, fua: false)

        // Node 1 returns and is resynced by node 2; then node 2 fails and node 1 leads again.
        cluster.network.heal()
        cluster.network.isolate(NodeID(3))
        #expect(await cluster.nodes[NodeID(2)]!.resync(lun, index: 0, node: NodeID(1)))
        cluster.network.isolate(NodeID(2))
        #expect(await cluster.failOver(2).map(\.set.primary) == [NodeID(1)])

        // Node 3 returns to node 1: all it missed under both primaries.
        cluster.network.heal()
        cluster.network.isolate(NodeID(2))
        let primary = cluster.nodes[NodeID(1)]!
        #expect(await primary.resync(lun, index: 0, node: NodeID(3)))
        #expect(primary.resyncStatus.bytesCopied == 8192 * 512, "a full copy: no record here covers node 2's time")
        let contents = await cluster.replicaContents(0)
        #expect(differingRegions(contents[NodeID(1)], contents[NodeID(3)]) == [], "byte-identical")
    }

    @Test("record files: kept, read back, replaced, removed; torn, foreign or misnamed ones are dropped")
    func recordFiles() throws {
        let directory = NSTemporaryDirectory() + "tessera-dr-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = DirtyRecordFiles(prefix: directory + "/lun.img.al")
        #expect(files.loadAll().isEmpty)
        var regions = DirtyRegions(blockCount: 1000, regionBlocks: 128)
        regions.mark(lba: 0, blocks: 1)
        regions.mark(lba: 999, blocks: 1)
        let first = DirtyRecord(lun: lun, index: 3, node: NodeID(2), needsPeerLog: true, regions: regions)
        let second = DirtyRecord(
            lun: lun, index: 4, node: NodeID(9), needsPeerLog: false,
            regions: DirtyRegions(blockCount: 100_000, regionBlocks: 128, all: true))
        try files.save(first)
        try files.save(second)
        #expect(Set(files.loadAll()) == [first, second])
        regions.remove(0)
        let shorter = DirtyRecord(lun: lun, index: 3, node: NodeID(2), needsPeerLog: false, regions: regions)
        try files.save(shorter)
        #expect(Set(files.loadAll()) == [shorter, second], "replaced in place")
        try files.remove(index: 4, node: NodeID(9))
        try files.remove(index: 4, node: NodeID(9))
        #expect(files.loadAll() == [shorter])

        // A torn record, one under another name, and an unrelated file.
        var torn = DirtyRecordFiles.encode(second)
        torn[60] ^= 0x10
        FileManager.default.createFile(atPath: files.path(index: 4, node: NodeID(9)), contents: Data(torn))
        FileManager.default.createFile(
            atPath: files.path(index: 5, node: NodeID(2)), contents: Data(DirtyRecordFiles.encode(shorter)))
        FileManager.default.createFile(atPath: directory + "/lun.img", contents: Data([1, 2, 3]))
        #expect(files.loadAll() == [shorter])
        #expect(!FileManager.default.fileExists(atPath: files.path(index: 4, node: NodeID(9))), "dropped for good")
        #expect(FileManager.default.fileExists(atPath: directory + "/lun.img"), "not one of its files")
        #expect(DirtyRecordFiles.decode(Array(DirtyRecordFiles.encode(shorter).prefix(40))) == nil)
        files.removeAll()
        #expect(files.loadAll().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: files.path(index: 3, node: NodeID(2))))
    }

    @Test("a bitmap read back from its words is the same, and words of another shape are refused")
    func bitmapStorageRoundTrip() {
        var regions = DirtyRegions(blockCount: 8192 * 3 + 5, regionBlocks: 128)
        for lba: UInt64 in [0, 700, 8191, 16384, 24580] { regions.mark(lba: lba, blocks: 3) }
        let back = DirtyRegions(blockCount: regions.blockCount, regionBlocks: 128, storage: regions.storage)
        #expect(back == regions)
        #expect(back?.count == regions.count)
        #expect(DirtyRegions(blockCount: regions.blockCount, regionBlocks: 64, storage: regions.storage) == nil)
        var stray = regions.storage
        stray[stray.count - 1] |= 1 << 63
        #expect(
            DirtyRegions(blockCount: regions.blockCount, regionBlocks: 128, storage: stray) == nil, "a bit past the end"
        )
    }
}
