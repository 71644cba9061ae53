import BlockStorage
import ClusterModel
import DistributedLUN
import Synchronization
import Testing
import TesseraTestKit

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

private func read(_ device: DistributedBlockDevice, _ lba: UInt64, _ blocks: UInt32) async throws -> [UInt8] {
    let buffer = IOBuffer(count: Int(blocks) * 512)
    try await device.read(lba: lba, blockCount: blocks, into: buffer, offset: 0)
    return buffer.array()
}

/// Waits (bounded) until `count` requests are parked on the manual clock.
private func parked(_ clock: ManualClock, _ count: Int) async -> Bool {
    for _ in 0..<10_000 where clock.sleeperCount < count { try? await Task.sleep(for: .milliseconds(1)) }
    return clock.sleeperCount >= count
}

/// A late-bound network, for hooks that must reach the cluster they are part of.
private final class NetworkBox: Sendable {
    let network = Mutex<InProcessNetwork?>(nil)
}

@Suite("Failover and resync on an in-process cluster")
struct FailoverTests {
    let lun = LUNID(0x7E55_E4A0)

    @Test("a primary killed between its local write and the secondary's never loses an acknowledged write", arguments: 0..<4)
    func primaryKilledMidWrite(round: Int) async throws {
        let clock = ManualClock()
        let cluster = InProcessCluster(subUnitBlocks: 256, subUnitCount: 1, placement: [[1, 2]], clock: clock)
        var acknowledged: [UInt64: [UInt8]] = [:]
        var seed = UInt32(round * 1000)
        func write(_ lba: UInt64, via node: UInt64) async throws {
            seed += 1
            let data = content(4, seed: seed)
            try await cluster.device(node).write(lba: lba, blockCount: 4, from: data, offset: 0, fua: false)
            acknowledged[lba] = data.array()
        }
        for i in 0..<(5 + round * 3) { try await write(UInt64(i % 16) * 8, via: 3) }

        // Node 1 applies the next write locally, then dies before the secondary has it:
        // its replication never arrives and it reaches neither peers nor the store.
        let doubtLBA: UInt64 = 8 * UInt64(round % 16)
        let doubt = content(4, seed: 99_999)
        cluster.network.partition(NodeID(1), NodeID(2))
        cluster.views[NodeID(1)]!.setCut(true)
        let inFlight = Task {
            try await cluster.device(3).write(lba: doubtLBA, blockCount: 4, from: doubt, offset: 0, fua: false)
        }
        #expect(await parked(clock, 2))
        clock.advance(by: .seconds(2))
        await #expect(throws: BlockDeviceError.self, "not acknowledged") { try await inFlight.value }
        let local = await cluster.replicaContents(0)[NodeID(1)]!
        #expect(Array(local[Int(doubtLBA) * 512..<Int(doubtLBA + 4) * 512]) == doubt.array(), "node 1 had written it")

        cluster.network.isolate(NodeID(1))
        cluster.nodes[NodeID(1)]!.serveOnlyWhile { false }
        let changes = await cluster.failOver(1)
        #expect(changes.map(\.set.primary) == [NodeID(2)])

        for i in 0..<6 { try await write(UInt64(i * 3 % 16) * 8 + 128, via: i % 2 == 0 ? 3 : 2) }
        for (lba, bytes) in acknowledged where lba != doubtLBA {
            #expect(try await read(cluster.device(3), lba, 4) == bytes, "LBA \(lba) through node 3")
            #expect(try await read(cluster.device(2), lba, 4) == bytes, "LBA \(lba) through node 2")
        }
        let doubtful = try await read(cluster.device(3), doubtLBA, 4)
        #expect(doubtful == doubt.array() || doubtful == (acknowledged[doubtLBA] ?? [UInt8](repeating: 0, count: 2048)))
    }

    @Test("a partitioned old primary acknowledges nothing and serves no old data after the promotion")
    func partitionedOldPrimaryIsFenced() async throws {
        let clock = ManualClock()
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 1, placement: [[1, 2]], clock: clock)
        try await cluster.device(3).write(lba: 0, blockCount: 4, from: content(4, seed: 1), offset: 0, fua: false)

        // Node 1 loses every peer; the others promote node 2 and write through it.
        cluster.network.isolate(NodeID(1))
        await cluster.failOver(1)
        let newer = content(4, seed: 2)
        try await cluster.device(3).write(lba: 0, blockCount: 4, from: newer, offset: 0, fua: false)

