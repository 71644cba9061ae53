import Synchronization
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// A change's aborts are handed the task that made it, which the device
/// spares: a command whose change matched its own task would otherwise wait
/// for itself.
@Suite struct ContextChangeAbortTests {
    @Test func theAborterIsToldWhichTaskMadeTheChange() async throws {
        let context = SharedLogicalUnitContext()
        let told = Mutex<[TaskKey?]>([])
        context.setTaskAborter { effect, sparing, wait in
            #expect(wait, "a change made here waits for its aborts")
            if case .abortAll = effect { told.withLock { $0.append(sparing) } }
        }
        let command = TaskKey(nexus: Fixture.nexusA, taskTag: 7)
        try await context.change(sparing: command) { _ in ((), [.abortAll(clearedBy: nil)]) }
        try await context.change(sparing: nil) { _ in ((), [.abortAll(clearedBy: nil)]) }
        #expect(told.withLock { $0 } == [command, nil])
    }

    @Test func aChangeReceivedFromAnotherNodeSparesNothing() async throws {
        let context = SharedLogicalUnitContext()
        #expect(await context.ready())
        let told = Mutex<[TaskKey?]>([TaskKey(nexus: Fixture.nexusB, taskTag: 1)])
        context.setTaskAborter { _, sparing, _ in told.withLock { $0 = [sparing] } }
        await context.receive(
            ContextChange(version: context.version() + 1, state: context.shared(), effects: [.abortAll(clearedBy: nil)]))
        #expect(told.withLock { $0 } == [nil])
        #expect(context.version() == 1)
    }
}
