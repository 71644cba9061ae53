import BlockStorage
import ClusterModel

// What a primary does when a secondary misses a write: the secondary is
// marked stale with epoch + 1 by a conditional store write, and only then is
// the write acknowledged.

extension ReplicaNode {
    /// Marks `nodes` stale in sub-unit `target.index`'s set and remembers
    /// `blocks` for their resync; done when the store has them stale under
    /// this node as primary. A conflict re-reads the map: another write of
    /// this node may have marked them already (done), or the sub-unit has a
    /// new primary (stale epoch: the sender finds it). Without the store the
    /// write is not acknowledged (unavailable).
    func degrade(_ target: Accepted, _ nodes: [NodeID], blocks: Range<UInt64>) async -> PeerReply {
        let replicas = target.replicas
        let index = target.index
        for node in nodes {
            // Only a replica in sync under the write's set has missed just
            // these blocks; a learner already lacked more (its record says
            // what; without one, after a restart of this node, it is owed a
            // full copy, which a record of these blocks alone would hide).
            let wasInSync = target.set.replicas.first { $0.node == node }?.state == .inSync
            replicas.markDirty(index, for: node, blocks, startIfMissing: wasInSync)
        }
        // On disk before the write is acknowledged (a record lost in a crash
        // is a full copy; one saved without these blocks would be less).
        // Unsaved, the write is not acknowledged, but the replicas are still
        // marked stale: one that missed it must never count as in sync.
        let keys = nodes.map { LUNReplicas.DirtyKey(index: index, node: $0) }
        let saved = await replicas.records?.persist(keys) ?? true
        let done =
            saved ? PeerReply.done : .failure(PeerFailure(.ioError, detail: "the dirty-region record could not be written"))
        for _ in 0...Self.staleRetries {
            guard let current = replicas.replicaSet(index) else {
                return .failure(PeerFailure(.unknownSubUnit, detail: "sub-unit \(index)"))
            }
            guard current.primary == id else {
                return .failure(PeerFailure(.staleEpoch, epoch: current.epoch, detail: "\(id) is no longer primary"))
            }
            guard let next = FailoverPlan.setting(nodes, to: .stale, in: current) else { return done }
            switch await source.replaceReplicaSet(replicas.lun, index: index, expecting: current.epoch, with: next) {
            case .replaced:
                replicas.adopt(index, next)
                report(.markedStale(SubUnitID(lun: replicas.lun, index: index), nodes: nodes, epoch: next.epoch))
                return done
            case .conflict:
                await replicas.reload()
            case .unavailable:
                return .failure(
                    PeerFailure(.unavailable, detail: "a secondary missed the write and the store cannot mark it stale"))
            }
        }
        return .failure(PeerFailure(.unavailable, detail: "sub-unit \(index): the replica set keeps changing"))
    }
}