        // Still reaching the store, node 1 believes its old map: its write is refused by the store's epoch.
        let late = Task {
            try await cluster.device(1).write(lba: 0, blockCount: 4, from: content(4, seed: 3), offset: 0, fua: false)
        }
        #expect(await parked(clock, 1))
        clock.advance(by: .seconds(3))
        #expect(await parked(clock, 1))
        clock.advance(by: .seconds(4))
        await #expect(throws: BlockDeviceError.self) { try await late.value }

        // Woken with its lease lapsed (SIGSTOP), with the old map cached: no read of the old data.
        let sleeper = InProcessCluster(subUnitBlocks: 64, subUnitCount: 1, placement: [[1, 2]], clock: clock)
        try await sleeper.device(3).write(lba: 0, blockCount: 4, from: content(4, seed: 1), offset: 0, fua: false)
        sleeper.network.isolate(NodeID(1))
        sleeper.views[NodeID(1)]!.setCut(true)
        await sleeper.failOver(1)
        try await sleeper.device(2).write(lba: 0, blockCount: 4, from: newer, offset: 0, fua: false)
        sleeper.nodes[NodeID(1)]!.serveOnlyWhile { false }
        await #expect(throws: BlockDeviceError.self) { try await read(sleeper.device(1), 0, 4) }
        #expect(try await read(sleeper.device(3), 0, 4) == newer.array())
    }

    @Test("a member gone for good is replaced: a full copy to the third node, which can then take over")
    func goneMemberIsReplaced() async throws {
        let clock = ManualClock()
        let cluster = InProcessCluster(
            subUnitBlocks: 1024, subUnitCount: 1, placement: [[1, 2]], clock: clock, extentsEverywhere: true)
        var acknowledged: [UInt64: [UInt8]] = [:]
        func write(_ lba: UInt64, seed: UInt32) async throws {
            let data = content(8, seed: seed)
            try await cluster.device(3).write(lba: lba, blockCount: 8, from: data, offset: 0, fua: false)
            acknowledged[lba] = data.array()
        }
        for i in 0..<8 { try await write(UInt64(i) * 128, seed: UInt32(i)) }

        // Node 2 dies and is failed over; writes go on with the primary alone.
        cluster.network.isolate(NodeID(2))
        await cluster.failOver(2)
        for i in 0..<4 { try await write(UInt64(i) * 256 + 8, seed: UInt32(100 + i)) }

        // Gone for good: its replica is made again on node 3, stale, and copied in full.
        let changes = await cluster.repair(gone: [2])
        #expect(changes.map(\.set.replicas) == [[Replica(node: NodeID(1)), Replica(node: NodeID(3), state: .stale)]])
        let primary = cluster.nodes[NodeID(1)]!
        #expect(await primary.resyncReturned(lun, isLive: { $0 != NodeID(2) }) == 1)
        #expect(primary.resyncStatus.bytesCopied == 1024 * 512, "no record of what node 3 lacks: every region")
        let stored = await cluster.storedSet(0)
        #expect(stored?.replicas == [Replica(node: NodeID(1)), Replica(node: NodeID(3))])
        let contents = await cluster.replicaContents(0)
        #expect(contents[NodeID(3)] == contents[NodeID(1)], "byte-identical")

        // The new replica counts: node 1 dies too, node 3 is promoted and serves every acknowledged write.
        cluster.network.isolate(NodeID(1))
        let promoted = await cluster.failOver(1, absent: [1, 2])
        #expect(promoted.map(\.set.primary) == [NodeID(3)])
        for (lba, bytes) in acknowledged {
            #expect(try await read(cluster.device(3), lba, 8) == bytes, "LBA \(lba) through node 3")
        }
    }

    @Test("failback: the primary returns to the replica placement ranks first, with writes in flight, and nothing diverges")
    func failbackUnderWrites() async throws {
        let clock = ManualClock()
        let cluster = InProcessCluster(subUnitBlocks: 1024, subUnitCount: 1, replicas: 2, clock: clock)
        let home = cluster.initialMap.subUnits[0].primary
        let other = cluster.initialMap.subUnits[0].secondaries.first!.node
        let bystander = [NodeID(1), NodeID(2), NodeID(3)].first { $0 != home && $0 != other }!
        // The home primary fails; the other replica is promoted and takes writes.
        cluster.network.isolate(home)
        await cluster.failOver(home.rawValue)
        for i in 0..<4 {
            try await cluster.device(bystander.rawValue).write(
                lba: UInt64(i) * 64, blockCount: 8, from: content(8, seed: UInt32(i)), offset: 0, fua: false)
        }
        // It returns and is resynced; then failback hands the primary back while writes run.
        cluster.network.heal()
        for node in cluster.nodes.values { await node.reloadMaps() }
        let promoted = cluster.nodes[other]!
        #expect(await promoted.resyncReturned(lun, isLive: { _ in true }) == 1)
        #expect(await promoted.failBack(lun, isLive: { $0 != home }) == 0, "not while the home node is not live")
        var writers: [Task<Void, any Error>] = []
        for i in 0..<24 {
            let device = cluster.device(i % 2 == 0 ? bystander.rawValue : other.rawValue)
            let lba = UInt64(i % 12) * 80
            let data = content(16, seed: UInt32(100 + i))
            writers.append(Task { try await device.write(lba: lba, blockCount: 16, from: data, offset: 0, fua: false) })
        }
        #expect(await promoted.failBack(lun, isLive: { _ in true }) == 1)
        for writer in writers { try await writer.value }
        let stored = await cluster.storedSet(0)
        #expect(stored?.primary == home)
        #expect(stored?.replicas.allSatisfy { $0.state == .inSync } == true)
        let contents = await cluster.replicaContents(0)
        #expect(contents[home] == contents[other], "byte-identical after the handover")
        // Reads through every node come from the home primary now and match.
        let through = try await read(cluster.device(bystander.rawValue), 0, 1024)
        #expect(through == contents[home])
        #expect(await promoted.failBack(lun, isLive: { _ in true }) == 0)
    }

    /// A 4 MiB sub-unit (64 regions of 64 KiB) on nodes 1 and 2, whose
    /// secondary missed `writes` writes inside the first `regions` regions.
    private func staleSecondary(
        writes: Int, regions: Int, clock: ManualClock, resyncRate: UInt64? = nil,
        sleep: @escaping @Sendable (Duration) async -> Void = { _ in }
    ) async throws -> InProcessCluster {
        let cluster = InProcessCluster(
            subUnitBlocks: 8192, subUnitCount: 1, placement: [[1, 2]], clock: clock, resyncRate: resyncRate, sleep: sleep)
        try await cluster.device(3).write(lba: 0, blockCount: 8192, from: content(8192, seed: 7), offset: 0, fua: false)
        cluster.network.partition(NodeID(1), NodeID(2))
        var random = SplitMix64(state: 100)
        for i in 0..<writes {
            let blocks = UInt32.random(in: 1...16, using: &random)
            let lba = UInt64.random(in: 0...(UInt64(regions) * 128 - UInt64(blocks)), using: &random)
            let write = Task {
                try await cluster.device(1).write(
                    lba: lba, blockCount: blocks, from: content(Int(blocks), seed: UInt32(i)), offset: 0, fua: false)
            }
            if i == 0 {
                #expect(await parked(clock, 1))
                clock.advance(by: .seconds(2))
            }
            try await write.value
        }
        #expect(await cluster.storedSet(0)?.replicas.last?.state == .stale)
        cluster.network.heal()
        return cluster
    }

    @Test("a returning replica that missed 100 writes is resynced through only the dirty regions")
    func resyncCopiesOnlyDirtyRegions() async throws {
        let clock = ManualClock()
        let cluster = try await staleSecondary(writes: 100, regions: 16, clock: clock)
        let before = await cluster.replicaContents(0)
        #expect(before[NodeID(1)] != before[NodeID(2)], "the secondary missed writes")

        #expect(await cluster.nodes[NodeID(1)]!.resync(lun, index: 0, node: NodeID(2)))
        let copied = cluster.nodes[NodeID(1)]!.resyncStatus.bytesCopied
        #expect(copied > 0 && copied <= 16 * 65536, "at most the 16 written regions: \(copied) bytes, not 4 MiB")
        let after = await cluster.replicaContents(0)
        #expect(after[NodeID(1)] == after[NodeID(2)], "byte-identical")
        let stored = await cluster.storedSet(0)
        #expect(stored?.replicas == [Replica(node: NodeID(1)), Replica(node: NodeID(2))])
        #expect(stored?.epoch == Epoch(4), "stale, resyncing, in sync: one epoch each")
    }

    @Test("a resync cut off in the middle stops, marks the replica stale, and resumes where it stopped")
    func interruptedResyncResumes() async throws {
        let clock = ManualClock()
        let box = NetworkBox()
        let copies = Mutex(0)
        // The throttle's sleep: after the fifth copy (a run of up to 16
        // adjacent dirty regions each) the secondary's link goes down.
        let cluster = try await staleSecondary(
            writes: 100, regions: 64, clock: clock, resyncRate: 1,
            sleep: { _ in
                if copies.withLock({ n in
                    n += 1
                    return n
                }) == 5, let network = box.network.withLock({ $0 }) {
                    network.partition(NodeID(1), NodeID(2))
                }
            })
        box.network.withLock { $0 = cluster.network }
        let primary = cluster.nodes[NodeID(1)]!
        let first = Task { await primary.resync(lun, index: 0, node: NodeID(2)) }
        // Five copies made (the probe's flush answered long before), then the sixth parks.
        for _ in 0..<10_000 where primary.resyncStatus.bytesCopied < 5 * 65536 {
            try? await Task.sleep(for: .milliseconds(1))
        }
        #expect(await parked(clock, 1))
        clock.advance(by: .seconds(3))
        #expect(await first.value == false)
        let partly = primary.resyncStatus.bytesCopied
        #expect(partly >= 5 * 65536 && partly <= 5 * 16 * 65536 && partly % 65536 == 0, "five copies before the cut: \(partly)")
        #expect(await cluster.storedSet(0)?.replicas.last?.state == .stale)

        cluster.network.heal()
        #expect(await primary.resync(lun, index: 0, node: NodeID(2)))
        let total = primary.resyncStatus.bytesCopied
        let after = await cluster.replicaContents(0)
        #expect(after[NodeID(1)] == after[NodeID(2)], "byte-identical")
        #expect(total <= 64 * 65536 && total > partly)
        #expect(primary.resyncStatus.finished == 1)
    }

    @Test("a resyncing replica takes live writes, and one that misses them goes stale again")
    func learnerTakesLiveWrites() async throws {
        let clock = ManualClock()
        let cluster = try await staleSecondary(writes: 10, regions: 4, clock: clock)
        // Make node 2 a learner by hand, as a resync's first step does, and write through node 3.
        let set = await cluster.storedSet(0)!
        let learner = FailoverPlan.setting([NodeID(2)], to: .resyncing, in: set)!
        #expect(await cluster.store.replaceReplicaSet(lun, index: 0, expecting: set.epoch, with: learner) == .replaced)
        let live = content(8, seed: 4242)
        try await cluster.device(3).write(lba: 4000, blockCount: 8, from: live, offset: 0, fua: false)
        let contents = await cluster.replicaContents(0)
        #expect(Array(contents[NodeID(2)]![4000 * 512..<4008 * 512]) == live.array(), "the learner has the live write")
        #expect(await cluster.storedSet(0)?.replicas.last?.state == .resyncing, "and is still a learner")
    }
}

