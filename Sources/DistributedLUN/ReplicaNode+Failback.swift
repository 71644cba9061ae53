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
