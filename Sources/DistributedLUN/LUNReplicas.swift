import BlockStorage
import ClusterModel
import Synchronization

/// One LUN as one node sees it: the node's cached copy of the sub-unit map,
/// its own extents (one block device per sub-unit it holds a replica of), and
/// the primary's write ordering for each of those sub-units.
final class LUNReplicas: Sendable {
    let lun: LUNID
    let layout: SubUnitLayout
    /// This node's replicas, by sub-unit index.
    let extents: [UInt32: any BlockDevice]
    private let gates: [UInt32: OrderingGate]
    private let cached: Mutex<SubUnitMap>
    private let source: any SubUnitMapSource

    /// This node.
    let localNode: NodeID
    /// This node's activity log of the LUN, if it keeps one.
    let activity: ActivityLogWriter?

    init(
        map: SubUnitMap, extents: [UInt32: any BlockDevice], source: any SubUnitMapSource, localNode: NodeID,
        activity: ActivityLogWriter? = nil
    ) {
        self.activity = activity
        self.pendingRecovery.withLock { $0 = !(activity?.recovered ?? []).isEmpty }
        self.localNode = localNode
        self.lun = map.lun
        self.layout = map.layout
        self.extents = extents
        self.gates = extents.mapValues { _ in OrderingGate() }
        self.cached = Mutex(map)
        self.source = source
    }

    /// The cached map.
    var map: SubUnitMap { cached.withLock { $0 } }

    /// The cached replica set of sub-unit `index`, nil when there is no such sub-unit.
    func replicaSet(_ index: UInt32) -> ReplicaSet? {
        cached.withLock { map in Int(index) < map.subUnits.count ? map.subUnits[Int(index)] : nil }
    }

    /// The ordering of a sub-unit this node holds.
    func gate(_ index: UInt32) -> OrderingGate? { gates[index] }

    /// Takes a replica set this node just wrote to the store (newer epochs only).
    func adopt(_ index: UInt32, _ set: ReplicaSet) {
        // Records start before the new set takes effect: a write served under
        // it must find the record (starting one that turns out unneeded is harmless).
        if let old = replicaSet(index), set.epoch > old.epoch { trackNewlyStale(index, from: old, to: set) }
        cached.withLock { map in
            guard Int(index) < map.subUnits.count, set.epoch > map.subUnits[Int(index)].epoch else { return }
            map.subUnits[Int(index)] = set
        }
        unpinActivityIfConverged()
    }

    /// A secondary that was in sync under this node as primary and is stale
    /// now (another node failed it over) has missed only what this node
    /// writes from now on, plus what it failed to send it (marked by
    /// ``ReplicaNode/degrade(_:_:blocks:)``): start its record, so its
    /// resync copies only those regions.
    private func trackNewlyStale(_ index: UInt32, from old: ReplicaSet, to new: ReplicaSet) {
        // Promoted over the old primary, which is stale now: it lacks what
        // this node writes from now on, and may hold writes of its own that
        // never got here; its activity log names those, asked at its resync.
        if new.primary == localNode, old.primary != localNode,
            new.secondaries.contains(where: { $0.node == old.primary && $0.state == .stale })
        {
            markDirty(index, for: old.primary, 0..<0, startIfMissing: true)
            _ = needsPeerLog.withLock { $0.insert(DirtyKey(index: index, node: old.primary)) }
            return
        }
        guard old.primary == localNode, new.primary == localNode else { return }
        for replica in new.secondaries where replica.state == .stale {
            guard old.secondaries.contains(where: { $0.node == replica.node && $0.state == .inSync }) else { continue }
            markDirty(index, for: replica.node, 0..<0, startIfMissing: true)
        }
    }

    /// Blocks per dirty-bitmap region: 64 KiB, at least one block.
    var regionBlocks: UInt64 { max(1, 65536 / UInt64(layout.blockSize)) }

    /// What this node, as primary, knows a stale replica lacks: per
    /// (sub-unit, node) the regions written since that replica missed a write.
    /// In memory only; a replica without an entry gets a full copy.
    let dirty = Mutex<[DirtyKey: DirtyRegions]>([:])

    struct DirtyKey: Hashable {
        var index: UInt32
        var node: NodeID
    }

    /// Records that cover only what this node wrote since it took over from
    /// that replica as primary: its resync must add the regions the
    /// replica's own activity log names (or copy everything).
    let needsPeerLog = Mutex<Set<DirtyKey>>([])

    /// Whether the activity log recovered extents from before this start
    /// that ``ReplicaNode/recoverActivityLog(_:)`` has not acted on yet.
    let pendingRecovery = Mutex(false)

    /// Drops the activity log's recovered extents once every replica of the
    /// LUN is in sync: no replica can lack what a crash left here any more.
    func unpinActivityIfConverged() {
        guard let activity, activity.isPinned, !pendingRecovery.withLock({ $0 }) else { return }
        if map.subUnits.allSatisfy({ set in set.replicas.allSatisfy { $0.state == .inSync } }) { activity.unpin() }
    }

    /// Marks `blocks` dirty for `node`'s replica of sub-unit `index`.
    /// `startIfMissing`: begin tracking (the replica was in sync until this
    /// write); otherwise a replica without an entry stays untracked (full copy).
    func markDirty(_ index: UInt32, for node: NodeID, _ blocks: Range<UInt64>, startIfMissing: Bool) {
        let key = DirtyKey(index: index, node: node)
        let regionBlocks = regionBlocks
        let count = layout.blocks(in: index)
        dirty.withLock { dirty in
            if dirty[key] == nil {
                guard startIfMissing else { return }
                dirty[key] = DirtyRegions(blockCount: count, regionBlocks: regionBlocks)
            }
            dirty[key]!.mark(lba: blocks.lowerBound, blocks: UInt64(blocks.count))
        }
    }

    /// Reads the map from the store and keeps, sub-unit by sub-unit, the
    /// newer replica set (an epoch never goes back). Returns the result.
    @discardableResult
    func reload() async -> SubUnitMap {
        guard let loaded = await source.loadMap(lun), loaded.subUnits.count == layout.subUnitCount else { return map }
        // Records start before the newer sets take effect (as in ``adopt(_:_:)``).
        let current = map
        for i in current.subUnits.indices where loaded.subUnits[i].epoch > current.subUnits[i].epoch {
            trackNewlyStale(UInt32(i), from: current.subUnits[i], to: loaded.subUnits[i])
        }
        let result = cached.withLock { map in
            for i in map.subUnits.indices where loaded.subUnits[i].epoch > map.subUnits[i].epoch {
                map.subUnits[i] = loaded.subUnits[i]
            }
            return map
        }
        unpinActivityIfConverged()
        return result
    }
}
