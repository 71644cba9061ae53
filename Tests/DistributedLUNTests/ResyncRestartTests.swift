import BlockStorage
import ClusterModel
import DistributedLUN
import Synchronization
import TesseraTestKit
import Testing

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

/// The 64 KiB regions in which two replicas differ (every one when either is missing).
func differingRegions(_ a: [UInt8]?, _ b: [UInt8]?) -> [Int] {
    guard let a, let b, a.count == b.count else { return [-1] }
    if a == b { return [] }
    return stride(from: 0, to: a.count, by: 65536).filter {
        a[$0..<min($0 + 65536, a.count)] != b[$0..<min($0 + 65536, b.count)]
    }
    .map { $0 / 65536 }
}

/// Waits (bounded) until `condition` holds.
private func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<10_000 where !condition() { try? await Task.sleep(for: .milliseconds(1)) }
    return condition()
}

/// The throttle of a resync that "crashes" its node after `regions`
/// regions: from then on it sleeps until its task is cancelled, as a dead
/// process would never come back.
private final class CrashAfter: Sendable {
    let copies: Int
    private let copied = Mutex(0)
    init(copies: Int) { self.copies = copies }

    var crashed: Bool { copied.withLock { $0 >= copies } }

    func sleep(_: Duration) async {
        let n = copied.withLock { n in
            n += 1
            return n
        }
        guard n >= copies else { return }
        while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(2)) }
    }
}

@Suite("Resync across a restart of the primary", .timeLimit(.minutes(1)))
struct ResyncRestartTests {
    let lun = LUNID(0x7E55_E4A0)

    /// Regression: `recoverActivityLog` treated a resyncing secondary like an
    /// in-sync one and gave it a record of only the logged extents, so a full
    /// copy cut off by the primary's crash ended "in sync" without the rest.
    /// Without a record on disk (it could not be saved) the copy starts
    /// again in full; with one it resumes where its last save left it.
    @Test(
        "a replica in the middle of a full copy when its primary restarts gets every region it lacks, not only the logged ones",
        arguments: [false, true])
    func fullCopyInterruptedByPrimaryRestart(recordSaved: Bool) async throws {
        let clock = ManualClock()
        let crash = CrashAfter(copies: recordSaved ? 5 : 1)
        // An 8 MiB sub-unit (two 4 MiB activity log extents, 128 regions)
        // that node 1 holds alone; node 2 has an extent for it.
        let cluster = InProcessCluster(
            subUnitBlocks: 16384, subUnitCount: 1, placement: [[1]], clock: clock, resyncRate: 1,
            extentsEverywhere: true, activityLogs: true, sleep: { await crash.sleep($0) })
        for (i, lba) in [1024, 5000, 9000, 16000].enumerated() {
            try await cluster.device(1).write(
                lba: UInt64(lba), blockCount: 8, from: content(8, seed: UInt32(i)), offset: 0, fua: false)
        }
        // Node 2 joins stale (FailoverPlan.repaired): no record, a full copy.
        cluster.store.change(lun, 0) { $0.replicas.append(Replica(node: NodeID(2), state: .stale)) }
        await cluster.nodes[NodeID(1)]!.reloadMaps()
        // A write with company is logged (extent 1) before it is written.
        try await cluster.device(3).write(lba: 12000, blockCount: 8, from: content(8, seed: 77), offset: 0, fua: false)
        #expect(cluster.activityStores[NodeID(1)]?.extents == [1])

        // The full copy begins and node 1 dies after 5 copies of 16 regions (or 1).
        let records = try #require(cluster.activityStores[NodeID(1)]?.records)
        records.setFailing(!recordSaved)
        let old = cluster.nodes[NodeID(1)]!
        let first = Task { await old.resync(lun, index: 0, node: NodeID(2)) }
        #expect(await eventually { crash.crashed })
        #expect(await cluster.storedSet(0)?.replicas.last == Replica(node: NodeID(2), state: .resyncing))
        if recordSaved {
            #expect(
                await eventually { records.record(0, 2)?.regions.count == 64 },
                "the first 64 copied regions cleared on disk (they are saved every 64)")
        } else {
            #expect(records.all.isEmpty)
        }

        // Node 1 restarts: its log names extent 1; its record, what the copy had not reached.
        let (restarted, _) = await cluster.restart(1)
        let recovered = await restarted.recoverActivityLog(lun)
        #expect(recovered.done)
        #expect(
            await cluster.storedSet(0)?.replicas.last == Replica(node: NodeID(2), state: .resyncing), "still a learner")
        #expect(await restarted.resyncReturned(lun, isLive: { _ in true }) == 1)
        #expect(
            restarted.resyncStatus.bytesCopied == (recordSaved ? 64 : 128) * 65536,
            "the rest of the full copy from its record, or all of it again")
        #expect(await cluster.storedSet(0)?.replicas.allSatisfy { $0.state == .inSync } == true)
        let contents = await cluster.replicaContents(0)
        #expect(differingRegions(contents[NodeID(1)], contents[NodeID(2)]) == [], "byte-identical")

        first.cancel()
        _ = await first.value
    }

    /// Regression: a write a learner missed after its primary restarted
    /// (no record of the copy in memory) started a record of only that
    /// write, as if the learner had been in sync until then.
    @Test("a learner that misses a write after its primary restarted still gets the rest of its full copy")
    func learnerMissesWriteAfterPrimaryRestart() async throws {
        let clock = ManualClock()
        let crash = CrashAfter(copies: 1)
        let cluster = InProcessCluster(
            subUnitBlocks: 16384, subUnitCount: 1, placement: [[1]], clock: clock, resyncRate: 1,
            extentsEverywhere: true, sleep: { await crash.sleep($0) })
        for (i, lba) in [1024, 5000, 9000, 16000].enumerated() {
            try await cluster.device(1).write(
                lba: UInt64(lba), blockCount: 8, from: content(8, seed: UInt32(i)), offset: 0, fua: false)
        }
        cluster.store.change(lun, 0) { $0.replicas.append(Replica(node: NodeID(2), state: .stale)) }
        await cluster.nodes[NodeID(1)]!.reloadMaps()
        let old = cluster.nodes[NodeID(1)]!
        let first = Task { await old.resync(lun, index: 0, node: NodeID(2)) }
        #expect(await eventually { crash.crashed })

        // Restarted (no activity log: nothing to recover), node 1 takes a
        // write the learner misses: it goes stale, still owed a full copy.
        let (restarted, _) = await cluster.restart(1)
        cluster.network.partition(NodeID(1), NodeID(2))
        let missed = Task {
            try await cluster.device(3).write(
                lba: 12000, blockCount: 8, from: content(8, seed: 77), offset: 0, fua: false)
        }
        for _ in 0..<10_000 where clock.sleeperCount < 2 { try? await Task.sleep(for: .milliseconds(1)) }
        clock.advance(by: .seconds(2))
        try await missed.value
        #expect(await cluster.storedSet(0)?.replicas.last == Replica(node: NodeID(2), state: .stale))

        cluster.network.heal()
        #expect(await restarted.resyncReturned(lun, isLive: { _ in true }) == 1)
        #expect(restarted.resyncStatus.bytesCopied == 16384 * 512, "a full copy")
        #expect(await cluster.storedSet(0)?.replicas.allSatisfy { $0.state == .inSync } == true)
        let contents = await cluster.replicaContents(0)
        #expect(differingRegions(contents[NodeID(1)], contents[NodeID(2)]) == [], "byte-identical")

        first.cancel()
        _ = await first.value
    }
}
