import ClusterModel

// Recovery of a primary's activity log after a restart (see ActivityLog).

extension ReplicaNode {
    /// After a crash: where this node is still primary, the extents its
    /// activity log recovered may hold writes its secondaries never got
    /// (in flight when it died, never acknowledged). Its in-sync
    /// secondaries are marked stale with exactly those regions to copy; the
    /// others keep what they were owed (a full copy when this node has no
    /// record of it) plus those regions. This happens before anything is
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
            // A secondary that was not in sync already lacks more than the
            // logged extents (a resync that was copying it stopped with this
            // node): its record, if this node keeps one, gets them too;
            // without one it is owed a full copy, and no record may be
            // started that says less.
            for replica in set.secondaries where replica.state != .inSync {
                for range in local { replicas.markDirty(index, for: replica.node, range, startIfMissing: false) }
                // Saved soon: the log stays pinned until every replica is in
                // sync, so a crash before the save only repeats this.
                replicas.records?.touch([LUNReplicas.DirtyKey(index: index, node: replica.node)])
            }
            let nodes = set.inSyncSecondaries
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