@Suite("Activity log on an in-process cluster")
struct ActivityLogResyncTests {
    let lun = LUNID(0x7E55_E4A0)

    @Test("a returning old primary is resynced through its activity log and the new primary's record, not in full")
    func returningOldPrimaryCopiesOnlyLoggedExtents() async throws {
        let clock = ManualClock()
        // A 32 MiB sub-unit: eight 4 MiB activity log extents.
        let cluster = InProcessCluster(
            subUnitBlocks: 65536, subUnitCount: 1, placement: [[1, 2]], clock: clock, activityLogs: true)
        for i in 0..<8 {
            try await cluster.device(3).write(
                lba: UInt64(i) * 16, blockCount: 8, from: content(8, seed: UInt32(i)), offset: 0, fua: false)
        }
        #expect(cluster.activityStores[NodeID(1)]?.extents == [0], "the primary logged extent 0 before writing")

        // Node 1 applies one more write locally and dies before node 2 has it.
        cluster.network.partition(NodeID(1), NodeID(2))
        cluster.views[NodeID(1)]!.setCut(true)
        let doubt = Task {
            try await cluster.device(3).write(lba: 200, blockCount: 8, from: content(8, seed: 999), offset: 0, fua: false)
        }
        #expect(await parked(clock, 2))
        clock.advance(by: .seconds(2))
        _ = try? await doubt.value
        cluster.network.isolate(NodeID(1))
        cluster.nodes[NodeID(1)]!.serveOnlyWhile { false }
        #expect(await cluster.failOver(1).map(\.set.primary) == [NodeID(2)])
        // Node 2, primary now, writes in extent 5.
        try await cluster.device(3).write(lba: 5 * 8192 + 40, blockCount: 8, from: content(8, seed: 77), offset: 0, fua: false)

        // Node 1 returns: node 2 asks for its log and copies extent 0 and the
        // region written since the promotion: 64 + 1 regions of 64 KiB, not 512.
        cluster.network.heal()
        cluster.views[NodeID(1)]!.setCut(false)
        await cluster.nodes[NodeID(1)]!.reloadMaps()
        let primary = cluster.nodes[NodeID(2)]!
        #expect(await primary.resync(lun, index: 0, node: NodeID(1)))
        #expect(primary.resyncStatus.bytesCopied == 65 * 65536, "\(primary.resyncStatus.bytesCopied) bytes")
        let contents = await cluster.replicaContents(0)
        #expect(contents[NodeID(1)] == contents[NodeID(2)], "byte-identical: the write node 1 alone had is gone")
    }

