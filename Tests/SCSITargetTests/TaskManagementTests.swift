import BlockStorage
import TesseraTestKit
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// Task management with a device that completes only when the test says so.
@Suite struct TaskManagementTests {
    static func controlled() async -> (SCSITargetDevice, ControlledBlockDevice) {
        let dev = ControlledBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 64))
        let (t, _) = await Fixture.readyTarget(device: dev)
        return (t, dev)
    }

    @Test func abortTaskWaitsForTheTaskToEnd() async {
        let (t, dev) = await Self.controlled()
        let read = Task { await t.run(CDB.read10(0, 1), tag: 7) }
        #expect(await dev.waitForPending(1))
        let abort = Task { await t.taskManagement(.abortTask(taskTag: 7), lun: 0, nexus: Fixture.nexusA) }
        try? await Task.sleep(for: .milliseconds(20))
        #expect(t.tasks.count == 1, "the task still lives while its I/O is parked")
        dev.complete()
        #expect(await abort.value == .functionComplete)
        let r = await read.value
        #expect(r.aborted && r.status == .taskAborted)
        #expect(t.tasks.count == 0)
    }

    @Test func abortUnknownTask() async {
        let (t, _) = await Self.controlled()
        #expect(await t.taskManagement(.abortTask(taskTag: 99), lun: 0, nexus: Fixture.nexusA) == .taskDoesNotExist)
    }

    @Test func abortTaskSetOnlyTouchesThisNexus() async {
        let (t, dev) = await Self.controlled()
        let a = Task { await t.run(CDB.read10(0, 1), tag: 1) }
        let b = Task { await t.run(CDB.read10(1, 1), nexus: Fixture.nexusB, tag: 1) }
        #expect(await dev.waitForPending(2))
        let tmf = Task { await t.taskManagement(.abortTaskSet, lun: 0, nexus: Fixture.nexusA) }
        dev.completeAll()
        #expect(await tmf.value == .functionComplete)
        #expect(await a.value.aborted)
        let rb = await b.value
        #expect(!rb.aborted && rb.status == .good)
    }

    @Test func clearTaskSetAbortsEveryoneAndTellsOthers() async {
        let (t, dev) = await Self.controlled()
        let a = Task { await t.run(CDB.read10(0, 1), tag: 1) }
        let b = Task { await t.run(CDB.read10(1, 1), nexus: Fixture.nexusB, tag: 1) }
        #expect(await dev.waitForPending(2))
        let tmf = Task { await t.taskManagement(.clearTaskSet, lun: 0, nexus: Fixture.nexusA) }
        try? await Task.sleep(for: .milliseconds(10))
        dev.completeAll()
        #expect(await tmf.value == .functionComplete)
        #expect(await a.value.aborted)
        #expect(await b.value.aborted)
        #expect(await t.run(CDB.testUnitReady, nexus: Fixture.nexusB).hasSense(.commandsClearedByAnotherInitiator))
        #expect(await t.run(CDB.testUnitReady).status == .good)
    }

    /// A write still waiting for its Data-Out is a task (SAM-5 §5.1): CLEAR
    /// TASK SET from another nexus aborts it without waiting for its data, its
    /// nexus is told, and when the data comes it never runs.
    @Test func clearTaskSetAbortsAWriteWaitingForItsData() async {
        let (t, dev) = await Self.controlled()
        t.arrived(nexus: Fixture.nexusA, taskTag: 7, lun: LUNAddress.encode(0))
        #expect(await t.taskManagement(.clearTaskSet, lun: 0, nexus: Fixture.nexusB) == .functionComplete)
        let write = await t.run(CDB.write10(0, 1), data: [UInt8](repeating: 1, count: 512), tag: 7)
        #expect(write.aborted)
        #expect(dev.pending.isEmpty, "the aborted write never reached the device")
        #expect(await t.run(CDB.testUnitReady).hasSense(.commandsClearedByAnotherInitiator))
        // The tag is free again, and a later arrival with it runs normally.
        t.arrived(nexus: Fixture.nexusA, taskTag: 7, lun: LUNAddress.encode(0))
        let again = Task { await t.run(CDB.write10(0, 1), data: [UInt8](repeating: 2, count: 512), tag: 7) }
        #expect(await dev.waitForPending(1))
        dev.completeAll()
        #expect(await again.value.status == .good)
    }

    @Test func logicalUnitResetAbortsInFlightWrites() async {
        let (t, dev) = await Self.controlled()
        let w = Task { await t.run(CDB.write10(0, 1), data: [UInt8](repeating: 1, count: 512), tag: 3) }
        #expect(await dev.waitForPending(1))
        let reset = Task { await t.taskManagement(.logicalUnitReset, lun: 0, nexus: Fixture.nexusB) }
        try? await Task.sleep(for: .milliseconds(10))
        dev.complete()
        #expect(await reset.value == .functionComplete)
        #expect(await w.value.aborted)
    }

    @Test func overlappedTag() async {
        let (t, dev) = await Self.controlled()
        let a = Task { await t.run(CDB.read10(0, 1), tag: 5) }
        #expect(await dev.waitForPending(1))
        #expect(await t.run(CDB.testUnitReady, tag: 5).hasSense(.overlappedCommandsAttempted))
        dev.complete()
        #expect(await a.value.status == .good)
    }

    @Test func nexusLossAbortsItsTasks() async {
        let (t, dev) = await Self.controlled()
        let a = Task { await t.run(CDB.read10(0, 1), tag: 5) }
        #expect(await dev.waitForPending(1))
        let lost = Task { await t.nexusLost(Fixture.nexusA) }
        try? await Task.sleep(for: .milliseconds(10))
        dev.complete()
        await lost.value
        #expect(await a.value.aborted)
    }

    @Test func clearACAIsRejected() async {
        let (t, _) = await Self.controlled()
        #expect(await t.taskManagement(.clearACA, lun: 0, nexus: Fixture.nexusA) == .functionRejected)
    }
}
