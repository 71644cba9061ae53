import SCSIWire
import Testing
@testable import SCSITarget

@Suite struct AdministrativeClearTests {
    static let a = RegistrantPort(initiator: "iqn.2026-01.test:a,i,0x230000000001", relativeTargetPortIdentifier: 1)
    static let b = RegistrantPort(initiator: "iqn.2026-01.test:b,i,0x230000000002", relativeTargetPortIdentifier: 2)

    @Test func everyRegistrationAndTheReservationGoAndEveryRegistrantIsTold() throws {
        var state = SharedLUNState()
        state.persistent.registrations = [.init(port: Self.a, key: 0xA), .init(port: Self.b, key: 0xB)]
        state.persistent.reservation = .init(holder: Self.a, type: .writeExclusive)
        state.persistent.generation = 7
        state.spc2Holder = NexusName(initiatorPort: "iqn.2026-01.test:c,i,0x1", targetPort: "t,t,0x1")
        let (after, effects) = try #require(state.administrativelyCleared())
        #expect(after.persistent.registrations.isEmpty)
        #expect(after.persistent.reservation == nil)
        #expect(after.persistent.generation == 8)
        #expect(after.spc2Holder == state.spc2Holder, "an SPC-2 reservation is not a persistent one")
        #expect(
            effects == [
                .registrantUnitAttention(.reservationsPreempted, port: Self.a, except: .administrator),
                .registrantUnitAttention(.reservationsPreempted, port: Self.b, except: .administrator),
            ])
    }

    @Test func nothingToClearIsNoChange() {
        #expect(SharedLUNState().administrativelyCleared() == nil)
    }
}
