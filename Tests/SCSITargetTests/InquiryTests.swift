import BlockStorage
import Testing

@testable import SCSITarget
@testable import SCSIWire

@Suite struct InquiryTests {
    static let pages: [UInt8?] = [nil] + InquiryData.supportedVPDPages.map { Optional($0) }

    /// Every page at every allocation length 0...255: never more than asked, a prefix of the full page.
    @Test(arguments: pages)
    func allocationLengthSweep(_ page: UInt8?) async {
        let (t, _) = Fixture.target()
        let full = await t.run(CDB.inquiry(evpd: page != nil, page: page ?? 0, alloc: 4096)).data
        #expect(full.count > 4)
        if let page {
            #expect(full[1] == page)
            #expect(Int(full[2]) << 8 | Int(full[3]) == full.count - 4, "page length")
        } else {
            #expect(Int(full[4]) == full.count - 5, "additional length")
        }
        for alloc in 0...255 {
            let r = await t.run(CDB.inquiry(evpd: page != nil, page: page ?? 0, alloc: UInt16(alloc)))
            #expect(r.status == .good)
            #expect(r.dataInLength == min(alloc, full.count))
            #expect(r.data == Array(full.prefix(alloc)))
        }
    }

    @Test func standardData() async {
        let (t, _) = Fixture.target()
        let d = await t.run(CDB.inquiry(alloc: 96)).data
        #expect(d[0] == 0x00)
        #expect(d[2] == 0x06 && d[3] & 0x0F == 2)
        #expect(String(decoding: d[8..<16], as: UTF8.self) == "TESSERA ")
        #expect(String(decoding: d[16..<32], as: UTF8.self) == "Tessera LUN     ")
        #expect(String(decoding: d[32..<36], as: UTF8.self) == "0001")
        #expect(d[58] == 0x00 && d[59] == 0xA0)  // SAM-5 version descriptor
    }

    @Test func unsupportedPage() async {
        let (t, _) = Fixture.target()
        let r = await t.run(CDB.inquiry(evpd: true, page: 0x99, alloc: 255))
        #expect(r.hasSense(.invalidFieldInCDB))
    }

    @Test func deviceIdentificationDesignators() async {
        let (t, _) = Fixture.target()
        let d = await t.run(CDB.inquiry(evpd: true, page: 0x83, alloc: 1024)).data
        var designators: [(assoc: UInt8, type: UInt8, value: [UInt8])] = []
        var i = 4
        while i + 4 <= d.count {
            let len = Int(d[i + 3])
            designators.append(((d[i + 1] >> 4) & 3, d[i + 1] & 0x0F, Array(d[i + 4..<i + 4 + len])))
            i += 4 + len
        }
        #expect(i == d.count)
        let naa = designators.first { $0.assoc == 0 && $0.type == 3 }
        #expect(naa?.value == Fixture.configuration().naaIdentifier)
        #expect(naa?.value.first.map { $0 >> 4 } == 6)
        let port = designators.first { $0.assoc == 1 && $0.type == 8 }
        #expect(
            port.map { String(decoding: $0.value.prefix { $0 != 0 }, as: UTF8.self) } == Fixture.nexusA.targetPortName)
        #expect(port.map { $0.value.count % 4 } == 0)
        #expect(designators.first { $0.assoc == 1 && $0.type == 4 }?.value == [0, 0, 0, 1])
        #expect(designators.first { $0.assoc == 1 && $0.type == 5 }?.value == [0, 0, 0, 1])
        let b = await t.run(CDB.inquiry(evpd: true, page: 0x83, alloc: 1024), nexus: Fixture.nexusB).data
        #expect(b != d, "port designators follow the nexus")
    }

    @Test func provisioningAndLimits() async {
        let (t, _) = Fixture.target()
        let b2 = await t.run(CDB.inquiry(evpd: true, page: 0xB2, alloc: 255)).data
        #expect(b2[5] & 0x80 != 0)  // LBPU
        let b0 = await t.run(CDB.inquiry(evpd: true, page: 0xB0, alloc: 255)).data
        #expect(b0.count == 64)
        let maxTransfer = UInt32(b0[8]) << 24 | UInt32(b0[9]) << 16 | UInt32(b0[10]) << 8 | UInt32(b0[11])
        #expect(maxTransfer == (8 << 20) / Fixture.blockSize)
    }

    @Test func supportedPagesListsEveryPageServed() async {
        let (t, _) = Fixture.target()
        let d = await t.run(CDB.inquiry(evpd: true, page: 0, alloc: 255)).data
        for p in d[4...] {
            #expect(await t.run(CDB.inquiry(evpd: true, page: p, alloc: 255)).status == .good)
        }
    }

    @Test func naa6Layout() {
        let id = InquiryIdentity.naa6(oui: 0x001405, vendorSpecific: 0xA_BCDE_F012, extension: 0x1122_3344_5566_7788)
        #expect(id == [0x60, 0x01, 0x40, 0x5A, 0xBC, 0xDE, 0xF0, 0x12, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
    }
}

@Suite struct LUNTests {
    @Test(arguments: [UInt16(0), 1, 255, 256, 0x3FFF])
    func roundTrip(_ lun: UInt16) {
        #expect(LUNAddress.decode(LUNAddress.encode(lun)) == lun)
    }

    @Test func rejectsOtherAddressing() {
        #expect(LUNAddress.decode(0x0100_0000_0000_0000) == nil)  // bus identifier 1
        #expect(LUNAddress.decode(0x8000_0000_0000_0000) == nil)  // logical unit addressing
        #expect(LUNAddress.decode(0x0001_0001_0000_0000) == nil)  // second level
    }

    @Test func missingLogicalUnit() async {
        let (t, _) = Fixture.target()
        let inq = await t.run(CDB.inquiry(alloc: 255), lun: 7)
        #expect(inq.status == .good && inq.data.first == 0x7F)
        #expect(await t.run(CDB.testUnitReady, lun: 7).hasSense(.logicalUnitNotSupported))
        #expect(await t.run(CDB.read10(0, 1), lun: 7).hasSense(.logicalUnitNotSupported))
        let rs = await t.run(CDB.requestSense(), lun: 7)
        #expect(rs.status == .good && rs.data[12] == 0x25)
        let luns = await t.run(CDB.reportLUNs(), lun: 7)
        #expect(luns.data == [0, 0, 0, 8, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8))
    }

    @Test func reportLUNsListsUnits() async {
        let dev = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 8))
        let units: [UInt16: LogicalUnit] = [
            0: LogicalUnit(configuration: Fixture.configuration(), device: dev),
            300: LogicalUnit(configuration: Fixture.configuration(), device: dev),
        ]
        let t = SCSITargetDevice(logicalUnits: units)
        let d = await t.run(CDB.reportLUNs()).data
        #expect(d.count == 24)
        #expect(Array(d[16..<18]) == [0x41, 0x2C])
        #expect(await t.run(CDB.reportLUNs(alloc: 16)).dataInLength == 16)
    }
}
