import ClusterModel

// Replica moves (a node drained, an added node filled): the sub-unit's
// primary carries out each step of ``MovePlan`` as one conditional store
// write (epoch + 1) while it holds the whole sub-unit in its write ordering,
// as failback does, so no write is in flight across a change of set. The
// copy in between is an ordinary resync of a stale replica
// (``resyncReturned(_:isLive:)``), throttled like every other.

extension ReplicaNode {
    /// What one move came to in a round.
    public enum MoveOutcome: Hashable, Sendable {
        /// Over, or with nothing left to act on: forget it.
        case done
        /// Nothing to do now (a copy runs, a node is away, this node is not the primary).
        case waiting
        /// The new replica joined the set (stale; its full copy follows).
        case added
        /// The new replica, in sync, is the primary now.
        case handedOver
        /// The moving replica left the set.
        case dropped
    }

    /// Carries out the next step of each of `moves` (of LUN `lun`) whose
    /// sub-unit this node is primary of. A move of a sub-unit this node
    /// does not lead is `.waiting` (its primary acts on it), unless the LUN
    /// has no such sub-unit any more (`.done`).
    public func carryOut(_ moves: [ReplicaMove], of lun: LUNID, isLive: @Sendable (NodeID) -> Bool) async -> [ReplicaMove: MoveOutcome] {
        guard let replicas = replicas(lun) else { return [:] }
        var outcomes: [ReplicaMove: MoveOutcome] = [:]
        for move in moves {
            guard let set = replicas.replicaSet(move.index) else {
                outcomes[move] = .done
                continue
            }
            guard set.primary == id else {
                outcomes[move] = MovePlan.step(move, in: set, isLive: isLive) == .done ? .done : .waiting
                continue
            }
            switch MovePlan.step(move, in: set, isLive: isLive) {
            case .done: outcomes[move] = .done
            case .wait: outcomes[move] = .waiting
            case .add, .handOver, .drop:
                outcomes[move] = await step(move, of: replicas, isLive: isLive)
            }
        }
        return outcomes
    }

    /// One step of `move`, decided again on the current set while the whole
    /// sub-unit is held, and written with a compare-and-set on its epoch.
    private func step(_ move: ReplicaMove, of replicas: LUNReplicas, isLive: @Sendable (NodeID) -> Bool) async -> MoveOutcome {
        guard let gate = replicas.gate(move.index) else { return .waiting }
        return await gate.withRange(0..<replicas.layout.blocks(in: move.index)) {
            guard let current = replicas.replicaSet(move.index), current.primary == id else { return .waiting }
            let next: ReplicaSet
            let outcome: MoveOutcome
            switch MovePlan.step(move, in: current, isLive: isLive) {
            case .done: return .done
            case .wait: return .waiting
            case .add(let set): (next, outcome) = (set, .added)
            case .handOver(let set): (next, outcome) = (set, .handedOver)
            case .drop(let set): (next, outcome) = (set, .dropped)
            }
            guard await source.replaceReplicaSet(replicas.lun, index: move.index, expecting: current.epoch, with: next) == .replaced
            else {
                await replicas.reload()
                return .waiting
            }
            replicas.adopt(move.index, next)
            return outcome
        }
    }
}
