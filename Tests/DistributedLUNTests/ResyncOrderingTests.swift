import BlockStorage
import ClusterModel
import Synchronization
import TesseraTestKit
import Testing

@testable import DistributedLUN

/// `blocks` 512-byte blocks, each block's bytes derived from `seed` and its index.
private func content(_ blocks: Int, seed: UInt32) -> IOBuffer {
    let buffer = IOBuffer(count: blocks * 512)
    var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    for i in 0..<buffer.count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        buffer.bytes[i] = UInt8(truncatingIfNeeded: state)
    }
    return buffer
}

/// Waits (bounded) until `condition` holds.
private func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<10_000 where !condition() { try? await Task.sleep(for: .milliseconds(1)) }
    return condition()
}

@Suite("Writes that wait in the primary's ordering while a resync changes the set", .timeLimit(.minutes(1)))
struct ResyncOrderingTests {
    let lun = LUNID(0x7E55_E4A0)

    /// A write accepted under the set in which its replica is stale, held in
    /// the primary's ordering behind the resync's begin (which makes the
    /// replica a learner): it runs with the set it was accepted under, so it
    /// is not sent to the learner. It must still reach it, through the
    /// record (the copy of its region comes after it in the ordering).
    @Test("a write and an unmap that waited while their replica became a learner reach it, sent or copied")
    func writeWaitingWhileLearnerBegins() async throws {
        let clock = ManualClock()
        let cluster = InProcessCluster(subUnitBlocks: 8192, subUnitCount: 1, placement: [[1, 2]], clock: clock)
        var wrapped: HeldBlockDevice?
        let (primary, _) = await cluster.restart(
            1,
            wrap: { memory in
                let device = HeldBlockDevice(memory)
                wrapped = device
                return device
            })
        let held = try #require(wrapped)
        let gate = try #require(primary.replicas(lun)?.gate(0))
        try await cluster.device(3).write(lba: 0, blockCount: 8192, from: content(8192, seed: 7), offset: 0, fua: false)

        // Node 2 misses a write: stale, with a record of one region.
        cluster.network.partition(NodeID(1), NodeID(2))
        let missed = Task {
            try await cluster.device(3).write(lba: 100, blockCount: 8, from: content(8, seed: 8), offset: 0, fua: false)
        }
        for _ in 0..<10_000 where clock.sleeperCount < 2 { try? await Task.sleep(for: .milliseconds(1)) }
        clock.advance(by: .seconds(2))
        try await missed.value
        #expect(await cluster.storedSet(0)?.replicas.last == Replica(node: NodeID(2), state: .stale))
        cluster.network.heal()

        // A write holds blocks 4000..<4008 on the primary's device; the
        // resync's begin queues behind it, then a write and an unmap
        // accepted under the stale set queue behind the begin.
        held.holdNextWrite(overlapping: 4000..<4008)
        let first = Task {
            try await cluster.device(3).write(
                lba: 4000, blockCount: 8, from: content(8, seed: 9), offset: 0, fua: false)
        }
        #expect(await eventually { held.held == 1 })
        let resync = Task { await primary.resync(lun, index: 0, node: NodeID(2)) }
        #expect(await eventually { gate.count == 2 })
        let waiting = content(16, seed: 10)
        let second = Task {
            try await cluster.device(3).write(lba: 4004, blockCount: 16, from: waiting, offset: 0, fua: false)
        }
        #expect(await eventually { gate.count == 3 })
        let unmap = Task { try await cluster.device(3).unmap(lba: 3990, blockCount: 12) }
        #expect(await eventually { gate.count == 4 })
        #expect(await cluster.storedSet(0)?.replicas.last?.state == .stale, "nothing has run past the held write")

        held.release()
        try await first.value
        try await second.value
        try await unmap.value
        #expect(await resync.value)
        #expect(await cluster.storedSet(0)?.replicas.allSatisfy { $0.state == .inSync } == true)
        let contents = await cluster.replicaContents(0)
        let learner = try #require(contents[NodeID(2)])
        #expect(Array(learner[4004 * 512..<4020 * 512]) == waiting.array(), "the waiting write is on the learner")
        #expect(learner[3990 * 512..<4002 * 512].allSatisfy { $0 == 0 }, "so is the waiting unmap")
        #expect(differingRegions(contents[NodeID(1)], learner) == [], "byte-identical")
    }
}
