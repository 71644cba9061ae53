import BlockStorage
import ClusterModel
import DistributedLUN
@testable import SCSITarget
import SCSIWire
import Synchronization
import Testing
import TesseraTestKit

/// CDBs and parameter lists for the shared-context tests.
enum PR {
    static func be(_ v: UInt64, _ width: Int) -> [UInt8] { (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * (width - 1 - $0))) } }
    /// PERSISTENT RESERVE OUT (SPC-4 §6.16) with a 24-byte basic parameter list.
    static func out(_ action: UInt8, type: UInt8 = 0) -> [UInt8] { [0x5F, action, type, 0, 0, 0, 0, 0, 24, 0] }
    static func parameters(key: UInt64, serviceKey: UInt64 = 0) -> [UInt8] {
        be(key, 8) + be(serviceKey, 8) + [UInt8](repeating: 0, count: 8)
    }
    static let register: UInt8 = 0, reserve: UInt8 = 1, preempt: UInt8 = 4, preemptAndAbort: UInt8 = 5
    static let writeExclusive: UInt8 = 1
    static let readKeys: [UInt8] = [0x5E, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]
    static let testUnitReady: [UInt8] = [0, 0, 0, 0, 0, 0]
    static let reserve6: [UInt8] = [0x16, 0, 0, 0, 0, 0]
    static func write10(_ lba: UInt32) -> [UInt8] { [0x2A, 0] + be(UInt64(lba), 4) + [0, 0, 1, 0] }
    static let block = [UInt8](repeating: 0x5A, count: 512)

    /// The keys of a READ KEYS reply.
    static func keys(_ response: SCSIResponse) -> Set<UInt64> {
        guard let data = response.dataIn?.array(0..<response.dataInLength), data.count >= 8 else { return [] }
        let length = Int(data[4]) << 24 | Int(data[5]) << 16 | Int(data[6]) << 8 | Int(data[7])
        var keys: Set<UInt64> = []
        var offset = 8
        while offset + 8 <= min(data.count, 8 + length) {
            keys.insert(data[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) })
            offset += 8
        }
        return keys
    }
}

extension SCSIResponse {
    /// CHECK CONDITION with this sense key / ASC / ASCQ (fixed format).
    func has(_ key: UInt8, _ asc: UInt8, _ ascq: UInt8) -> Bool {
        status == .checkCondition && sense.count >= 14 && sense[2] & 0x0F == key && sense[12] == asc && sense[13] == ascq
    }
}

/// The LUN's SCSI context is one context on every node: changes through
/// different nodes never lose each other, a change through one node binds
/// every node before GOOD, unit attentions and aborts reach the nexuses of
/// every node, and a node without its lease changes nothing.
@Suite struct SharedContextTests {
    typealias Cluster = InProcessContextCluster
    static let (n1, n2, n3) = (NodeID(1), NodeID(2), NodeID(3))

    /// A nexus whose power-on unit attention has been taken.
    static func ready(_ c: Cluster, _ initiator: String, isid: UInt64 = 1, through node: NodeID) async -> ITNexus {
        let nexus = Cluster.nexus(initiator, isid: isid, through: node)
        _ = await c.run(node, PR.testUnitReady, from: nexus)
        return nexus
    }

    /// A (key 0xA) holds WRITE EXCLUSIVE through `aNode`; B (key 0xB) is registered through node 2.
    static func reservedByA(_ c: Cluster, through aNode: NodeID = n1) async -> (ITNexus, ITNexus) {
        let a = await ready(c, "iqn.2026-12.test:a", through: aNode)
        let b = await ready(c, "iqn.2026-12.test:b", through: n2)
        _ = await c.run(aNode, PR.out(PR.register), from: a, data: PR.parameters(key: 0, serviceKey: 0xA))
        _ = await c.run(aNode, PR.out(PR.reserve, type: PR.writeExclusive), from: a, data: PR.parameters(key: 0xA))
        _ = await c.run(n2, PR.out(PR.register), from: b, data: PR.parameters(key: 0, serviceKey: 0xB))
        return (a, b)
    }

