import BlockStorage
import ClusterModel
import Synchronization

/// One LUN as one node sees it: the node's cached copy of the sub-unit map,
/// its own extents (one block device per sub-unit it holds a replica of), and
/// the primary's write ordering for each of those sub-units.
final class LUNReplicas: Sendable {
    let lun: LUNID
    /// The LUN's shape as this node serves it (it changes with ``grow(to:extents:)`` and ``shrink(to:extents:)``).
    var layout: SubUnitLayout { cached.withLock { $0.layout } }
    /// This node's replicas, by sub-unit index.
    var extents: [UInt32: any BlockDevice] { parts.withLock { $0.extents } }
    /// Extents and their write orderings; replaced together when the LUN grows or shrinks.
    private let parts: Mutex<(extents: [UInt32: any BlockDevice], gates: [UInt32: OrderingGate])>
    private let cached: Mutex<SubUnitMap>
    private let source: any SubUnitMapSource

    /// This node.
    let localNode: NodeID
    /// This node's activity log of the LUN, if it keeps one.
    let activity: ActivityLogWriter?
    /// Where ``dirty`` is kept across crashes, if anywhere.
    let records: DirtyRecordWriter?

    init(
        map: SubUnitMap, extents: [UInt32: any BlockDevice], source: any SubUnitMapSource, localNode: NodeID,
        activity: ActivityLogWriter? = nil, records: DirtyRecordWriter? = nil
    ) {
        self.activity = activity
        self.records = records
        self.pendingRecovery.withLock { $0 = !(activity?.recovered ?? []).isEmpty }
        self.localNode = localNode
        self.lun = map.lun
        self.parts = Mutex((extents, extents.mapValues { _ in OrderingGate() }))
        self.cached = Mutex(map)
        self.source = source
        if let records { load(records) }
    }

    /// The cached map.
    var map: SubUnitMap { cached.withLock { $0 } }

    /// The cached replica set of sub-unit `index`, nil when there is no such sub-unit.
    func replicaSet(_ index: UInt32) -> ReplicaSet? {
        cached.withLock { map in Int(index) < map.subUnits.count ? map.subUnits[Int(index)] : nil }
    }

    /// The ordering of a sub-unit this node holds.
    func gate(_ index: UInt32) -> OrderingGate? { parts.withLock { $0.gates[index] } }

    /// Whether the request's sub-unit and blocks lie within the LUN as this node serves it.
    func covers(_ io: PeerIO) -> Bool {
        let layout = self.layout
        guard io.subUnit.index < layout.subUnitCount else { return false }
        let (end, overflow) = io.lba.addingReportingOverflow(UInt64(io.blockCount))
        return !overflow && end <= layout.blocks(in: io.subUnit.index)
    }

    /// The extent and write ordering of a sub-unit this node holds, in one look.
    func local(_ index: UInt32) -> (extent: any BlockDevice, gate: OrderingGate)? {
        parts.withLock { parts in
            guard let extent = parts.extents[index], let gate = parts.gates[index] else { return nil }
            return (extent, gate)
        }
    }

    /// The LUN grew: `map` is the larger map as the store holds it and
    /// `extents` this node's extents over the grown file (every index).
    /// Sub-units it had keep their write ordering (a write in flight stays
    /// ordered against the next) and the newer of the two replica sets; a
    /// last sub-unit that grew loses its dirty records, so a stale replica of
    /// it gets a full copy (never less than it lacks). A map that is not
    /// larger changes nothing. Returns whether it grew.
    @discardableResult
    func grow(to map: SubUnitMap, extents: [UInt32: any BlockDevice]) -> Bool {
        let old = self.map
        guard map.layout.blockCount > old.layout.blockCount, map.layout.blockSize == old.layout.blockSize,
            map.layout.subUnitBlocks == old.layout.subUnitBlocks, map.subUnits.count == Int(map.layout.subUnitCount)
        else { return false }
        parts.withLock { parts in
            var gates = parts.gates
            for index in extents.keys where gates[index] == nil { gates[index] = OrderingGate() }
            parts = (extents, gates)
        }
        cached.withLock { cached in
            var grown = map
            for i in cached.subUnits.indices where cached.subUnits[i].epoch > grown.subUnits[i].epoch {
                grown.subUnits[i] = cached.subUnits[i]
            }
            cached = grown
        }
        let lastOld = old.layout.subUnitCount - 1
        if old.layout.blocks(in: lastOld) != map.layout.blocks(in: lastOld) {
            let dropped = dirty.withLock { dirty in
                let keys = dirty.keys.filter { $0.index == lastOld }
                for key in keys { dirty[key] = nil }
                return keys
            }
            records?.touch(dropped)
        }
        return true
    }

