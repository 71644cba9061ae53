import BlockStorage
import TesseraMetrics
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// What each command adds to its unit's ``LUNStatistics``.
@Suite struct LUNStatisticsTests {
    /// The counters after `readyTarget`'s two TEST UNIT READYs (each a CHECK
    /// CONDITION: the power-on unit attention) are the baseline.
    private static func statistics(_ target: SCSITargetDevice) -> LUNStatisticsSnapshot {
        target.logicalUnits[0]!.statistics.snapshot()
    }

    @Test func readsAndWritesAreCountedWithBytesAndLatency() async {
        let (t, _) = await Fixture.readyTarget()
        let before = Self.statistics(t)
        #expect(before[.other] == 2 && before.checkConditions == 2 && before[.read] == 0)
        #expect(before.readLatency.count == 0)
        let data = [UInt8](repeating: 0x5A, count: 4 * 512)
        #expect(await t.run(CDB.write10(8, 4), data: data).status == .good)
        #expect(await t.run(CDB.read10(8, 2)).status == .good)
        #expect(await t.run(CDB.read16(10, 2)).status == .good)
        let after = Self.statistics(t)
        #expect(after[.write] == 1 && after[.read] == 2 && after[.other] == 2)
        #expect(after.bytesWritten == 4 * 512 && after.bytesRead == 4 * 512)
        #expect(after.checkConditions == 2)
        #expect(after.writeLatency.count == 1 && after.readLatency.count == 2)
        #expect(after.readLatency.sumNanoseconds > 0 && after.writeLatency.sumNanoseconds > 0)
        #expect(after.readLatency.cumulativeCounts.last == 2)
    }

    @Test func aFailedReadCountsAsACheckConditionWithoutBytes() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(CDB.read10(UInt32(Fixture.blockCount), 1)).hasSense(.lbaOutOfRange))
        let s = Self.statistics(t)
        #expect(s[.read] == 1 && s.bytesRead == 0 && s.checkConditions == 3 && s.readLatency.count == 1)
    }

    @Test func unmapSyncAndWriteSameHaveTheirOwnKinds() async {
        let (t, _) = await Fixture.readyTarget()
        let block = [UInt8](repeating: 0xA5, count: 512)
        #expect(await t.run([0x41, 0, 0, 0, 0, 4, 0, 0, 3, 0], data: block).status == .good)
        let params: [UInt8] = [0, 22, 0, 16, 0, 0, 0, 0] + CDB.be(5, 8) + CDB.be(2, 4) + [0, 0, 0, 0]
        #expect(await t.run([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], data: params).status == .good)
        #expect(await t.run([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]).status == .good)
        let s = Self.statistics(t)
        #expect(s[.writeSame] == 1 && s[.unmap] == 1 && s[.synchronizeCache] == 1)
        // Only READ and WRITE move the byte counters and the histograms.
        #expect(s.bytesWritten == 0 && s.writeLatency.count == 0 && s[.write] == 0)
    }

    @Test func aCommandToAMissingLUNCountsNowhere() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(CDB.read10(0, 1), lun: 7).hasSense(.logicalUnitNotSupported))
        #expect(Self.statistics(t)[.read] == 0)
    }

    /// The kinds agree with the descriptor table's names: every READ(n) is a
    /// read, every WRITE(n), WRITE AND VERIFY and WRITE ATOMIC a write.
    @Test func everyDescribedCommandHasTheKindItsNameSays() {
        // The first prefix that matches names the kind ("WRITE(" before "WRITE SAME").
        let prefixes: [(String, SCSICommandKind)] = [
            ("READ(", .read), ("WRITE(", .write), ("WRITE AND VERIFY", .write), ("WRITE ATOMIC", .write),
            ("UNMAP", .unmap), ("SYNCHRONIZE CACHE", .synchronizeCache), ("COMPARE AND WRITE", .compareAndWrite),
            ("WRITE SAME", .writeSame),
        ]
        for descriptor in CommandDescriptor.all {
            let expected = prefixes.first { descriptor.name.hasPrefix($0.0) }?.1 ?? .other
            #expect(LUNStatistics.kind(ofOperationCode: descriptor.opcode) == expected, "\(descriptor.name)")
        }
    }
}
