import Testing

@testable import ClusterModel

/// ``MovePlan``: the steps of one move, and the moves a drain or an add plans.
@Suite struct ReplicaMoveTests {
    func set(_ epoch: UInt64, _ replicas: [(UInt64, ReplicaState)]) -> ReplicaSet {
        ReplicaSet(epoch: Epoch(rawValue: epoch), replicas: replicas.map { Replica(node: NodeID($0.0), state: $0.1) })
    }

    func map(_ sets: [[UInt64]], factor: Int = 2) -> SubUnitMap {
        SubUnitMap(
            lun: LUNID(7), layout: SubUnitLayout(blockSize: 512, blockCount: 64 * UInt64(sets.count), subUnitBlocks: 64),
            replicationFactor: factor, subUnits: sets.map { set(1, $0.map { ($0, .inSync) }) })
    }

    @Test func aMovedSecondaryIsAddedCopiedThenDropped() {
        let move = ReplicaMove(index: 0, from: NodeID(2), to: NodeID(3))
        let start = set(5, [(1, .inSync), (2, .inSync)])
        #expect(MovePlan.step(move, in: start, isLive: { $0 != NodeID(3) }) == .wait, "not onto a node that is away")
        guard case .add(let added) = MovePlan.step(move, in: start, isLive: { _ in true }) else {
            Issue.record("no add")
            return
        }
        #expect(added == set(6, [(1, .inSync), (2, .inSync), (3, .stale)]))
        #expect(MovePlan.step(move, in: added, isLive: { _ in true }) == .wait, "stale: the copy has not run")
        #expect(MovePlan.step(move, in: set(7, [(1, .inSync), (2, .inSync), (3, .resyncing)]), isLive: { _ in true }) == .wait)
        let copied = set(8, [(1, .inSync), (2, .inSync), (3, .inSync)])
        #expect(MovePlan.step(move, in: copied, isLive: { _ in true }) == .drop(set(9, [(1, .inSync), (3, .inSync)])))
        #expect(MovePlan.step(move, in: set(9, [(1, .inSync), (3, .inSync)]), isLive: { _ in true }) == .done)
    }

    @Test func aMovingPrimaryHandsOverToTheCopyBeforeItLeaves() {
        let move = ReplicaMove(index: 0, from: NodeID(1), to: NodeID(3))
        let copied = set(8, [(1, .inSync), (2, .inSync), (3, .inSync)])
        guard case .handOver(let handed) = MovePlan.step(move, in: copied, isLive: { _ in true }) else {
            Issue.record("no hand-over")
            return
        }
        #expect(handed == set(9, [(3, .inSync), (1, .inSync), (2, .inSync)]), "the moving one stays in sync until it leaves")
        #expect(MovePlan.step(move, in: handed, isLive: { _ in true }) == .drop(set(10, [(3, .inSync), (2, .inSync)])))
    }

    @Test func aMoveWhoseTargetIsGoneForGoodGoesToTheLeastLoadedOtherNode() {
        // Node 3 took the copy (stale), died, and the repair dropped it again:
        // the set is back to 1 and 2, and the move would wait for 3 forever.
        let move = ReplicaMove(index: 0, from: NodeID(2), to: NodeID(3))
        let repaired = set(7, [(1, .inSync), (2, .inSync)])
        var load: [NodeID: Int] = [NodeID(1): 5, NodeID(2): 4, NodeID(4): 3, NodeID(5): 2]
        let moved = MovePlan.retarget(move, in: repaired, candidates: [NodeID(1), NodeID(4), NodeID(5)], load: &load)
        #expect(moved == ReplicaMove(index: 0, from: NodeID(2), to: NodeID(5)))
        #expect(load[NodeID(5)] == 3 && load[NodeID(3)] == -1)
        #expect(MovePlan.step(moved!, in: repaired, isLive: { _ in true }) == .add(set(8, [(1, .inSync), (2, .inSync), (5, .stale)])))
        // No node outside the set to take it: forgotten.
        var small: [NodeID: Int] = [:]
        #expect(MovePlan.retarget(move, in: repaired, candidates: [NodeID(1), NodeID(2), NodeID(3)], load: &small) == nil)
        // The moving replica left the set another way: nothing to move.
        #expect(MovePlan.retarget(move, in: set(8, [(1, .inSync), (4, .stale)]), candidates: [NodeID(5)], load: &small) == nil)
    }

    @Test func aMoveWhoseReplicaLeftAnotherWayIsDone() {
        let move = ReplicaMove(index: 0, from: NodeID(2), to: NodeID(3))
        #expect(MovePlan.step(move, in: set(4, [(1, .inSync), (4, .stale)]), isLive: { _ in true }) == .done)
    }

    @Test func aDrainSpreadsOverTheLeastLoadedAndNeverDoublesASubUnit() {
        // Node 1 holds every sub-unit; nodes 2 and 3 one each; node 4 none.
        let m = map([[1, 2], [1, 3], [1, 2], [3, 1]])
        var load = MovePlan.load([m])
        let (moves, unplaced) = MovePlan.drain(NodeID(1), map: m, candidates: [NodeID(2), NodeID(3), NodeID(4)], load: &load)
        #expect(unplaced.isEmpty)
        #expect(moves.count == 4)
        for move in moves {
            #expect(move.from == NodeID(1))
            #expect(!m.subUnits[Int(move.index)].replicas.contains { $0.node == move.to }, "\(move)")
        }
        #expect(moves.filter { $0.to == NodeID(4) }.count == 2, "the empty node takes the most: \(moves)")
        #expect(load[NodeID(1)] == 0)
    }

    @Test func aSubUnitOnEveryOtherLiveNodeCannotBeDrained() {
        let m = map([[1, 2, 3], [1, 2]], factor: 3)
        var load = MovePlan.load([m])
        let (moves, unplaced) = MovePlan.drain(NodeID(1), map: m, candidates: [NodeID(2), NodeID(3)], load: &load)
        #expect(unplaced == [0])
        #expect(moves == [ReplicaMove(index: 1, from: NodeID(1), to: NodeID(3))])
    }

    @Test func anAddedNodeGetsItsShareFromTheBusiest() {
        // 8 sub-units, 2 replicas each, over three nodes: 16 replicas; a fourth node should end with 4.
        let m = map([[1, 2], [2, 3], [3, 1], [1, 2], [2, 3], [3, 1], [1, 2], [2, 3]])
        var load = MovePlan.load([m])
        let moves = MovePlan.fill(NodeID(4), map: m, candidates: [NodeID(1), NodeID(2), NodeID(3), NodeID(4)], load: &load)
        #expect(moves.allSatisfy { $0.to == NodeID(4) })
        #expect(Set(moves.map(\.index)).count == moves.count, "one move per sub-unit")
        let after = (1...4).map { load[NodeID(UInt64($0))] ?? 0 }
        #expect(after.max()! - after.min()! <= 1, "balanced: \(after)")
        #expect(moves.allSatisfy { m.subUnits[Int($0.index)].primary != $0.from }, "secondaries move first: \(moves)")
        // Balanced already: nothing more to move.
        var again = load
        let more = MovePlan.fill(
            NodeID(4), map: m, candidates: [NodeID(1), NodeID(2), NodeID(3), NodeID(4)], load: &again,
            planned: Set(moves.map(\.index)))
        #expect(more.isEmpty)
    }
}
