import ClusterModel

// Failback: after failovers the primaries gather on the survivors. Once the
// replica that placement ranks first is in sync again, its primary hands the
// sub-unit back to it (epoch + 1), holding the whole sub-unit in its write
// ordering so that no write is in flight across the change; a write queued
// behind it finds the new epoch and is refused before it touches anything
// (the sender retries through the new primary).

extension ReplicaNode {
    /// Hands the sub-units of `lun` this node is primary of back to the
    /// replica placement ranks first, when that one is in sync on a node
    /// `isLive` says renews its lease; at most `limit` of them, so a round
    /// never bumps every epoch of a large LUN at once. Returns how many.
    @discardableResult
    public func failBack(_ lun: LUNID, isLive: @Sendable (NodeID) -> Bool, limit: Int = 16) async -> Int {
        guard let replicas = replicas(lun) else { return 0 }
        var handed = 0
        for (index, set) in replicas.map.subUnits.enumerated() where set.primary == id {
            guard handed < limit else { break }
            let subUnit = SubUnitID(lun: lun, index: UInt32(index))
            guard FailoverPlan.failedBack(set, of: subUnit, isLive: isLive) != nil,
                let gate = replicas.gate(UInt32(index))
            else { continue }
            let done: Bool = await gate.withRange(0..<replicas.layout.blocks(in: UInt32(index))) {
                guard let current = replicas.replicaSet(UInt32(index)), current.primary == id,
                    let next = FailoverPlan.failedBack(current, of: subUnit, isLive: isLive),
                    await source.replaceReplicaSet(lun, index: UInt32(index), expecting: current.epoch, with: next)
                        == .replaced
                else { return false }
                replicas.adopt(UInt32(index), next)
                return true
            }
            if done {
                handed += 1
                report(.handedBack(subUnit, to: replicas.replicaSet(UInt32(index))?.primary ?? id))
            }
        }
        return handed
    }
}

extension ReplicaNode {
    /// After a crash: where this node is still primary, the extents its
    /// activity log recovered may hold writes its secondaries never got
    /// (in flight when it died, never acknowledged). Those secondaries are
    /// marked stale with exactly those regions to copy, before anything is
    /// read from them as primary again; their resync then makes every
    /// replica equal. Returns how many sets it marked; true in `done` once
    /// nothing is left to do (false: the store could not be reached; run it
    /// again later).
    public func recoverActivityLog(_ lun: LUNID) async -> (marked: Int, done: Bool) {
        guard let replicas = replicas(lun), let activity = replicas.activity, replicas.pendingRecovery.withLock({ $0 })
        else { return (0, true) }
        await replicas.reload()
        let logged = activity.blockRanges
        var marked = 0
        var done = true
        for (index, set) in replicas.map.subUnits.enumerated() where set.primary == id {
            let index = UInt32(index)
            let first = replicas.layout.firstBlock(of: index)
            let end = first + replicas.layout.blocks(in: index)
            let local = logged.compactMap { range -> Range<UInt64>? in
                let (low, high) = (max(range.lowerBound, first), min(range.upperBound, end))
                return low < high ? low - first..<high - first : nil
            }
            let nodes = set.secondaries.filter { $0.state != .stale }.map(\.node)
            guard !local.isEmpty, !nodes.isEmpty, let extent = replicas.extents[index], let gate = replicas.gate(index)
            else { continue }
            for node in nodes {
                for range in local { replicas.markDirty(index, for: node, range, startIfMissing: true) }
            }
            let target = Accepted(index: index, replicas: replicas, set: set, extent: extent, gate: gate)
            switch await degrade(target, nodes, blocks: 0..<0) {
            case .done: marked += 1
            case .failure(let failure) where failure.code == .unavailable: done = false
            default: break
            }
        }
        if done { replicas.pendingRecovery.withLock { $0 = false } }
        return (marked, done)
    }
}