    @Test("a set of one replica logs nothing; a replica added to it is copied in full, and its writes are logged again")
    func loneReplicaLogsNothingUntilItHasCompany() async throws {
        let clock = ManualClock()
        // A 32 MiB sub-unit held by node 1 alone; node 2 has an extent for it.
        let cluster = InProcessCluster(
            subUnitBlocks: 65536, subUnitCount: 1, placement: [[1]], clock: clock, extentsEverywhere: true,
            activityLogs: true)
        let store = try #require(cluster.activityStores[NodeID(1)])
        let lone = content(8, seed: 5)
        try await cluster.device(1).write(lba: 9000, blockCount: 8, from: lone, offset: 0, fua: false)
        try await cluster.device(2).write(lba: 30000, blockCount: 8, from: content(8, seed: 6), offset: 0, fua: true)
        #expect(store.saves == 0, "no other replica could differ: no record to wait for")
        #expect(try await read(cluster.device(3), 9000, 8) == lone.array())

        // The set is topped up: node 2 joins stale, as FailoverPlan.repaired adds it.
        cluster.store.change(lun, 0) { $0.replicas.append(Replica(node: NodeID(2), state: .stale)) }
        await cluster.nodes[NodeID(1)]!.reloadMaps()
        let primary = cluster.nodes[NodeID(1)]!
        #expect(await primary.resync(lun, index: 0, node: NodeID(2)))
        #expect(primary.resyncStatus.bytesCopied == 65536 * 512, "a full copy: \(primary.resyncStatus.bytesCopied) bytes")
        var contents = await cluster.replicaContents(0)
        #expect(contents[NodeID(1)] == contents[NodeID(2)], "the writes made alone reached the new replica")

        // With a secondary in sync, a write waits for its extent in the record.
        try await cluster.device(1).write(lba: 40000, blockCount: 8, from: content(8, seed: 7), offset: 0, fua: false)
        #expect(store.saves == 1)
        #expect(store.extents == [40000 / 8192])
        contents = await cluster.replicaContents(0)
        #expect(contents[NodeID(1)] == contents[NodeID(2)])
    }

