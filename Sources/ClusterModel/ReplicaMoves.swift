/// One replica to move: sub-unit `index` of a LUN leaves `from` for `to`.
/// Moves are how a node is drained and how an added node takes its share:
/// planned in one store transaction, carried out by each sub-unit's
/// primary through the resync machinery.
public struct ReplicaMove: Hashable, Sendable {
    public var index: UInt32
    public var from: NodeID
    public var to: NodeID

    public init(index: UInt32, from: NodeID, to: NodeID) {
        self.index = index
        self.from = from
        self.to = to
    }
}

/// Planning and carrying out replica moves, as pure functions of the maps
/// (ARCHITECTURE.md "Failover": every change of a set is epoch + 1, written
/// conditionally on the old epoch). A move never lowers the number of
/// in-sync replicas: the new replica is added first (stale, so the primary
/// copies it in full as it does for a returning node), the old one leaves
/// only once the new one is in sync, and a primary that is moving hands the
/// sub-unit to the new replica before it leaves.
public enum MovePlan {
    /// What the primary does next for one move.
    public enum Step: Hashable, Sendable {
        /// The move is over (or has nothing left to act on): forget it.
        case done
        /// Wait: the new replica is being copied, or its node is not live.
        case wait
        /// Write this set: the new replica joins, stale (a full copy follows).
        case add(ReplicaSet)
        /// Write this set: the new replica, in sync, becomes primary; the
        /// moving one stays an in-sync secondary until its next step.
        case handOver(ReplicaSet)
        /// Write this set: the moving replica leaves.
        case drop(ReplicaSet)
    }

    /// The next step of `move` on `set`:
    /// - `from` has left the set: done (also when a repair dropped it first);
    /// - `to` is not in the set yet: add it, when `isLive(to)`;
    /// - `to` is still being copied: wait;
    /// - `to` is in sync and `from` is the primary: hand over to `to`;
    /// - `to` is in sync: drop `from`.
    public static func step(_ move: ReplicaMove, in set: ReplicaSet, isLive: (NodeID) -> Bool) -> Step {
        guard let at = set.replicas.firstIndex(where: { $0.node == move.from }) else { return .done }
        guard let target = set.replicas.firstIndex(where: { $0.node == move.to }) else {
            guard isLive(move.to) else { return .wait }
            return .add(ReplicaSet(epoch: set.epoch.next, replicas: set.replicas + [Replica(node: move.to, state: .stale)]))
        }
        guard set.replicas[target].state == .inSync else { return .wait }
        var replicas = set.replicas
        if at == 0 {
            let heir = replicas.remove(at: target)
            replicas.insert(heir, at: 0)
            return .handOver(ReplicaSet(epoch: set.epoch.next, replicas: replicas))
        }
        replicas.remove(at: at)
        return .drop(ReplicaSet(epoch: set.epoch.next, replicas: replicas))
    }

    /// The replicas each node holds over `maps`, with `moves` counted as done
    /// (the mover's replica gone, the target's there).
    public static func load(_ maps: [SubUnitMap], moves: [ReplicaMove] = []) -> [NodeID: Int] {
        var load: [NodeID: Int] = [:]
        for map in maps {
            for set in map.subUnits {
                for replica in set.replicas { load[replica.node, default: 0] += 1 }
            }
        }
        for move in moves {
            load[move.from, default: 0] -= 1
            load[move.to, default: 0] += 1
        }
        return load
    }

    /// Where one LUN's replicas on `node` go when it is drained: each to the
    /// candidate holding the fewest replicas in `load` (updated as moves are
    /// planned; the lowest id on a tie) that holds none of that sub-unit yet.
    /// A sub-unit no candidate can take is listed in `unplaced`; sub-units
    /// already in `planned` (by index) keep their move.
    public static func drain(
        _ node: NodeID, map: SubUnitMap, candidates: Set<NodeID>, load: inout [NodeID: Int],
        planned: Set<UInt32> = []
    ) -> (moves: [ReplicaMove], unplaced: [UInt32]) {
        var moves: [ReplicaMove] = []
        var unplaced: [UInt32] = []
        for (offset, set) in map.subUnits.enumerated() where set.role(of: node) != .none {
            let index = UInt32(offset)
            guard !planned.contains(index) else { continue }
            let free = candidates.subtracting([node]).subtracting(set.replicas.map(\.node))
            guard let to = fewest(free, load) else {
                unplaced.append(index)
                continue
            }
            moves.append(ReplicaMove(index: index, from: node, to: to))
            load[node, default: 0] -= 1
            load[to, default: 0] += 1
        }
        return (moves, unplaced)
    }

    /// Moves that give `node` (a member just added) its share of `map`: while
    /// it holds fewer replicas than the busiest candidate less one, a
    /// replica of a sub-unit it does not hold moves to it from the busiest
    /// node holding one (a secondary rather than a primary, so the host's
    /// paths change less; primaries follow placement once it is in sync).
    /// `load` counts every LUN's replicas and is updated as moves are planned;
    /// sub-units in `planned` are left alone.
    public static func fill(
        _ node: NodeID, map: SubUnitMap, candidates: Set<NodeID>, load: inout [NodeID: Int],
        planned: Set<UInt32> = []
    ) -> [ReplicaMove] {
        var moves: [ReplicaMove] = []
        let donors = candidates.subtracting([node])
        for pass in 0..<2 {
            for (offset, set) in map.subUnits.enumerated() where set.role(of: node) == .none {
                let index = UInt32(offset)
                guard !planned.contains(index), !moves.contains(where: { $0.index == index }) else { continue }
                // First pass: secondaries only; second pass: primaries too.
                let holders = set.replicas.enumerated().filter { pass == 1 || $0.offset > 0 }.map(\.element.node)
                guard
                    let from = holders.filter(donors.contains).max(by: {
                        (load[$0] ?? 0, $1.rawValue) < (load[$1] ?? 0, $0.rawValue)
                    }), (load[from] ?? 0) - (load[node] ?? 0) >= 2
                else { continue }
                moves.append(ReplicaMove(index: index, from: from, to: node))
                load[from, default: 0] -= 1
                load[node, default: 0] += 1
            }
        }
        return moves.sorted { $0.index < $1.index }
    }

    /// A move whose target left for good (repaired away after
    /// `replace_after`, or removed) would wait forever: it goes to another
    /// node instead, the candidate holding the fewest replicas in `load`
    /// (the lowest id on a tie) that holds none of the sub-unit. Nil when the
    /// move is over (`from` has left the set) or no candidate can take it;
    /// the caller then forgets it. `load` is updated.
    public static func retarget(
        _ move: ReplicaMove, in set: ReplicaSet, candidates: Set<NodeID>, load: inout [NodeID: Int]
    ) -> ReplicaMove? {
        guard set.replicas.contains(where: { $0.node == move.from }) else { return nil }
        let free = candidates.subtracting([move.to]).subtracting(set.replicas.map(\.node))
        guard let to = fewest(free, load) else { return nil }
        load[move.to, default: 0] -= 1
        load[to, default: 0] += 1
        return ReplicaMove(index: move.index, from: move.from, to: to)
    }

    /// The candidate holding the fewest replicas in `load`, the lowest id on a tie.
    static func fewest(_ candidates: Set<NodeID>, _ load: [NodeID: Int]) -> NodeID? {
        candidates.min { (load[$0] ?? 0, $0.rawValue) < (load[$1] ?? 0, $1.rawValue) }
    }
}
