import Testing

@testable import SCSITarget
@testable import SCSIWire

/// REPORT SUPPORTED OPERATION CODES is built from the same table that dispatches.
@Suite struct RSOCTests {
    @Test func allCommandsMatchesTable() async {
        let (t, _) = await Fixture.readyTarget()
        for rctd in [false, true] {
            let d = await t.run(CDB.rsoc(options: 0, rctd: rctd)).data
            let each = rctd ? 20 : 8
            let length = Int(d[0]) << 24 | Int(d[1]) << 16 | Int(d[2]) << 8 | Int(d[3])
            #expect(length == d.count - 4)
            #expect(length == CommandDescriptor.all.count * each)
            for (i, desc) in CommandDescriptor.all.enumerated() {
                let e = Array(d[4 + i * each..<4 + (i + 1) * each])
                #expect(e[0] == desc.opcode)
                #expect(Int(e[2]) << 8 | Int(e[3]) == Int(desc.serviceAction ?? 0))
                #expect(e[5] & 1 == (desc.serviceAction == nil ? 0 : 1))
                #expect(e[5] & 2 == (rctd ? 2 : 0))
                #expect(Int(e[6]) << 8 | Int(e[7]) == desc.cdbLength)
                if rctd { #expect(e[8] == 0 && e[9] == 0x0A) }
            }
        }
    }

    /// Every descriptor dispatches: its opcode (and service action) with every
    /// usage bit clear parses to a command of that descriptor or a field error, never an unknown opcode.
    @Test(arguments: CommandDescriptor.all.map(\.name))
    func everyDescriptorDispatchesAndReportsOne(_ name: String) async throws {
        let desc = try #require(CommandDescriptor.all.first { $0.name == name })
        var cdb = [UInt8](repeating: 0, count: desc.cdbLength)
        cdb[0] = desc.opcode
        if let sa = desc.serviceAction { cdb[1] = UInt8(sa) }
        do {
            let (found, _) = try CommandDescriptor.parse(cdb)
            #expect(found.name == desc.name)
        } catch {
            #expect(error.reason == .invalidFieldInCDB, "\(name): \(error)")
        }
        // Setting any bit outside the usage data is refused with a pointer at it.
        for byte in 1..<desc.cdbLength {
            var bad = cdb
            let free = ~desc.usageData[byte] & (byte == 1 && desc.serviceAction != nil ? 0xE0 : 0xFF)
            guard free != 0 else { continue }
            bad[byte] |= free
            #expect(throws: SenseData.self) { try CommandDescriptor.parse(bad) }
        }
        let options: UInt8 = desc.serviceAction == nil ? 1 : 2
        let r = try CommandDescriptor.reportOne(
            ReportSupportedOperationCodes(
                rctd: true, reportingOptions: options, requestedOperationCode: desc.opcode,
                requestedServiceAction: desc.serviceAction ?? 0, allocationLength: 4096))
        #expect(r[1] & 0x07 == 3 && r[1] & 0x80 != 0)
        #expect(Int(r[2]) << 8 | Int(r[3]) == desc.cdbLength)
        #expect(Array(r[4..<4 + desc.cdbLength]) == desc.usageData)
        #expect(r.count == 4 + desc.cdbLength + 12)
    }

    @Test func oneCommandErrorsAndUnsupported() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(CDB.rsoc(options: 1, opcode: 0x9E)).hasSense(.invalidFieldInCDB))
        #expect(await t.run(CDB.rsoc(options: 2, opcode: 0x28)).hasSense(.invalidFieldInCDB))
        #expect(await t.run(CDB.rsoc(options: 1, opcode: 0xC0)).data == [0, 1, 0, 0])
        #expect(await t.run(CDB.rsoc(options: 3, opcode: 0x9E, sa: 0x10)).data[1] & 7 == 3)
        #expect(await t.run(CDB.rsoc(options: 0, alloc: 7)).dataInLength == 7)
    }
}
