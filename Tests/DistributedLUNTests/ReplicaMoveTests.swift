import BlockStorage
import ClusterModel
import DistributedLUN
import Testing
import TesseraTestKit

/// `blocks` 512-byte blocks whose bytes derive from `seed`.
private func pattern(_ blocks: Int, seed: UInt32) -> IOBuffer {
    let buffer = IOBuffer(count: blocks * 512)
    for i in 0..<buffer.count { buffer.bytes[i] = UInt8(truncatingIfNeeded: (i &* 31) ^ Int(seed &* 2_654_435_761)) }
    return buffer
}

/// Draining a node on the in-process cluster: every step through
/// ``ReplicaNode/carryOut(_:of:isLive:)`` and the resync, with writes running.
@Suite("Replica moves on an in-process cluster")
struct ReplicaMoveTests {
    let lun = LUNID(0x7E55_E4A0)

    @Test("a drained node's replicas move away under writes: no acknowledged write lost, replicas identical")
    func drainUnderWrites() async throws {
        // Node 1 is primary of sub-unit 0 and secondary of 1; node 4 holds nothing yet.
        let cluster = InProcessCluster(
            nodeCount: 4, subUnitBlocks: 256, subUnitCount: 3, replicas: 2, placement: [[1, 2], [3, 1], [2, 3]],
            extentsEverywhere: true)
        var acknowledged: [UInt64: [UInt8]] = [:]
        for i in 0..<12 {
            let lba = UInt64(i) * 64
            let data = pattern(8, seed: UInt32(i))
            try await cluster.device(UInt64(2 + i % 3)).write(lba: lba, blockCount: 8, from: data, offset: 0, fua: false)
            acknowledged[lba] = data.array()
        }
        var load = MovePlan.load([cluster.initialMap])
        let (moves, unplaced) = MovePlan.drain(
            NodeID(1), map: cluster.initialMap, candidates: [NodeID(2), NodeID(3), NodeID(4)], load: &load)
        #expect(unplaced.isEmpty && moves.count == 2)
        #expect(moves.allSatisfy { $0.to == NodeID(4) }, "the empty node takes them: \(moves)")

        var pending = Set(moves)
        var round = 0
        var seen: Set<ReplicaNode.MoveOutcome> = []
        while !pending.isEmpty, round < 20 {
            round += 1
            // Writes through every node while the sets change under them.
            var writers: [Task<(UInt64, [UInt8]), any Error>] = []
            for w in 0..<6 {
                let lba = UInt64((round * 7 + w * 13) % 96) * 8
                let data = pattern(8, seed: UInt32(1000 + round * 10 + w))
                let device = cluster.device(UInt64(1 + w % 4))
                writers.append(
                    Task {
                        try await device.write(lba: lba, blockCount: 8, from: data, offset: 0, fua: false)
                        return (lba, data.array())
                    })
            }
            for node in cluster.nodes.values {
                await node.reloadMaps()
                for (move, outcome) in await node.carryOut(Array(pending), of: lun, isLive: { _ in true }) {
                    seen.insert(outcome)
                    if outcome == .done { pending.remove(move) }
                    if outcome == .added {
                        // Nothing more before the copy: the old replica stays until the new one is in sync.
                        let again = await node.carryOut([move], of: lun, isLive: { _ in true })
                        #expect(again[move] == .waiting, "\(move) went on before its copy: \(String(describing: again[move]))")
                    }
                }
                _ = await node.resyncReturned(lun, isLive: { _ in true })
            }
            for writer in writers {
                let (lba, bytes) = try await writer.value
                acknowledged[lba] = bytes
            }
        }
        #expect(pending.isEmpty, "moves left after \(round) rounds: \(pending)")
        #expect(seen.isSuperset(of: [.added, .handedOver, .dropped, .done]), "\(seen)")
        for index in UInt32(0)..<3 {
            let stored = await cluster.storedSet(index)
            #expect(stored?.role(of: NodeID(1)) == ReplicaSet.Role.none, "sub-unit \(index): \(String(describing: stored))")
            #expect(stored?.replicas.count == 2 && stored?.replicas.allSatisfy { $0.state == .inSync } == true)
            let contents = await cluster.replicaContents(index)
            let holders = stored?.replicas.map(\.node) ?? []
            #expect(Set(holders.compactMap { contents[$0] }).count == 1, "sub-unit \(index) replicas identical")
        }
        for (lba, bytes) in acknowledged {
            let buffer = IOBuffer(count: 8 * 512)
            try await cluster.device(4).read(lba: lba, blockCount: 8, into: buffer, offset: 0)
            #expect(buffer.array() == bytes, "LBA \(lba) through node 4")
        }
    }
}
