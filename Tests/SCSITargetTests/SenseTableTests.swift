import Testing

@testable import SCSIWire

/// The one sense table: every reason maps to well-formed fixed sense, and no two reasons collide.
@Suite struct SenseTableTests {
    @Test(arguments: SenseReason.allCases)
    func fixedFormat(_ reason: SenseReason) {
        let b = SenseData(reason).bytes
        let c = reason.code
        #expect(b.count == 18)
        #expect(b[0] == 0x70)
        #expect(b[2] == c.key.rawValue)
        #expect(b[7] == 10)
        #expect(b[12] == c.asc && b[13] == c.ascq)
        #expect(b[15] == 0)
        #expect(reason.isUnitAttention == (c.key == .unitAttention))
    }

    @Test func codesAreDistinct() {
        var seen: [String: SenseReason] = [:]
        for r in SenseReason.allCases {
            let c = r.code
            let k = "\(c.key.rawValue)/\(c.asc)/\(c.ascq)"
            #expect(seen[k] == nil, "\(r) and \(String(describing: seen[k])) share \(k)")
            seen[k] = r
        }
    }

    @Test func informationAndFieldPointer() {
        let m = SenseData(.miscompareDuringVerifyOperation, information: 0x0102_0304).bytes
        #expect(m[0] == 0xF0)
        #expect(Array(m[3...6]) == [1, 2, 3, 4])
        let f = SenseData.invalidField(byte: 0x0102, bit: 5).bytes
        #expect(f[15] == 0x80 | 0x40 | 0x08 | 5)
        #expect(f[16] == 0x01 && f[17] == 0x02)
        let p = SenseData.invalidParameter(byte: 3).bytes
        #expect(p[15] == 0x80 && p[17] == 3)
    }
}
