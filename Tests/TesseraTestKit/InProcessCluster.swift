import BlockStorage
import ClusterModel
import DistributedLUN
import Synchronization

/// The metadata store's sub-unit maps, in memory: what nodes reload from.
public final class InMemoryMapStore: SubUnitMapSource {
    private let maps = Mutex<[LUNID: SubUnitMap]>([:])

    public init() {}

    public func loadMap(_ lun: LUNID) async -> SubUnitMap? { maps.withLock { $0[lun] } }

    /// Stores a map.
    public func put(_ map: SubUnitMap) { maps.withLock { $0[map.lun] = map } }

    /// Changes one sub-unit's replica set as a store transaction would, and
    /// bumps its epoch. Returns the new set.
    @discardableResult
    public func change(_ lun: LUNID, _ index: UInt32, _ body: (inout ReplicaSet) -> Void = { _ in }) -> ReplicaSet? {
        maps.withLock { maps in
            guard var map = maps[lun], Int(index) < map.subUnits.count else { return nil }
            body(&map.subUnits[Int(index)])
            map.subUnits[Int(index)].epoch = map.subUnits[Int(index)].epoch.next
            maps[lun] = map
            return map.subUnits[Int(index)]
        }
    }
}

/// N nodes in one process: each a ``ReplicaNode`` with RAM extents for the
/// sub-units it holds and a ``DistributedBlockDevice`` for "host" commands
/// through it, joined by an ``InProcessNetwork`` and sharing an
/// ``InMemoryMapStore``.
public final class InProcessCluster: Sendable {
    public let network: InProcessNetwork
    public let store: InMemoryMapStore
    /// The nodes, by id (1...N).
    public let nodes: [NodeID: ReplicaNode]
    /// Each node's extents, by sub-unit index.
    public let extents: [NodeID: [UInt32: MemoryBlockDevice]]
    /// Each node's device for commands arriving through it.
    public let devices: [NodeID: DistributedBlockDevice]
    /// The map the cluster started with.
    public let initialMap: SubUnitMap

    /// A LUN of `subUnitCount` sub-units of `subUnitBlocks` blocks. With
    /// `placement` (node ids per sub-unit, primary first) the replica sets are
    /// those; otherwise rendezvous placement over the nodes decides.
    public init(
        nodeCount: Int = 3, blockSize: UInt32 = 512, subUnitBlocks: UInt64 = 64, subUnitCount: UInt32 = 6,
        replicas: Int = 2, placement: [[UInt64]]? = nil, lun: LUNID = LUNID(0x7E55_E4A0), clock: ManualClock = ManualClock(),
        replicationTimeout: Duration = .seconds(2)
    ) {
        let layout = SubUnitLayout(
            blockSize: blockSize, blockCount: subUnitBlocks * UInt64(subUnitCount), subUnitBlocks: subUnitBlocks)
        let ids = (1...UInt64(nodeCount)).map { NodeID($0) }
        var map = Placement.place(
            lun: lun, layout: layout, replicationFactor: replicas, over: ids.map { Placement.Candidate(node: $0) })
        if let placement {
            map.subUnits = placement.map { ReplicaSet(epoch: .initial, replicas: $0.map { Replica(node: NodeID($0)) }) }
        }
        let network = InProcessNetwork(clock: clock)
        let store = InMemoryMapStore()
        store.put(map)
        var nodes: [NodeID: ReplicaNode] = [:]
        var extents: [NodeID: [UInt32: MemoryBlockDevice]] = [:]
        var devices: [NodeID: DistributedBlockDevice] = [:]
        for id in ids {
            let node = ReplicaNode(
                id: id, transport: network.transport(from: id), mapSource: store, replicationTimeout: replicationTimeout)
            var mine: [UInt32: MemoryBlockDevice] = [:]
            for index in map.subUnits(heldBy: id) {
                mine[index] = MemoryBlockDevice(
                    geometry: BlockGeometry(blockSize: blockSize, blockCount: layout.blocks(in: index)))
            }
            devices[id] = node.attach(map: map, extents: mine)
            network.register(id, node)
            nodes[id] = node
            extents[id] = mine
        }
        self.network = network
        self.store = store
        self.nodes = nodes
        self.extents = extents
        self.devices = devices
        self.initialMap = map
    }

    /// The device for commands through node `id`.
    public func device(_ id: UInt64) -> DistributedBlockDevice { devices[NodeID(id)]! }

    /// The bytes of sub-unit `index` on every node holding a replica of it.
    public func replicaContents(_ index: UInt32) async -> [NodeID: [UInt8]] {
        var contents: [NodeID: [UInt8]] = [:]
        for (id, mine) in extents {
            guard let extent = mine[index] else { continue }
            let buffer = IOBuffer(count: Int(extent.geometry.byteCount))
            try? await extent.read(lba: 0, blockCount: UInt32(extent.geometry.blockCount), into: buffer, offset: 0)
            contents[id] = buffer.array()
        }
        return contents
    }
}