    @Test("a primary restarted before anyone failed it over marks its secondaries stale for its logged extents")
    func restartedPrimaryRecoversItsLog() async throws {
        let clock = ManualClock()
        let cluster = InProcessCluster(
            subUnitBlocks: 65536, subUnitCount: 1, placement: [[1, 2]], clock: clock, activityLogs: true)
        try await cluster.device(3).write(lba: 9000, blockCount: 8, from: content(8, seed: 1), offset: 0, fua: false)
        // Node 1 "restarts": a new replica node on the same extents and the same record.
        let store = cluster.activityStores[NodeID(1)]!
        #expect(store.extents == [1])
        let restarted = ReplicaNode(
            id: NodeID(1), transport: cluster.network.transport(from: NodeID(1)), mapSource: cluster.views[NodeID(1)]!,
            resyncRetryPause: .zero, sleep: { _ in })
        let map = await cluster.store.loadMap(lun)!
        let extents = cluster.extents[NodeID(1)]!.mapValues { $0 as any BlockDevice }
        _ = restarted.attach(map: map, extents: extents, activityLog: store)
        cluster.network.register(NodeID(1), restarted)
        let recovered = await restarted.recoverActivityLog(lun)
        #expect(recovered.marked == 1 && recovered.done)
        #expect(await cluster.storedSet(0)?.replicas.last == Replica(node: NodeID(2), state: .stale))
        #expect(await restarted.recoverActivityLog(lun).marked == 0, "once")
        #expect(await restarted.resync(lun, index: 0, node: NodeID(2)))
        #expect(restarted.resyncStatus.bytesCopied == 64 * 65536, "extent 1 only")
        #expect(await cluster.storedSet(0)?.replicas.allSatisfy { $0.state == .inSync } == true)
    }
}
