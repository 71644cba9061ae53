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
}
