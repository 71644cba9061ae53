import BlockStorage
import ClusterModel
import DistributedLUN
import Synchronization
import Testing
import TesseraTestKit

/// A LUN grown online: the store's map gains sub-units, each node serves them.
@Suite("Distributed LUN grown online")
struct GrowTests {
    /// The grown map: `count` sub-units, the old ones as stored, the new ones on every node.
    private static func grown(_ map: SubUnitMap, to count: UInt32) -> SubUnitMap {
        var grown = map
        grown.layout = SubUnitLayout(
            blockSize: map.layout.blockSize, blockCount: map.layout.subUnitBlocks * UInt64(count),
            subUnitBlocks: map.layout.subUnitBlocks)
        for _ in map.subUnits.count..<Int(count) {
            grown.subUnits.append(ReplicaSet(epoch: .initial, replicas: [1, 2, 3].map { Replica(node: NodeID($0)) }))
        }
        return grown
    }

    private static func extents(_ map: SubUnitMap, old: [UInt32: MemoryBlockDevice]) -> [UInt32: any BlockDevice] {
        var extents: [UInt32: any BlockDevice] = old
        for index in UInt32(old.count)..<UInt32(map.subUnits.count) {
            extents[index] = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: map.layout.blocks(in: index)))
        }
        return extents
    }

    @Test("after a grow, writes to the new sub-units through one node read back through the others; a node that had not caught up does so on the first request")
    func grownSubUnitsServeEverywhere() async throws {
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 2, replicas: 3)
        let map = Self.grown(cluster.initialMap, to: 4)
        cluster.store.put(map)
        // Nodes 1 and 2 caught up; node 3 only when a request shows it is behind.
        for id in [UInt64(1), 2] {
            #expect(cluster.nodes[NodeID(id)]!.grow(map.lun, to: map, extents: Self.extents(map, old: cluster.extents[NodeID(id)]!)))
        }
        let caughtUp = Mutex(0)
        let node3 = cluster.nodes[NodeID(3)]!
        let old3 = cluster.extents[NodeID(3)]!
        node3.onLayoutBehind { lun in
            caughtUp.withLock { $0 += 1 }
            node3.grow(lun, to: map, extents: Self.extents(map, old: old3))
        }
        #expect(cluster.device(1).geometry.blockCount == 256)
        #expect(cluster.device(3).geometry.blockCount == 128, "node 3 serves the old size until it catches up")
        let data = IOBuffer(count: 100 * 512)
        for i in 0..<data.count { data.bytes[i] = UInt8(truncatingIfNeeded: i / 512 &+ 7) }
        // Blocks 100..<200: the end of sub-unit 1 and into sub-unit 2 and 3 (new).
        try await cluster.device(1).write(lba: 100, blockCount: 100, from: data, offset: 0, fua: false)
        #expect(caughtUp.withLock { $0 } >= 1, "node 3 caught up when asked to replicate a new sub-unit")
        #expect(cluster.device(3).geometry.blockCount == 256)
        for id in [UInt64(2), 3] {
            let back = IOBuffer(count: 100 * 512)
            try await cluster.device(id).read(lba: 100, blockCount: 100, into: back, offset: 0)
            #expect(back.array() == data.array(), "read through node \(id)")
        }
        // A map that is not larger changes nothing.
        #expect(!cluster.nodes[NodeID(1)]!.grow(map.lun, to: map, extents: [:]))
    }

    /// The map cut to `blocks` blocks: the sub-units that still hold blocks, as stored.
    private static func shrunk(_ map: SubUnitMap, to blocks: UInt64) -> SubUnitMap {
        var shrunk = map
        shrunk.layout = SubUnitLayout(
            blockSize: map.layout.blockSize, blockCount: blocks, subUnitBlocks: map.layout.subUnitBlocks)
        shrunk.subUnits = Array(map.subUnits.prefix(Int(shrunk.layout.subUnitCount)))
        return shrunk
    }

    @Test("after a forced shrink every node serves the smaller LUN: the last sub-unit cut, the ones past it gone, I/O past the end out of range")
    func shrunkLUNServesTheSmallerSize() async throws {
        let cluster = InProcessCluster(subUnitBlocks: 64, subUnitCount: 4, replicas: 3)
        let map = Self.shrunk(cluster.initialMap, to: 160)
        cluster.store.put(map)
        for id in [UInt64(1), 2, 3] {
            let extents = cluster.extents[NodeID(id)]!.filter { $0.key < 3 }.mapValues { $0 as any BlockDevice }
            #expect(await cluster.nodes[NodeID(id)]!.shrink(map.lun, to: map, extents: extents))
            #expect(cluster.device(id).geometry.blockCount == 160)
        }
        let data = IOBuffer(count: 40 * 512)
        for i in 0..<data.count { data.bytes[i] = UInt8(truncatingIfNeeded: i / 512 &+ 3) }
        // Blocks 120..<160: the end of sub-unit 1 and the cut sub-unit 2, up to the new end.
        try await cluster.device(1).write(lba: 120, blockCount: 40, from: data, offset: 0, fua: false)
        let back = IOBuffer(count: 40 * 512)
        try await cluster.device(3).read(lba: 120, blockCount: 40, into: back, offset: 0)
        #expect(back.array() == data.array())
        for (lba, count) in [(UInt64(160), UInt32(1)), (150, 20), (200, 8)] {
            do {
                try await cluster.device(2).write(lba: lba, blockCount: count, from: data, offset: 0, fua: false)
                Issue.record("a write of \(count) blocks at \(lba) past the new end was accepted")
            } catch {
                #expect(error.code == .outOfRange, "\(lba)+\(count)")
            }
        }
        // A map that is not smaller changes nothing.
        #expect(!(await cluster.nodes[NodeID(1)]!.shrink(map.lun, to: map, extents: [:])))
        #expect(!(await cluster.nodes[NodeID(1)]!.shrink(map.lun, to: cluster.initialMap, extents: [:])))
    }

    @Test(
        "a shrink waits for the writes already running into the blocks it cuts off, and a write that was waiting behind them is refused, not written past the new end",
        .timeLimit(.minutes(1)))
    func shrinkWaitsForWritesInTheCutBlocks() async throws {
        let cluster = InProcessCluster(nodeCount: 1, subUnitBlocks: 64, subUnitCount: 2, replicas: 1)
        let node = cluster.nodes[NodeID(1)]!
        let held = ControlledBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 64))
        let grown = Self.grown(cluster.initialMap, to: 4).withReplicas([1])
        var extents: [UInt32: any BlockDevice] = Self.extents(grown, old: cluster.extents[NodeID(1)]!)
        extents[3] = held
        cluster.store.put(grown)
        #expect(node.grow(grown.lun, to: grown, extents: extents))
        let device = cluster.device(1)
        let data = IOBuffer(bytes: [UInt8](repeating: 0x5A, count: 512))
        let first = Task { () -> BlockDeviceError? in
            do throws(BlockDeviceError) {
                try await device.write(lba: 200, blockCount: 1, from: data, offset: 0, fua: false)
            } catch { return error }
            return nil
        }
        #expect(await held.waitForPending(1))
        let second = Task { () -> BlockDeviceError? in
            do throws(BlockDeviceError) {
                try await device.write(lba: 200, blockCount: 1, from: data, offset: 0, fua: false)
            } catch { return error }
            return nil
        }
        try await Task.sleep(for: .milliseconds(50))
        let shrunkMap = Self.shrunk(grown, to: 128)
        cluster.store.put(shrunkMap)
        let done = Mutex(false)
        let shrink = Task {
            let result = await node.shrink(shrunkMap.lun, to: shrunkMap, extents: extents.filter { $0.key < 2 })
            done.withLock { $0 = true }
            return result
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(!done.withLock { $0 }, "the shrink waits for the write running in the blocks it cuts off")
        #expect(device.geometry.blockCount == 128, "while nothing new is served past the new end")
        _ = held.complete()
        #expect(await first.value == nil, "the write that was running completes")
        #expect(await shrink.value)
        try await Task.sleep(for: .milliseconds(50))
        #expect(held.pending.isEmpty, "the write waiting behind it never reaches the extent")
        held.completeAll()
        #expect(await second.value?.code == .outOfRange, "and is refused")
    }
}

extension SubUnitMap {
    /// The map with every sub-unit on `nodes` (primary first).
    fileprivate func withReplicas(_ nodes: [UInt64]) -> SubUnitMap {
        var map = self
        map.subUnits = map.subUnits.map { ReplicaSet(epoch: $0.epoch, replicas: nodes.map { Replica(node: NodeID($0)) }) }
        return map
    }
}
