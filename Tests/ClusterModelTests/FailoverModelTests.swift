import ClusterModel
import Testing

struct MemberLivenessTests {
    let start = ContinuousClock.now
    func at(_ ms: Int) -> ContinuousClock.Instant { start + .milliseconds(ms) }

    @Test func aMemberIsDeadOnlyAfterItsLeasePlusTheMarginWithoutARenewal() {
        var liveness = MemberLiveness(lease: .seconds(2), readInterval: .milliseconds(500))
        let two = NodeID(2)
        #expect(liveness.deadAfter == .milliseconds(3100))
        var ms = 0
        var beats: UInt64 = 1
        // Renewing every 500 ms: alive.
        while ms <= 3000 {
            liveness.observe([two: .init(beats: beats)], members: [two], at: at(ms))
            beats += 1
            ms += 500
        }
        #expect(liveness.verdict(of: two) == .alive)
        // One missed beat: still alive; then suspected; dead after 3.1 s of the same count.
        var verdicts: [Int: MemberLiveness.Verdict] = [:]
        let last = beats
        while ms <= 7000 {
            liveness.observe([two: .init(beats: last)], members: [two], at: at(ms))
            verdicts[ms] = liveness.verdict(of: two)
            ms += 500
        }
        #expect(verdicts[3500] == .alive)
        #expect(verdicts[4500] == .alive, "one missed beat")
        #expect(verdicts[5500] == .suspected)
        #expect(verdicts[6500] == .suspected, "3000 ms quiet")
        #expect(verdicts[7000] == .dead, "3500 ms quiet")
        #expect(liveness.absent == [two])
        // It renews again: alive.
        liveness.observe([two: .init(beats: last + 1)], members: [two], at: at(7100))
        #expect(liveness.verdict(of: two) == .alive)
    }

    @Test func anObserverThatStalledDoesNotBlameTheOthers() {
        var liveness = MemberLiveness(lease: .seconds(2), readInterval: .milliseconds(500))
        let two = NodeID(2)
        liveness.observe([two: .init(beats: 5)], members: [two], at: at(0))
        // This node was stopped for 10 s; its first read after waking sees the same count.
        liveness.observe([two: .init(beats: 5)], members: [two], at: at(10_000))
        #expect(liveness.verdict(of: two) == .alive)
        liveness.observe([two: .init(beats: 5)], members: [two], at: at(10_500))
        #expect(liveness.verdict(of: two) != .dead)
    }

    @Test func aFencedMemberIsAbsentAtOnce() {
        var liveness = MemberLiveness(lease: .seconds(2), readInterval: .milliseconds(500))
        let three = NodeID(3)
        let changes = liveness.observe([three: .init(beats: 9, fenced: true)], members: [three], at: at(0))
        #expect(changes[three] == .fenced)
        #expect(liveness.absent == [three])
    }
}

struct FailoverPlanTests {
    let one = NodeID(1)
    let two = NodeID(2)
    let three = NodeID(3)

    @Test func theFirstLiveInSyncSecondaryIsPromotedAndTheDeadPrimaryGoesStale() {
        let set = ReplicaSet(
            epoch: Epoch(4), replicas: [Replica(node: one), Replica(node: two, state: .stale), Replica(node: three)])
        let next = FailoverPlan.afterFailure(of: one, in: set, absent: [one])
        #expect(next?.epoch == Epoch(5))
        #expect(next?.replicas == [Replica(node: three), Replica(node: two, state: .stale), Replica(node: one, state: .stale)])
    }

    @Test func aStaleOrResyncingReplicaIsNeverPromoted() {
        let set = ReplicaSet(
            epoch: Epoch(4),
            replicas: [Replica(node: one), Replica(node: two, state: .stale), Replica(node: three, state: .resyncing)])
        #expect(FailoverPlan.afterFailure(of: one, in: set, absent: [one]) == nil)
        // Nor a secondary on another absent node.
        let two = ReplicaSet(epoch: Epoch(1), replicas: [Replica(node: one), Replica(node: self.two)])
        #expect(FailoverPlan.afterFailure(of: one, in: two, absent: [one, self.two]) == nil)
    }

