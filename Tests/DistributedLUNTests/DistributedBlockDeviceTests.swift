import BlockStorage
import ClusterModel
import DistributedLUN
import Synchronization
import Testing
import TesseraTestKit

/// A buffer of `blocks` 512-byte blocks filled with `byte`, each block's first byte its index.
private func pattern(_ blocks: Int, _ byte: UInt8, blockSize: Int = 512) -> IOBuffer {
    let buffer = IOBuffer(count: blocks * blockSize)
    for i in 0..<buffer.count { buffer.bytes[i] = byte &+ UInt8(truncatingIfNeeded: i / blockSize) }
    return buffer
}

private func read(_ device: DistributedBlockDevice, _ lba: UInt64, _ blocks: UInt32) async throws -> [UInt8] {
    let buffer = IOBuffer(count: Int(blocks) * 512)
    try await device.read(lba: lba, blockCount: blocks, into: buffer, offset: 0)
    return buffer.array()
}

@Suite("Distributed LUN on an in-process cluster")
struct DistributedBlockDeviceTests {
    @Test("an acknowledged write is on every in-sync replica of every sub-unit it touches")
    func acknowledgedWriteOnEveryReplica() async throws {
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 6)
        let data = pattern(200, 0x30)
        try await cluster.device(1).write(lba: 10, blockCount: 200, from: data, offset: 0, fua: false)
        for index in UInt32(0)..<4 {
            let contents = await cluster.replicaContents(index)
            #expect(contents.count == 2, "sub-unit \(index) has two replicas")
            let set = Set(contents.values)
            #expect(set.count == 1, "replicas of sub-unit \(index) agree")
            let first = max(Int(index) * 64, 10)
            let last = min(Int(index) * 64 + 64, 210)
            let expected = data.array(((first - 10) * 512)..<((last - 10) * 512))
            let local = Array(set.first![((first - Int(index) * 64) * 512)..<((last - Int(index) * 64) * 512)])
            #expect(local == expected, "sub-unit \(index) holds the written blocks")
        }
        #expect(try await read(cluster.device(2), 10, 200) == data.array())
        #expect(try await read(cluster.device(3), 10, 200) == data.array())
    }

    @Test("a command spanning three sub-units on three primaries reads back whole through the other nodes")
    func splitAcrossThreePrimaries() async throws {
        let cluster = InProcessCluster(subUnitBlocks: 32, subUnitCount: 3, placement: [[1, 2], [2, 3], [3, 1]])
        let data = pattern(80, 0x41)
        try await cluster.device(1).write(lba: 8, blockCount: 80, from: data, offset: 0, fua: true)
        #expect(try await read(cluster.device(2), 8, 80) == data.array())
        #expect(try await read(cluster.device(3), 8, 80) == data.array())
        // Node 1 forwarded the pieces of sub-units 1 and 2 to their primaries.
        #expect(cluster.network.requests(from: NodeID(1), to: NodeID(2)).contains(.write))
        #expect(cluster.network.requests(from: NodeID(1), to: NodeID(3)).contains(.write))
        // Reads are served by the primaries: node 2 holds a secondary of sub-unit 0 and still asks node 1.
        #expect(cluster.network.requests(from: NodeID(2), to: NodeID(1)) == [.read])
        #expect(cluster.network.requests(from: NodeID(2), to: NodeID(3)) == [.replicate, .read])
    }

    @Test("overlapping writes through two nodes end in one order on both replicas", arguments: 0..<20)
    func overlappingWritesOneOrder(round: Int) async throws {
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 1, placement: [[3, 1]])
        cluster.network.setReordering(maximumYields: 8, seed: UInt64(round) + 1)
        let a = pattern(16, 0xA0)
        let b = pattern(16, 0xB0)
        async let first: Void = cluster.device(1).write(lba: 4, blockCount: 16, from: a, offset: 0, fua: false)
        async let second: Void = cluster.device(2).write(lba: 8, blockCount: 16, from: b, offset: 0, fua: false)
        _ = try await (first, second)
        let contents = await cluster.replicaContents(0)
        #expect(contents.count == 2)
        #expect(Set(contents.values).count == 1, "primary and secondary hold the same bytes")
        let overlap = Array(contents[NodeID(3)]![(8 * 512)..<(20 * 512)])
        let fromA = a.array((4 * 512)..<(16 * 512))
        let fromB = b.array(0..<(12 * 512))
        #expect(overlap == fromA || overlap == fromB, "the overlap is wholly one write's")
    }

    @Test("concurrent COMPARE AND WRITEs through two nodes on one block: exactly one succeeds per round")
    func compareAndWriteRaces() async throws {
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 2, placement: [[3, 1], [1, 2]])
        cluster.network.setReordering(maximumYields: 6)
        var current = pattern(1, 0x00)
        try await cluster.device(3).write(lba: 5, blockCount: 1, from: current, offset: 0, fua: false)
        for round in 1...15 {
            func request(_ byte: UInt8) -> IOBuffer {
                let buffer = IOBuffer(count: 1024)
                buffer.baseAddress.copyMemory(from: current.baseAddress, byteCount: 512)
                (buffer.baseAddress + 512).initializeMemory(as: UInt8.self, repeating: byte, count: 512)
                return buffer
            }
            let one = request(UInt8(2 * round))
            let two = request(UInt8(2 * round + 1))
            async let r1 = cluster.device(1).compareAndWrite(lba: 5, blockCount: 1, buffer: one, offset: 0, fua: false)
            async let r2 = cluster.device(2).compareAndWrite(lba: 5, blockCount: 1, buffer: two, offset: 0, fua: false)
            let outcomes = try await [r1, r2]
            let winners = outcomes.indices.filter { outcomes[$0] == .written }
            #expect(winners.count == 1, "round \(round): exactly one COMPARE AND WRITE succeeds, got \(outcomes)")
            let winner = winners.first.map { $0 == 0 ? one : two } ?? one
            current = IOBuffer(bytes: winner.array(512..<1024))
            let contents = await cluster.replicaContents(0)
            #expect(Set(contents.values).count == 1)
            #expect(Array(contents[NodeID(1)]![(5 * 512)..<(6 * 512)]) == current.array())
        }
    }

    @Test("a stale-epoch request is refused, and the sender reloads the map and retries")
    func staleEpochRefusedAndRetried() async throws {
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 1, placement: [[2, 3]])
        // The store moves sub-unit 0 to epoch 2; the primary learns it, node 1 does not.
        let changed = try #require(cluster.store.change(cluster.initialMap.lun, 0))
        #expect(changed.epoch == Epoch(2))
        await cluster.nodes[NodeID(2)]!.reloadMaps()
        // Refused, with the current epoch in the answer.
        let io = PeerIO(subUnit: SubUnitID(lun: cluster.initialMap.lun, index: 0), epoch: .initial, lba: 0, blockCount: 1)
        let refused = await cluster.network.transport(from: NodeID(1)).send(.read(io), to: NodeID(2), timeout: .seconds(2))
        guard case .failure(let failure) = refused else { Issue.record("a stale read was served: \(refused)"); return }
        #expect(failure.code == .staleEpoch)
        #expect(failure.epoch == Epoch(2))
        // Through node 1's device: refused once, reloaded, retried at epoch 2.
        let data = pattern(4, 0x77)
        try await cluster.device(1).write(lba: 0, blockCount: 4, from: data, offset: 0, fua: false)
        #expect(cluster.network.requests(from: NodeID(1), to: NodeID(2)) == [.read, .write, .write])
        #expect(cluster.device(1).map.subUnits[0].epoch == Epoch(2))
        // The secondary was at epoch 1 and caught up when the primary's newer epoch reached it.
        #expect(Set(await cluster.replicaContents(0).values).count == 1)
        #expect(try await read(cluster.device(3), 0, 4) == data.array())
    }

    @Test("a secondary cut off from its primary: the write is acknowledged only after the store marks it stale")
    func partitionedSecondaryIsMarkedStaleBeforeTheAcknowledgement() async throws {
        for storeReachable in [false, true] {
            let clock = ManualClock()
            let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 1, placement: [[1, 2]], clock: clock)
            cluster.network.partition(NodeID(1), NodeID(2))
            cluster.views[NodeID(1)]!.setCut(!storeReachable)
            let write = Task {
                try await cluster.device(3).write(lba: 0, blockCount: 2, from: pattern(2, 1), offset: 0, fua: false)
            }
            // Wait until the primary's replication and node 3's forward are both parked on the clock.
            for _ in 0..<2000 where clock.sleeperCount < 2 { await Task.yield() }
            #expect(clock.sleeperCount >= 2)
            clock.advance(by: .seconds(2))
            if storeReachable {
                try await write.value
                let stored = await cluster.storedSet(0)
                #expect(stored?.epoch == Epoch(2))
                #expect(stored?.replicas == [Replica(node: NodeID(1)), Replica(node: NodeID(2), state: .stale)])
            } else {
                clock.advance(by: .seconds(5))
                let error = await #expect(throws: BlockDeviceError.self) { try await write.value }
                #expect(error?.code == .unavailable)
                #expect(await cluster.storedSet(0) == cluster.initialMap.subUnits[0], "nothing marked, nothing acknowledged")
            }
        }
    }

    @Test("under message loss every acknowledged write is on every replica still in sync; failures are retryable")
    func lossyNetwork() async throws {
        let clock = ManualClock()
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 4, clock: clock)
        cluster.network.setLoss(rate: 0.15, seed: 42)
        var acknowledged: [(lba: UInt64, data: IOBuffer)] = []
        for i in 0..<40 {
            let lba = UInt64((i % 4) * 64 + (i / 4) * 5)
            let data = pattern(4, UInt8(i))
            let via = UInt64(i % 3 + 1)
            do {
                try await clock.driving(step: .seconds(4)) {
                    try await cluster.device(via).write(lba: lba, blockCount: 4, from: data, offset: 0, fua: false)
                }
                acknowledged.append((lba, data))
            } catch let error as BlockDeviceError {
                #expect(error.code == .unavailable)
            }
        }
        #expect(!acknowledged.isEmpty && acknowledged.count < 40, "some writes succeed, some are lost")
        cluster.network.heal()
        for (lba, data) in acknowledged {
            let index = UInt32(lba / 64)
            let contents = await cluster.replicaContents(index)
            // A replica that missed a write was marked stale before it was acknowledged.
            let inSync = Set(await cluster.storedSet(index)!.replicas.filter { $0.state == .inSync }.map(\.node))
            #expect(!inSync.isEmpty)
            for (node, bytes) in contents where inSync.contains(node) {
                let start = Int(lba % 64) * 512
                #expect(Array(bytes[start..<(start + 2048)]) == data.array(), "LBA \(lba) on \(node)")
            }
        }
    }

    @Test("SYNCHRONIZE CACHE flushes every replica of every sub-unit")
    func flushReachesEveryReplica() async throws {
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 6)
        try await cluster.device(2).flush()
        for (node, extents) in cluster.extents {
            for (index, extent) in extents {
                #expect(extent.flushCount == 1, "\(node) sub-unit \(index)")
            }
        }
    }

    @Test("UNMAP across sub-units deallocates on every replica; allocation merges runs across boundaries")
    func unmapAndAllocationAcrossSubUnits() async throws {
        let cluster = InProcessCluster(subUnitBlocks: 32, subUnitCount: 3, placement: [[1, 2], [2, 3], [3, 1]])
        try await cluster.device(1).write(lba: 0, blockCount: 96, from: pattern(96, 9), offset: 0, fua: false)
        try await cluster.device(2).unmap(lba: 24, blockCount: 48)
        let extents = try await cluster.device(3).allocation(lba: 0, blockCount: 96)
        #expect(extents == [
            BlockExtent(lba: 0, blockCount: 24, mapped: true),
            BlockExtent(lba: 24, blockCount: 48, mapped: false),
            BlockExtent(lba: 72, blockCount: 24, mapped: true),
        ])
        #expect(try await read(cluster.device(1), 30, 1) == [UInt8](repeating: 0, count: 512))
        for index in UInt32(0)..<3 { #expect(Set(await cluster.replicaContents(index).values).count == 1) }
    }

    @Test("bad peer requests get a failure reply, never a crash", arguments: [
        ("unknown LUN", PeerFailure.Code.unknownSubUnit),
        ("beyond the sub-unit", .outOfRange),
        ("short data", .badRequest),
        ("not the primary", .notReplica),
    ])
    func badRequests(name: String, expected: PeerFailure.Code) async throws {
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 1, placement: [[2, 3]])
        let lun = cluster.initialMap.lun
        var io = PeerIO(subUnit: SubUnitID(lun: lun, index: 0), epoch: .initial, lba: 0, blockCount: 4)
        var target = NodeID(2)
        var data = IOBuffer(count: 4 * 512)
        switch name {
        case "unknown LUN": io.subUnit = SubUnitID(lun: LUNID(1), index: 0)
        case "beyond the sub-unit": io.lba = 62
        case "short data": data = IOBuffer(count: 512)
        default: target = NodeID(3)
        }
        let reply = await cluster.nodes[target]!.handle(.write(PeerWrite(io: io, fua: false, data: data)), from: NodeID(1))
        guard case .failure(let failure) = reply else { Issue.record("\(name) accepted"); return }
        #expect(failure.code == expected)
    }

    @Test("a context change for a LUN a node does not serve, or one that does not decode, is refused")
    func contextChangeForAnUnknownLUNIsRefused() async throws {
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 1)
        let unknown = await cluster.nodes[NodeID(2)]!.handle(.contextChange(LUNID(5), payload: []), from: NodeID(1))
        guard case .failure(let failure) = unknown else { Issue.record("unknown LUN accepted"); return }
        #expect(failure.code == .unknownSubUnit)
        cluster.nodes[NodeID(2)]!.onContextChange(LUNID(5)) { ContextChangeCoding.decode($0) != nil }
        let garbage = await cluster.nodes[NodeID(2)]!.handle(.contextChange(LUNID(5), payload: [1, 2, 3]), from: NodeID(1))
        guard case .failure(let bad) = garbage else { Issue.record("garbage accepted"); return }
        #expect(bad.code == .badRequest)
    }
}
