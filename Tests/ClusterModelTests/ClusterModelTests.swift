import ClusterModel
import Testing

@Suite("Sub-unit layout")
struct SubUnitLayoutTests {
    let layout = SubUnitLayout(blockSize: 512, blockCount: 1000, subUnitBlocks: 256)

    typealias P = SubUnitLayout.Piece
    static let pieceCases: [(UInt64, UInt64, [P])] = [
        (0, 10, [P(index: 0, lba: 0, blockCount: 10, commandOffset: 0)]),
        (250, 10, [P(index: 0, lba: 250, blockCount: 6, commandOffset: 0), P(index: 1, lba: 0, blockCount: 4, commandOffset: 6)]),
        (200, 600, [
            P(index: 0, lba: 200, blockCount: 56, commandOffset: 0), P(index: 1, lba: 0, blockCount: 256, commandOffset: 56),
            P(index: 2, lba: 0, blockCount: 256, commandOffset: 312), P(index: 3, lba: 0, blockCount: 32, commandOffset: 568),
        ]),
        (768, 232, [P(index: 3, lba: 0, blockCount: 232, commandOffset: 0)]),
        (5, 0, []),
    ]

    @Test("pieces split at sub-unit boundaries, in LBA order, with command offsets", arguments: pieceCases)
    func pieces(lba: UInt64, count: UInt64, expected: [SubUnitLayout.Piece]) {
        #expect(layout.pieces(lba: lba, blockCount: count) == expected)
    }

    @Test("the last sub-unit is short; the count rounds up")
    func counts() {
        #expect(layout.subUnitCount == 4)
        #expect(layout.blocks(in: 3) == 232)
        #expect(layout.blocks(in: 4) == 0)
        #expect(layout.firstBlock(of: 2) == 512)
    }

    static let sizeCases: [(UInt64, UInt32, UInt64, Bool)] = [
        (1 << 20, 512, 1, true),
        (1 << 30, 4096, 1, true),
        ((1 << 20) - 512, 512, 1, false),
        ((1 << 20) + 512, 4096, 1, false),
        (3 << 20, 512, 3, true),
        ((1 << 20) + 512, 512, 2, false),
        ((1 << 40) + (1 << 20), 512, 1, false),
    ]

    @Test("sub-unit sizes outside 1 MiB…1 TiB or not a multiple of the atomic unit are refused", arguments: sizeCases)
    func sizeRules(bytes: UInt64, blockSize: UInt32, atomic: UInt64, valid: Bool) {
        #expect((SubUnitLayout.problem(subUnitBytes: bytes, blockSize: blockSize, atomicBlocks: atomic) == nil) == valid)
    }
}

@Suite("Weighted rendezvous placement")
struct PlacementTests {
    let three = (1...3).map { Placement.Candidate(node: NodeID(UInt64($0))) }

    @Test("deterministic, distinct replicas, primaries spread over the nodes")
    func deterministicAndSpread() {
        let layout = SubUnitLayout(blockSize: 512, blockCount: 300 * 2048, subUnitBlocks: 2048)
        let a = Placement.place(lun: LUNID(7), layout: layout, replicationFactor: 2, over: three)
        let b = Placement.place(lun: LUNID(7), layout: layout, replicationFactor: 2, over: three.reversed())
        #expect(a == b, "the candidates' order does not matter")
        #expect(a.subUnits.allSatisfy { Set($0.replicas.map(\.node)).count == 2 && $0.epoch == .initial })
        let primaries = Dictionary(grouping: a.subUnits, by: \.primary).mapValues(\.count)
        #expect(primaries.count == 3)
        #expect(primaries.values.allSatisfy { $0 > 70 && $0 < 130 }, "about 100 each: \(primaries)")
        #expect(!a.isDegraded)
        let other = Placement.place(lun: LUNID(8), layout: layout, replicationFactor: 2, over: three)
        #expect(other.subUnits.map(\.primary) != a.subUnits.map(\.primary), "LUNs are placed independently")
    }

    @Test("adding a fourth node moves only the sub-units it wins")
    func minimalMovement() {
        let subUnits = (0..<400).map { SubUnitID(lun: LUNID(99), index: UInt32($0)) }
        let four = three + [Placement.Candidate(node: NodeID(4))]
        var moved = 0
        for id in subUnits {
            let before = Placement.rank(id, over: three, replicas: 1)
            let after = Placement.rank(id, over: four, replicas: 1)
            if before != after {
                moved += 1
                #expect(after == [NodeID(4)], "a primary moves only to the new node")
            }
        }
        #expect(moved > 60 && moved < 140, "about a quarter of primaries move: \(moved)")
    }

    @Test("a heavier node wins proportionally more; a zero weight never wins")
    func weights() {
        let weighted = [Placement.Candidate(node: NodeID(1), weight: 3), .init(node: NodeID(2), weight: 1), .init(node: NodeID(3), weight: 0)]
        let wins = (0..<800).map { Placement.rank(SubUnitID(lun: LUNID(5), index: UInt32($0)), over: weighted, replicas: 1)[0] }
        let heavy = wins.filter { $0 == NodeID(1) }.count
        #expect(heavy > 520 && heavy < 680, "about three quarters: \(heavy)")
        #expect(!wins.contains(NodeID(3)))
    }

    @Test("with fewer members than replicas the map is degraded and says which sub-units")
    func degraded() {
        let layout = SubUnitLayout(blockSize: 512, blockCount: 4096, subUnitBlocks: 2048)
        let map = Placement.place(lun: LUNID(1), layout: layout, replicationFactor: 2, over: [.init(node: NodeID(1))])
        #expect(map.isDegraded)
        #expect(map.degradedSubUnits == [0, 1])
        #expect(map.nodes == [NodeID(1)])
    }
}

@Suite("Write ordering at the primary")
struct WriteOrderingTests {
    @Test("overlapping writes wait in arrival order; disjoint ones start at once")
    func transcript() {
        var ordering = WriteOrdering()
        let a = ordering.admit(blocks: 0..<10)
        let b = ordering.admit(blocks: 5..<15)
        let c = ordering.admit(blocks: 20..<30)
        let d = ordering.admit(blocks: 12..<22)
        #expect(a.start && !b.start && c.start && !d.start)
        #expect(ordering.finish(c.ticket) == [], "d still waits behind b")
        #expect(ordering.finish(a.ticket) == [b.ticket])
        #expect(ordering.finish(b.ticket) == [d.ticket])
        #expect(ordering.finish(d.ticket) == [])
        #expect(ordering.count == 0)
        #expect(ordering.finish(d.ticket) == [], "finishing twice is harmless")
    }

    @Test("a later write never overtakes an earlier overlapping one, even if it would fit after a finish")
    func noOvertaking() {
        var ordering = WriteOrdering()
        let a = ordering.admit(blocks: 0..<4)
        let b = ordering.admit(blocks: 2..<6)
        let c = ordering.admit(blocks: 4..<8)
        #expect(!b.start && !c.start)
        #expect(ordering.finish(a.ticket) == [b.ticket], "c overlaps b, which came first")
        #expect(ordering.finish(b.ticket) == [c.ticket])
    }
}