    @Test func aDeadSecondaryIsMarkedStaleOnceAndAnUninvolvedSetIsLeftAlone() {
        let set = ReplicaSet(epoch: Epoch(2), replicas: [Replica(node: one), Replica(node: two)])
        let next = FailoverPlan.afterFailure(of: two, in: set, absent: [two])
        #expect(next == ReplicaSet(epoch: Epoch(3), replicas: [Replica(node: one), Replica(node: two, state: .stale)]))
        #expect(FailoverPlan.afterFailure(of: two, in: next!, absent: [two]) == nil)
        #expect(FailoverPlan.afterFailure(of: three, in: set, absent: [three]) == nil)
    }

    @Test func settingStatesRaisesTheEpochOnceAndNeverDemotesThePrimary() {
        let set = ReplicaSet(epoch: Epoch(7), replicas: [Replica(node: one), Replica(node: two), Replica(node: three)])
        let next = FailoverPlan.setting([two, three], to: .stale, in: set)
        #expect(next?.epoch == Epoch(8))
        #expect(next?.inSyncSecondaries == [])
        #expect(FailoverPlan.setting([one], to: .stale, in: set) == nil)
        #expect(FailoverPlan.setting([two, three], to: .stale, in: next!) == nil)
    }

    @Test func everyChangeOfAMapNamesTheEpochItExpects() {
        let layout = SubUnitLayout(blockSize: 512, blockCount: 300, subUnitBlocks: 100)
        let map = SubUnitMap(
            lun: LUNID(1), layout: layout, replicationFactor: 2,
            subUnits: [
                ReplicaSet(epoch: Epoch(1), replicas: [Replica(node: one), Replica(node: two)]),
                ReplicaSet(epoch: Epoch(3), replicas: [Replica(node: two), Replica(node: three)]),
                ReplicaSet(epoch: Epoch(5), replicas: [Replica(node: three), Replica(node: one)]),
            ])
        let changes = FailoverPlan.afterFailure(of: one, in: map, absent: [one])
        #expect(changes.map(\.index) == [0, 2])
        #expect(changes.map(\.expecting) == [Epoch(1), Epoch(5)])
        #expect(changes[0].set.primary == two)
        #expect(changes[1].set.primary == three)
    }

    @Test func failbackHandsThePrimaryToTheInSyncLiveReplicaPlacementRanksFirst() {
        let subUnit = SubUnitID(lun: LUNID(9), index: 3)
        let order = Placement.rank(subUnit, over: [one, two, three].map { Placement.Candidate(node: $0) }, replicas: 3)
        let (best, second, third) = (order[0], order[1], order[2])
        // The primary is the third-ranked node (a failover put it there).
        let set = ReplicaSet(epoch: Epoch(5), replicas: [Replica(node: third), Replica(node: second), Replica(node: best)])
        let back = FailoverPlan.failedBack(set, of: subUnit, isLive: { _ in true })
        #expect(back == ReplicaSet(epoch: Epoch(6), replicas: [Replica(node: best), Replica(node: third), Replica(node: second)]))
        // Already there: nothing to do.
        #expect(FailoverPlan.failedBack(back!, of: subUnit, isLive: { _ in true }) == nil)
        // The best one stale, or not renewing its lease: the next best.
        var stale = set
        stale.replicas[2].state = .stale
        #expect(FailoverPlan.failedBack(stale, of: subUnit, isLive: { _ in true })?.primary == second)
        #expect(FailoverPlan.failedBack(set, of: subUnit, isLive: { $0 != best })?.primary == second)
        #expect(FailoverPlan.failedBack(set, of: subUnit, isLive: { $0 == third }) == nil)
    }

    @Test func aGoneMembersReplicaMovesToTheLeastLoadedLiveMemberAsAStaleOne() {
        let four = NodeID(4)
        let set = ReplicaSet(epoch: Epoch(6), replicas: [Replica(node: two), Replica(node: one, state: .stale)])
        let next = FailoverPlan.repaired(
            set, gone: [one], candidates: [two, three, four], load: [two: 5, three: 3, four: 3], factor: 2)
        #expect(next == ReplicaSet(epoch: Epoch(7), replicas: [Replica(node: two), Replica(node: three, state: .stale)]))
        // Nothing to do: no gone replica and the set is full.
        #expect(FailoverPlan.repaired(next!, gone: [one], candidates: [two, three, four], load: [:], factor: 2) == nil)
    }

