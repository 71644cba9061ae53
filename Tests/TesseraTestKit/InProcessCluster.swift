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

    public func replaceReplicaSet(_ lun: LUNID, index: UInt32, expecting: Epoch, with set: ReplicaSet) async
        -> ReplicaSetUpdate
    {
        if unreachable.withLock({ $0 }) { return .unavailable }
        return maps.withLock { maps in
            guard var map = maps[lun], Int(index) < map.subUnits.count, map.subUnits[Int(index)].epoch == expecting else {
                return .conflict
            }
            map.subUnits[Int(index)] = set
            maps[lun] = map
            return .replaced
        }
    }

    private let unreachable = Mutex(false)

    /// Makes conditional writes fail as a store without quorum would (reads still answer).
    public func setUnreachable(_ value: Bool) { unreachable.withLock { $0 = value } }

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

/// One node's way to the ``InMemoryMapStore``, which a test can cut (a node
/// partitioned from the store's quorum: it reads nothing and writes nothing).
public final class NodeMapView: SubUnitMapSource {
    public let store: InMemoryMapStore
    private let cut = Mutex(false)

    public init(_ store: InMemoryMapStore) { self.store = store }

    /// Cuts (true) or restores (false) this node's way to the store.
    public func setCut(_ value: Bool) { cut.withLock { $0 = value } }

    public func loadMap(_ lun: LUNID) async -> SubUnitMap? {
        cut.withLock { $0 } ? nil : await store.loadMap(lun)
    }

    public func replaceReplicaSet(_ lun: LUNID, index: UInt32, expecting: Epoch, with set: ReplicaSet) async
        -> ReplicaSetUpdate
    {
        cut.withLock { $0 } ? .unavailable : await store.replaceReplicaSet(lun, index: index, expecting: expecting, with: set)
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
    /// Each node's way to the store.
    public let views: [NodeID: NodeMapView]
    /// Each node's activity log record (with `activityLogs`).
    public let activityStores: [NodeID: MemoryActivityLogStore]

    /// A LUN of `subUnitCount` sub-units of `subUnitBlocks` blocks. With
    /// `placement` (node ids per sub-unit, primary first) the replica sets are
    /// those; otherwise rendezvous placement over the nodes decides. With
    /// `extentsEverywhere` every node has an extent for every sub-unit, as a
    /// node's replica file laid out like the LUN gives it (a replica placed
    /// on it later needs nothing new); otherwise only for the ones it holds.
    public init(
        nodeCount: Int = 3, blockSize: UInt32 = 512, subUnitBlocks: UInt64 = 64, subUnitCount: UInt32 = 6,
        replicas: Int = 2, placement: [[UInt64]]? = nil, lun: LUNID = LUNID(0x7E55_E4A0), clock: ManualClock = ManualClock(),
        replicationTimeout: Duration = .seconds(2), failoverWait: Duration = .zero, resyncRate: UInt64? = nil,
        extentsEverywhere: Bool = false, activityLogs: Bool = false,
        sleep: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) }
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
        var views: [NodeID: NodeMapView] = [:]
        var activityStores: [NodeID: MemoryActivityLogStore] = [:]
        for id in ids {
            let view = NodeMapView(store)
            views[id] = view
            let node = ReplicaNode(
                id: id, transport: network.transport(from: id), mapSource: view, replicationTimeout: replicationTimeout,
                failoverWait: failoverWait, resyncRate: resyncRate, resyncRetryPause: .zero, sleep: sleep)
            var mine: [UInt32: MemoryBlockDevice] = [:]
            for index in extentsEverywhere ? Array(0..<UInt32(map.subUnits.count)) : map.subUnits(heldBy: id) {
                mine[index] = MemoryBlockDevice(
                    geometry: BlockGeometry(blockSize: blockSize, blockCount: layout.blocks(in: index)))
            }
            let store = activityLogs ? MemoryActivityLogStore() : nil
            activityStores[id] = store
            devices[id] = node.attach(map: map, extents: mine, activityLog: store)
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
        self.views = views
        self.activityStores = activityStores
    }

    /// Fails `dead` over as the survivors' store transaction would
    /// (FailoverPlan), with `absent` the nodes held dead, and has every other
    /// node reload its map (as their next heartbeat does). Returns the changes.
    @discardableResult
    public func failOver(_ dead: UInt64, absent: Set<UInt64>? = nil) async -> [FailoverPlan.Change] {
        guard let map = await store.loadMap(initialMap.lun) else { return [] }
        let absent = Set((absent ?? [dead]).map { NodeID($0) })
        let changes = FailoverPlan.afterFailure(of: NodeID(dead), in: map, absent: absent)
        for change in changes {
            _ = await store.replaceReplicaSet(map.lun, index: change.index, expecting: change.expecting, with: change.set)
        }
        for (id, node) in nodes where !absent.contains(id) { await node.reloadMaps() }
        return changes
    }

    /// Re-makes the replicas of the members in `gone` on the others, as a
    /// survivor's store transaction does once they count as gone for good
    /// (FailoverPlan.repaired), and has the others reload. Returns the changes.
    @discardableResult
    public func repair(gone: Set<UInt64>) async -> [FailoverPlan.Change] {
        guard let map = await store.loadMap(initialMap.lun) else { return [] }
        let gone = Set(gone.map { NodeID($0) })
        let changes = FailoverPlan.repaired(map, gone: gone, candidates: Set(nodes.keys).subtracting(gone))
        for change in changes {
            _ = await store.replaceReplicaSet(map.lun, index: change.index, expecting: change.expecting, with: change.set)
        }
        for (id, node) in nodes where !gone.contains(id) { await node.reloadMaps() }
        return changes
    }

    /// The replica set of sub-unit `index` as the store holds it.
    public func storedSet(_ index: UInt32) async -> ReplicaSet? {
        await store.loadMap(initialMap.lun)?.subUnits[Int(index)]
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
