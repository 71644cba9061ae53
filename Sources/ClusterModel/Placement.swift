/// Weighted rendezvous (highest random weight) hashing of (LUN, sub-unit)
/// over the member nodes: every node computes the same order from the same
/// inputs, and adding a node moves only the sub-units it wins (about 2/N of
/// them with two replicas). Pure and deterministic: no randomness, no clock.
public enum Placement {
    /// A member that may hold replicas, with its weight (capacity share).
    public struct Candidate: Hashable, Sendable {
        public var node: NodeID
        /// Relative weight; 0 never wins.
        public var weight: Double

        public init(node: NodeID, weight: Double = 1) {
            self.node = node
            self.weight = weight
        }
    }

    /// The nodes for one sub-unit, best first: the first is the primary, the
    /// next `replicas - 1` the secondaries. Fewer when there are fewer candidates.
    public static func rank(_ subUnit: SubUnitID, over candidates: [Candidate], replicas: Int) -> [NodeID] {
        let scored = candidates.filter { $0.weight > 0 }.map { candidate in
            (node: candidate.node, score: score(subUnit, candidate))
        }
        let ordered = scored.sorted { a, b in a.score != b.score ? a.score > b.score : a.node < b.node }
        return ordered.prefix(max(replicas, 0)).map(\.node)
    }

    /// A new LUN's map: every sub-unit placed over `candidates` at epoch 1,
    /// all replicas in sync (an empty LUN has nothing to catch up on).
    public static func place(
        lun: LUNID, layout: SubUnitLayout, replicationFactor: Int, over candidates: [Candidate]
    ) -> SubUnitMap {
        let sets = (0..<layout.subUnitCount).map { index in
            let nodes = rank(SubUnitID(lun: lun, index: index), over: candidates, replicas: replicationFactor)
            return ReplicaSet(epoch: .initial, replicas: nodes.map { Replica(node: $0) })
        }
        return SubUnitMap(lun: lun, layout: layout, replicationFactor: replicationFactor, subUnits: sets)
    }

    /// The weighted score -w / ln(u) with u in (0, 1) from a 64-bit hash of
    /// (LUN, sub-unit, node): the largest wins (Schindelhauer and Schomaker's
    /// weighted distributed hash tables).
    static func score(_ subUnit: SubUnitID, _ candidate: Candidate) -> Double {
        let h = mix(subUnit.lun.rawValue ^ mix(UInt64(subUnit.index) &+ 0x9E37_79B9_7F4A_7C15 ^ mix(candidate.node.rawValue)))
        // 53 random bits → (0, 1), never 0 or 1.
        let u = (Double(h >> 11) + 0.5) / 9_007_199_254_740_992.0
        return -candidate.weight / log(u)
    }

    /// SplitMix64's finaliser: a fast, well-mixed 64-bit hash step.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