    @Test("registrations through two nodes at once: none is lost, and the commits really conflicted")
    func concurrentRegistrationsAreAllKept() async {
        let c = Cluster()
        var nexuses: [(NodeID, ITNexus, UInt64)] = []
        for i in 0..<15 {
            nexuses.append((Self.n1, await Self.ready(c, "iqn.2026-12.test:a", isid: UInt64(i + 1), through: Self.n1), 0x100 + UInt64(i)))
            nexuses.append((Self.n2, await Self.ready(c, "iqn.2026-12.test:b", isid: UInt64(i + 1), through: Self.n2), 0x200 + UInt64(i)))
        }
        let statuses = await withTaskGroup(of: SCSIStatus.self) { group in
            for (node, nexus, key) in nexuses {
                group.addTask {
                    await c.run(node, PR.out(PR.register), from: nexus, data: PR.parameters(key: 0, serviceKey: key)).status
                }
            }
            var all: [SCSIStatus] = []
            for await status in group { all.append(status) }
            return all
        }
        #expect(statuses.allSatisfy { $0 == .good })
        let observer = await Self.ready(c, "iqn.2026-12.test:c", through: Self.n3)
        #expect(PR.keys(await c.run(Self.n3, PR.readKeys, from: observer)) == Set(nexuses.map(\.2)))
        #expect(c.stores.values.reduce(0) { $0 + $1.conflicts } > 0, "the test made commits race")
        var versions: Set<UInt64> = []
        for context in c.contexts.values { versions.insert(context.version()) }
        #expect(versions == [30], "every node serves the same version")
    }

    @Test("a preempt through node 2 binds node 1 before GOOD: no write from the preempted nexus succeeds after it")
    func preemptBindsTheOtherNodeAtOnce() async {
        let c = Cluster()
        let a = await Self.ready(c, "iqn.2026-12.test:a", through: Self.n1)
        let b = await Self.ready(c, "iqn.2026-12.test:b", through: Self.n2)
        #expect(await c.run(Self.n1, PR.out(PR.register), from: a, data: PR.parameters(key: 0, serviceKey: 0xA)).status == .good)
        #expect(await c.run(Self.n1, PR.out(PR.reserve, type: PR.writeExclusive), from: a, data: PR.parameters(key: 0xA)).status == .good)
        #expect(await c.run(Self.n2, PR.out(PR.register), from: b, data: PR.parameters(key: 0, serviceKey: 0xB)).status == .good)
        #expect(await c.run(Self.n2, PR.write10(1), from: b, data: PR.block).status == .reservationConflict)
        #expect(await c.run(Self.n1, PR.write10(1), from: a, data: PR.block).status == .good)

        let preempted = Mutex(false)
        let late = Mutex<[SCSIStatus]>([])
        let writer = Task {
            // Writes until three were issued after the preempt returned (bounded by time).
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(20) {
                let issuedAfter = preempted.withLock { $0 }
                let response = await c.run(Self.n1, PR.write10(2), from: a, data: PR.block)
                if issuedAfter { late.withLock { $0.append(response.status) } }
                if issuedAfter && late.withLock({ $0.count }) >= 3 { return }
                if !issuedAfter { try? await Task.sleep(for: .milliseconds(1)) }
            }
        }
        try? await Task.sleep(for: .milliseconds(5))
        let preempt = await c.run(Self.n2, PR.out(PR.preempt, type: PR.writeExclusive), from: b, data: PR.parameters(key: 0xB, serviceKey: 0xA))
        preempted.withLock { $0 = true }
        await writer.value
        #expect(preempt.status == .good)
        #expect(!late.withLock { $0 }.contains(.good), "a write issued after the preempt's GOOD ran: \(late.withLock { $0 })")
        // The preempted nexus on node 1 was told (SPC-4 §5.13.11.2.4), and is locked out.
        #expect(await c.run(Self.n2, PR.write10(1), from: b, data: PR.block).status == .good)
        #expect(await c.run(Self.n1, PR.write10(1), from: a, data: PR.block).status == .reservationConflict)
    }

    @Test("the preempted nexus's first command after the preempt reports REGISTRATIONS PREEMPTED")
    func preemptedNexusGetsItsUnitAttention() async {
        let c = Cluster()
        let (a, b) = await Self.reservedByA(c)
        #expect(await c.run(Self.n2, PR.out(PR.preempt, type: PR.writeExclusive), from: b, data: PR.parameters(key: 0xB, serviceKey: 0xA)).status == .good)
        #expect(await c.run(Self.n1, PR.write10(1), from: a, data: PR.block).has(6, 0x2A, 0x05))
        #expect(await c.run(Self.n1, PR.write10(1), from: a, data: PR.block).status == .reservationConflict)
    }

