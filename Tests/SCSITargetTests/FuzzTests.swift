import BlockStorage
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// Random CDBs and parameter lists never crash or hang the target: a peer's
/// bad input becomes sense data.
@Suite struct FuzzTests {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: CommandDescriptor.all.map(\.opcode).uniqued() + [0x00, 0xFF, 0x7F])
    func randomCDBs(_ opcode: UInt8) async {
        var rng = SplitMix(state: UInt64(opcode) &* 7919)
        let (t, _) = await Fixture.readyTarget()
        for _ in 0..<300 {
            let length = Int.random(in: 0...20, using: &rng)
            var cdb = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if !cdb.isEmpty { cdb[0] = opcode }
            // Keep transfers small so the sweep stays fast.
            if cdb.count > 13, [0x88, 0x8A, 0x8E, 0x8F, 0x93].contains(opcode) { cdb[10] = 0; cdb[11] = 0 }
            if cdb.count > 9, [0xA8, 0xAA, 0xAE, 0xAF].contains(opcode) { cdb[6] = 0; cdb[7] = 0 }
            let dataLength = Int.random(in: 0...1100, using: &rng)
            let data = (0..<dataLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let r = await t.run(cdb, data: data)
            #expect(
                r.status == .good || r.status == .checkCondition || r.status == .conditionMet
                    || r.status == .reservationConflict)
            if r.status == .checkCondition { #expect(r.sense.count == 18) }
            #expect(r.dataInLength <= (r.dataIn?.count ?? 0))
        }
    }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