    @Test func aSetWhosePrimaryIsGoneOrWithoutACandidateIsLeftAlone() {
        let set = ReplicaSet(epoch: Epoch(2), replicas: [Replica(node: one), Replica(node: two, state: .stale)])
        #expect(FailoverPlan.repaired(set, gone: [one], candidates: [two, three], load: [:], factor: 2) == nil)
        // The only live member already holds a replica: the gone one is dropped, none added.
        let lone = ReplicaSet(epoch: Epoch(2), replicas: [Replica(node: two), Replica(node: one, state: .stale)])
        #expect(
            FailoverPlan.repaired(lone, gone: [one], candidates: [two], load: [:], factor: 2)
                == ReplicaSet(epoch: Epoch(3), replicas: [Replica(node: two)]))
    }

    @Test func aDegradedPlacementIsToppedUpAndAMapsNewReplicasAreSpread() {
        let layout = SubUnitLayout(blockSize: 512, blockCount: 400, subUnitBlocks: 100)
        let map = SubUnitMap(
            lun: LUNID(1), layout: layout, replicationFactor: 2,
            subUnits: [
                ReplicaSet(epoch: Epoch(1), replicas: [Replica(node: two), Replica(node: one, state: .stale)]),
                ReplicaSet(epoch: Epoch(1), replicas: [Replica(node: two)]),
                ReplicaSet(epoch: Epoch(1), replicas: [Replica(node: three), Replica(node: one, state: .stale)]),
                ReplicaSet(epoch: Epoch(1), replicas: [Replica(node: two), Replica(node: three)]),
            ])
        let four = NodeID(4)
        let changes = FailoverPlan.repaired(map, gone: [one], candidates: [two, three, four])
        #expect(changes.map(\.index) == [0, 1, 2])
        #expect(changes.allSatisfy { $0.expecting == Epoch(1) && $0.set.epoch == Epoch(2) })
        #expect(changes.allSatisfy { $0.set.replicas.count == 2 && !$0.set.replicas.contains { $0.node == one } })
        // Loads without node one: two 3, three 2, four 0. Four holds the fewest
        // for each of the three new replicas (0, 1, 2 against 2 and 3).
        #expect(changes.map { $0.set.replicas[1] } == Array(repeating: Replica(node: four, state: .stale), count: 3))
        #expect(changes[1].set.replicas[0].node == two)
    }
}

struct DirtyRegionsTests {
    @Test func writesMarkEveryRegionTheyTouch() {
        var regions = DirtyRegions(blockCount: 1000, regionBlocks: 128)
        #expect(regions.regionCount == 8)
        regions.mark(lba: 120, blocks: 10)  // regions 0 and 1
        regions.mark(lba: 999, blocks: 1)  // region 7 (short)
        regions.mark(lba: 130, blocks: 1)  // region 1 again
        #expect(regions.count == 3)
        #expect(regions.first() == 0)
        #expect(regions.first(from: 2) == 7)
        #expect(regions.blocks(of: 7) == (lba: 896, count: 104))
        regions.remove(0)
        #expect(regions.first() == 1)
        #expect(DirtyRegions(blockCount: 1000, regionBlocks: 128, all: true).count == 8)
    }

    @Test func manyRegionsAcrossWords() {
        var regions = DirtyRegions(blockCount: 200 * 64, regionBlocks: 64)
        for r in stride(from: 3, to: 200, by: 61) { regions.insert(r) }
        var seen: [Int] = []
        var at = 0
        while let r = regions.first(from: at) {
            seen.append(r)
            at = r + 1
        }
        #expect(seen == [3, 64, 125, 186])
    }

    @Test func aRunIsTheAdjacentSetRegionsUpToTheLimitAcrossWords() {
        var regions = DirtyRegions(blockCount: 200 * 64, regionBlocks: 64)
        for r in 60..<70 { regions.insert(r) }
        regions.insert(72)
        regions.insert(199)
        #expect(regions.run(from: 60, limit: 16) == 60..<70, "stops at the first clear region, across a word")
        #expect(regions.run(from: 60, limit: 4) == 60..<64)
        #expect(regions.run(from: 72, limit: 16) == 72..<73)
        #expect(regions.run(from: 199, limit: 16) == 199..<200, "stops at the last region")
        let (lba, _) = regions.blocks(of: 60)
        let last = regions.blocks(of: 69)
        #expect(lba == 60 * 64 && last.lba + last.count - lba == 10 * 64)
    }
}