    @Test("PREEMPT AND ABORT through node 2 ends the preempted nexus's task on node 1 before GOOD")
    func preemptAndAbortEndsTasksOnTheOtherNode() async {
        let held = ControlledBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 2048))
        let c = Cluster(devices: [Self.n1: held])
        let (a, b) = await Self.reservedByA(c)
        let write = Task { await c.run(Self.n1, PR.write10(7), from: a, data: PR.block) }
        #expect(await held.waitForPending())
        let done = Mutex(false)
        let abort = Task {
            let response = await c.run(
                Self.n2, PR.out(PR.preemptAndAbort, type: PR.writeExclusive), from: b, data: PR.parameters(key: 0xB, serviceKey: 0xA))
            done.withLock { $0 = true }
            return response
        }
        // The change has gone to node 1 and node 1 has marked the write
        // aborted (polled with sleeps, not yields: a spinning test starves the
        // other tests' tasks); on a loaded run that can take longer than any
        // fixed pause.
        for _ in 0..<1000 where c.targets[Self.n1]!.tasks.abortedRunning == 0 {
            try? await Task.sleep(for: .milliseconds(10))
        }
        #expect(c.network.requests(from: Self.n2, to: Self.n1).contains(.contextChange))
        #expect(c.targets[Self.n1]!.tasks.abortedRunning == 1, "node 1 never started aborting the write")
        try? await Task.sleep(for: .milliseconds(50))
        #expect(!done.withLock { $0 }, "GOOD came before the aborted task on node 1 ended")
        _ = held.complete()
        #expect(await abort.value.status == .good)
        #expect(await write.value.aborted, "the preempted nexus's write was aborted")
    }

    @Test("a logical unit reset through node 2 releases node 1's SPC-2 reservation and sets 29/03 on both nodes")
    func resetReleasesSPC2EverywhereWithUnitAttentions() async {
        let c = Cluster()
        let a = await Self.ready(c, "iqn.2026-12.test:a", through: Self.n1)
        let b = await Self.ready(c, "iqn.2026-12.test:b", through: Self.n2)
        #expect(await c.run(Self.n1, PR.reserve6, from: a).status == .good)
        #expect(await c.run(Self.n2, PR.write10(1), from: b, data: PR.block).status == .reservationConflict)
        #expect(await c.run(Self.n2, PR.reserve6, from: b).status == .reservationConflict)
        #expect(await c.targets[Self.n2]!.taskManagement(.logicalUnitReset, lun: LUNAddress.encode(0), nexus: b) == .functionComplete)
        #expect(await c.run(Self.n1, PR.testUnitReady, from: a).has(6, 0x29, 0x03))
        #expect(await c.run(Self.n2, PR.testUnitReady, from: b).has(6, 0x29, 0x03))
        #expect(await c.run(Self.n2, PR.write10(1), from: b, data: PR.block).status == .good)
    }

    @Test("an SPC-2 reservation is released when its holder's nexus is lost, on every node")
    func nexusLossReleasesSPC2EverywhereButNotAnotherHolders() async {
        let c = Cluster()
        let a = await Self.ready(c, "iqn.2026-12.test:a", through: Self.n1)
        let b = await Self.ready(c, "iqn.2026-12.test:b", through: Self.n2)
        #expect(await c.run(Self.n1, PR.reserve6, from: a).status == .good)
        // The same initiator port through another node is another nexus: its loss releases nothing.
        await c.targets[Self.n2]!.nexusLost(Cluster.nexus("iqn.2026-12.test:a", through: Self.n2))
        #expect(await c.run(Self.n2, PR.write10(1), from: b, data: PR.block).status == .reservationConflict)
        await c.targets[Self.n1]!.nexusLost(a)
        #expect(await c.run(Self.n2, PR.write10(1), from: b, data: PR.block).status == .good)
    }

    @Test("MODE SELECT through node 1 gives nexuses on node 2 MODE PARAMETERS CHANGED and the new page")
    func modeSelectIsSharedWithItsUnitAttention() async {
        let c = Cluster()
        let a = await Self.ready(c, "iqn.2026-12.test:a", through: Self.n1)
        let b = await Self.ready(c, "iqn.2026-12.test:b", through: Self.n2)
        // Caching page (08h) with WCE cleared, through MODE SELECT(6), PF = 1.
        let sense: [UInt8] = [0x1A, 0x08, 0x08, 0, 0xFF, 0]
        let before = await c.run(Self.n1, sense, from: a)
        guard let page = before.dataIn?.array(0..<before.dataInLength), page.count >= 4 + 20 else {
            Issue.record("no caching page")
            return
        }
        var parameters = [UInt8](page[0..<page.count])
        parameters[0] = 0
        let descriptor = Int(parameters[3])
        parameters[4 + descriptor] &= 0x3F  // PS bit is reserved in MODE SELECT
        parameters[4 + descriptor + 2] &= ~0x04
        let select: [UInt8] = [0x15, 0x10, 0, 0, UInt8(parameters.count), 0]
        #expect(await c.run(Self.n1, select, from: a, data: parameters).status == .good)
        #expect(await c.run(Self.n2, PR.testUnitReady, from: b).has(6, 0x2A, 0x01))
        let after = await c.run(Self.n2, sense, from: b)
        #expect(after.dataIn.map { $0.array(0..<after.dataInLength)[4 + descriptor + 2] & 0x04 } == 0)
        #expect(await c.run(Self.n1, PR.testUnitReady, from: a).status == .good, "the sender gets no unit attention")
    }

    @Test("a node without its lease commits nothing and refuses I/O; the others go on")
    func leaselessNodeCommitsNothing() async {
        let c = Cluster()
        let a = await Self.ready(c, "iqn.2026-12.test:a", through: Self.n1)
        let c3 = await Self.ready(c, "iqn.2026-12.test:c", through: Self.n3)
        c.setLeaseless(Self.n3, true)
        // Its port group is unavailable (SPC-4 §5.16.2.4.5): PERSISTENT RESERVE OUT and RESERVE
        // are refused there before the context is even asked, and nothing reaches the store.
        #expect(await c.run(Self.n3, PR.out(PR.register), from: c3, data: PR.parameters(key: 0, serviceKey: 0xC)).has(2, 0x04, 0x0C))
        #expect(await c.run(Self.n3, PR.reserve6, from: c3).has(2, 0x04, 0x0C))
        #expect(try! await c.store.load().version == 0)
        // Its context refuses a change even when asked directly (retryable 02/04/0A).
        await #expect(throws: SenseData.self) {
            try await c.contexts[Self.n3]!.change(sparing: nil) { state in
                state.spc2Holder = NexusName(c3)
                return ((), [])
            }
        }
        #expect(await c.run(Self.n1, PR.out(PR.register), from: a, data: PR.parameters(key: 0, serviceKey: 0xA)).status == .good)
        #expect(PR.keys(await c.run(Self.n1, PR.readKeys, from: a)) == [0xA])
        // Its port group is unavailable: medium access gets 02/04/0C, and it comes back with the lease.
        #expect(await c.run(Self.n3, PR.write10(1), from: c3, data: PR.block).has(2, 0x04, 0x0C))
        #expect(await c.run(Self.n3, [0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0], from: c3).has(2, 0x04, 0x0C))
        #expect(await c.run(Self.n3, PR.testUnitReady, from: c3).has(2, 0x04, 0x0C), "TEST UNIT READY tells the truth")
        #expect(await c.run(Self.n1, PR.write10(1), from: a, data: PR.block).status == .good)
        c.setLeaseless(Self.n3, false)
        #expect(await c.run(Self.n3, PR.write10(1), from: c3, data: PR.block).status == .good)
    }

    @Test("a node cut off from the push: the commit waits out its lease, and a catch-up brings it the change and its unit attention")
    func cutOffNodeCatchesUp() async {
        let clock = ManualClock()
        let c = Cluster(clock: clock)
        let (a, b) = await Self.reservedByA(c, through: Self.n3)
        c.network.isolate(Self.n3)
        let done = Mutex(false)
        let preempt = Task {
            let response = await c.run(
                Self.n2, PR.out(PR.preempt, type: PR.writeExclusive), from: b, data: PR.parameters(key: 0xB, serviceKey: 0xA))
            done.withLock { $0 = true }
            return response
        }
        var waited = Duration.zero
        while !done.withLock({ $0 }) && waited < .seconds(10) {
            try? await Task.sleep(for: .milliseconds(2))
            clock.advance(by: .milliseconds(100))
            waited += .milliseconds(100)
        }
        #expect(await preempt.value.status == .good)
        #expect(waited >= c.lease, "GOOD came after the cut-off node's lease ran out, not before (\(waited))")
        #expect(c.missed == [Self.n3])
        let context = c.contexts[Self.n3]!
        #expect(context.version() == 3, "node 3 missed version 4")
        #expect(await context.catchUp(to: 4))
        #expect(context.version() == 4)
        #expect(await c.run(Self.n3, PR.write10(1), from: a, data: PR.block).has(6, 0x2A, 0x05))
        #expect(await c.run(Self.n3, PR.write10(1), from: a, data: PR.block).status == .reservationConflict)
    }
}