    /// The LUN was shrunk (an administrator's forced resize): `map` is the
    /// smaller map as the store holds it and `extents` this node's extents
    /// over it. Sub-units past the new end are dropped with their extents,
    /// write orderings and dirty records; a last sub-unit that was cut keeps
    /// its ordering but loses its dirty records (a stale replica of it gets
    /// a full copy). Kept sub-units keep the newer of the two replica sets.
    /// Returns, once every write admitted before the cut into the blocks
    /// that are gone has finished (so the caller may cut the file), whether
    /// it shrank; a map that is not smaller changes nothing.
    @discardableResult
    func shrink(to map: SubUnitMap, extents: [UInt32: any BlockDevice]) async -> Bool {
        let old = self.map
        guard map.layout.blockCount < old.layout.blockCount, map.layout.blockCount > 0,
            map.layout.blockSize == old.layout.blockSize, map.layout.subUnitBlocks == old.layout.subUnitBlocks,
            map.subUnits.count == Int(map.layout.subUnitCount)
        else { return false }
        let count = map.layout.subUnitCount
        let last = count - 1
        let cut = map.layout.blocks(in: last) < old.layout.blocks(in: last)
        let retired: [(gate: OrderingGate, blocks: Range<UInt64>)] = parts.withLock { parts in
            var gates = parts.gates
            var retired: [(gate: OrderingGate, blocks: Range<UInt64>)] = []
            for (index, gate) in parts.gates where index >= count {
                retired.append((gate, 0..<old.layout.blocks(in: index)))
                gates[index] = nil
            }
            if cut, let gate = gates[last] {
                retired.append((gate, map.layout.blocks(in: last)..<old.layout.blocks(in: last)))
            }
            parts = (extents.filter { $0.key < count }, gates)
            return retired
        }
        cached.withLock { cached in
            var shrunk = map
            for i in shrunk.subUnits.indices where cached.subUnits[i].epoch > shrunk.subUnits[i].epoch {
                shrunk.subUnits[i] = cached.subUnits[i]
            }
            cached = shrunk
        }
        let gone: (DirtyKey) -> Bool = { $0.index >= count || (cut && $0.index == last) }
        dirty.withLock { dirty in
            for key in dirty.keys where gone(key) { dirty[key] = nil }
        }
        needsPeerLog.withLock { $0 = $0.filter { !gone($0) } }
        unpinActivityIfConverged()
        // A write admitted before the cut still holds its range: wait for it.
        for (gate, blocks) in retired where !blocks.isEmpty { await gate.withRange(blocks) {} }
        return true
    }

    /// A failure for blocks of sub-unit `index` that a shrink cut off after
    /// the request was accepted (checked again once it holds its range, so
    /// nothing is written past the end the replica file is cut to); nil
    /// while they are still served.
    func cutOff(_ index: UInt32, _ blocks: Range<UInt64>) -> PeerReply? {
        let layout = self.layout
        guard index >= layout.subUnitCount || blocks.upperBound > layout.blocks(in: index) else { return nil }
        return .failure(PeerFailure(.outOfRange, detail: "sub-unit \(index) blocks \(blocks) were cut off by a shrink"))
    }

    /// Takes a replica set this node just wrote to the store (newer epochs only).
    func adopt(_ index: UInt32, _ set: ReplicaSet) {
        // Records start before the new set takes effect: a write served under
        // it must find the record (starting one that turns out unneeded is harmless).
        if let old = replicaSet(index), set.epoch > old.epoch {
            trackNewlyStale(index, from: old, to: set)
            forgetRecords(index, under: set)
        }
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
            // The flag first: a save of the record never finds it without.
            _ = needsPeerLog.withLock { $0.insert(DirtyKey(index: index, node: old.primary)) }
            markDirty(index, for: old.primary, 0..<0, startIfMissing: true)
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
    /// Kept across crashes by ``records`` when the node has them (see
    /// ActivityLogDirtyRecords.swift); a replica without an entry gets a full copy.
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
    /// Returns whether the record changed (started, or a region turned dirty).
    @discardableResult
    func markDirty(_ index: UInt32, for node: NodeID, _ blocks: Range<UInt64>, startIfMissing: Bool) -> Bool {
        let key = DirtyKey(index: index, node: node)
        let regionBlocks = regionBlocks
        let count = layout.blocks(in: index)
        return dirty.withLock { dirty in
            var started = false
            if dirty[key] == nil {
                guard startIfMissing else { return false }
                dirty[key] = DirtyRegions(blockCount: count, regionBlocks: regionBlocks)
                started = true
            }
            let before = dirty[key]!.count
            dirty[key]!.mark(lba: blocks.lowerBound, blocks: UInt64(blocks.count))
            return started || dirty[key]!.count != before
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
            forgetRecords(UInt32(i), under: loaded.subUnits[i])
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

// The records kept across crashes (``records``).
extension LUNReplicas {
    /// Takes the records saved before this start that still describe a
    /// replica of a sub-unit this node is primary of and that is not in
    /// sync, shaped like the sub-unit; removes the others.
    fileprivate func load(_ records: DirtyRecordWriter) {
        let map = self.map
        let regionBlocks = self.regionBlocks
        var kept: [DirtyKey: DirtyRegions] = [:]
        var peer: Set<DirtyKey> = []
        for record in records.store.loadAll() {
            let index = Int(record.index)
            guard record.lun == lun, index < map.subUnits.count, map.subUnits[index].primary == localNode,
                map.subUnits[index].secondaries.contains(where: { $0.node == record.node && $0.state != .inSync }),
                record.regions.blockCount == map.layout.blocks(in: record.index),
                record.regions.regionBlocks == regionBlocks
            else {
                try? records.store.remove(index: record.index, node: record.node)
                continue
            }
            let key = DirtyKey(index: record.index, node: record.node)
            kept[key] = record.regions
            if record.needsPeerLog { peer.insert(key) }
        }
        dirty.withLock { $0 = kept }
        needsPeerLog.withLock { $0 = peer }
        records.read { [weak self] key in self?.record(key) }
    }

    /// The record of `key` as it is now, for a save.
    fileprivate func record(_ key: DirtyKey) -> DirtyRecord? {
        // The flag before the regions: it is set before a record that needs
        // it starts and cleared only after the peer's log is in the regions.
        let peer = needsPeerLog.withLock { $0.contains(key) }
        guard let regions = dirty.withLock({ $0[key] }) else { return nil }
        return DirtyRecord(lun: lun, index: key.index, node: key.node, needsPeerLog: peer, regions: regions)
    }

    /// Drops the records of sub-unit `index` that `set` makes meaningless:
    /// all of them when this node is no longer its primary (another node
    /// led it since; if this one leads it again, what a replica missed
    /// meanwhile is in no record here), and those of nodes that left it (a
    /// replica placed there again later starts from nothing).
    fileprivate func forgetRecords(_ index: UInt32, under set: ReplicaSet) {
        let keep = set.primary == localNode ? Set(set.secondaries.map(\.node)) : []
        let dropped = dirty.withLock { dirty in
            let gone = dirty.keys.filter { $0.index == index && !keep.contains($0.node) }
            for key in gone { dirty[key] = nil }
            return gone
        }
        needsPeerLog.withLock { $0 = $0.filter { $0.index != index || keep.contains($0.node) } }
        if !dropped.isEmpty { records?.touch(dropped) }
    }
}
