import Testing

@testable import SCSITarget
@testable import SCSIWire

/// The persistent reservation rules as a table: (state, command, initiator)
/// → (result, new state, unit attentions), for every PERSISTENT RESERVE OUT
/// service action and every reservation type (SPC-4 §5.13, §6.16).
@Suite struct ReservationRulesTableTests {
    static let a = Fixture.nexusA
    static let b = Fixture.nexusB
    /// The same initiator port as `a`, through another target port (ALL_TG_PT).
    static let a2 = ITNexus(
        initiatorName: "iqn.2026-01.test:a", isid: 0x23D0_0000_0001, targetName: "iqn.2026-01.tessera:t",
        portalGroupTag: 2)
    static let c = ITNexus(
        initiatorName: "iqn.2026-01.test:c", isid: 3, targetName: "iqn.2026-01.tessera:t", portalGroupTag: 1)

    /// What a row expects back.
    enum Result: Equatable {
        case good, conflict, sense(SenseReason)
    }

    struct Row: CustomTestStringConvertible, Sendable {
        var name: String
        /// Registrations (nexus, key) and the reservation (holder, type) before the command.
        var registered: [(ITNexus, UInt64)]
        var reserved: (ITNexus, PersistentReservationType)?
        var action: PersistentReserveOutAction
        var type: PersistentReservationType? = nil
        var scope: UInt8 = 0
        var parameters: PersistentReserveOutParameters
        var from: ITNexus
        var result: Result
        /// Keys per nexus afterwards (nil = unregistered), checked for a, b, c, a2.
        var keysAfter: [UInt64?]
        /// (holder, type) afterwards; for all-registrants types the holder is any registrant.
        var reservedAfter: (ITNexus, PersistentReservationType)?
        /// Unit attentions: which nexuses get which reason.
        var attentions: [(ITNexus, SenseReason)] = []
        var aborted: [ITNexus] = []
        var testDescription: String { name }
    }

    static func p(_ key: UInt64, _ sark: UInt64 = 0, specIPT: Bool = false, allTgPt: Bool = false, aptpl: Bool = false,
        ids: [TransportID] = [], unregister: Bool = false, port: UInt16 = 0) -> PersistentReserveOutParameters
    {
        PersistentReserveOutParameters(
            reservationKey: key, serviceActionReservationKey: sark, specIPT: specIPT, allTgPt: allTgPt, aptpl: aptpl,
            transportIDs: ids, unregister: unregister, relativeTargetPortIdentifier: port)
    }

    static let bPort = TransportID(name: "iqn.2026-01.test:b", isid: "23d000000002")

    static let rows: [Row] = {
        var rows: [Row] = [
            // REGISTER
            Row(name: "REGISTER: unregistered nexus registers", registered: [], reserved: nil, action: .register,
                parameters: p(0, 0xA), from: a, result: .good, keysAfter: [0xA, nil, nil, nil], reservedAfter: nil),
            Row(name: "REGISTER: wrong key from a registrant conflicts", registered: [(a, 0xA)], reserved: nil,
                action: .register, parameters: p(0xB, 0xC), from: a, result: .conflict, keysAfter: [0xA, nil, nil, nil],
                reservedAfter: nil),
            Row(name: "REGISTER: registrant changes its key", registered: [(a, 0xA)], reserved: nil, action: .register,
                parameters: p(0xA, 0xAA), from: a, result: .good, keysAfter: [0xAA, nil, nil, nil], reservedAfter: nil),
            Row(name: "REGISTER: unregistering the WERO holder releases, registrants told",
                registered: [(a, 0xA), (b, 0xB)], reserved: (a, .writeExclusiveRegistrantsOnly), action: .register,
                parameters: p(0xA, 0), from: a, result: .good, keysAfter: [nil, 0xB, nil, nil], reservedAfter: nil,
                attentions: [(b, .reservationsReleased)]),
            Row(name: "REGISTER: unregistering the WE holder releases silently", registered: [(a, 0xA), (b, 0xB)],
                reserved: (a, .writeExclusive), action: .register, parameters: p(0xA, 0), from: a, result: .good,
                keysAfter: [nil, 0xB, nil, nil], reservedAfter: nil),
            Row(name: "REGISTER: an all-registrants reservation stays while a registrant remains",
                registered: [(a, 0xA), (b, 0xB)], reserved: (a, .exclusiveAccessAllRegistrants), action: .register,
                parameters: p(0xA, 0), from: a, result: .good, keysAfter: [nil, 0xB, nil, nil],
                reservedAfter: (b, .exclusiveAccessAllRegistrants)),
            Row(name: "REGISTER: ALL_TG_PT registers every target port", registered: [], reserved: nil,
                action: .register, parameters: p(0, 0xA, allTgPt: true), from: a, result: .good,
                keysAfter: [0xA, nil, nil, 0xA], reservedAfter: nil),
            Row(name: "REGISTER: SPEC_I_PT (with ALL_TG_PT) registers the named port too", registered: [],
                reserved: nil, action: .register, parameters: p(0, 0xA, specIPT: true, allTgPt: true, ids: [bPort]),
                from: a, result: .good, keysAfter: [0xA, 0xA, nil, 0xA], reservedAfter: nil),
            Row(name: "REGISTER: SPEC_I_PT names the port through the receiving target port only", registered: [],
                reserved: nil, action: .register, parameters: p(0, 0xA, specIPT: true, ids: [bPort]), from: a,
                result: .good, keysAfter: [0xA, nil, nil, nil], reservedAfter: nil),
            Row(name: "REGISTER: SPEC_I_PT naming a registered port conflicts", registered: [(b, 0xB)], reserved: nil,
                action: .register, parameters: p(0, 0xA, specIPT: true, allTgPt: true, ids: [bPort]), from: a,
                result: .conflict,
                keysAfter: [nil, 0xB, nil, nil], reservedAfter: nil),
            Row(name: "REGISTER: SPEC_I_PT from a registrant is an invalid parameter", registered: [(a, 0xA)],
                reserved: nil, action: .register, parameters: p(0xA, 0xC, specIPT: true, ids: [bPort]), from: a,
                result: .sense(.invalidFieldInParameterList), keysAfter: [0xA, nil, nil, nil], reservedAfter: nil),
            // REGISTER AND IGNORE EXISTING KEY
            Row(name: "REGISTER AND IGNORE: any key is accepted", registered: [(a, 0xA)], reserved: nil,
                action: .registerAndIgnoreExistingKey, parameters: p(0x999, 0xB), from: a, result: .good,
                keysAfter: [0xB, nil, nil, nil], reservedAfter: nil),
            Row(name: "REGISTER AND IGNORE: SPEC_I_PT is refused", registered: [], reserved: nil,
                action: .registerAndIgnoreExistingKey, parameters: p(0, 0xB, specIPT: true, ids: [bPort]), from: a,
                result: .sense(.invalidFieldInParameterList), keysAfter: [nil, nil, nil, nil], reservedAfter: nil),
            // RESERVE
            Row(name: "RESERVE: unregistered nexus conflicts", registered: [(a, 0xA)], reserved: nil, action: .reserve,
                type: .writeExclusive, parameters: p(0xB), from: b, result: .conflict, keysAfter: [0xA, nil, nil, nil],
                reservedAfter: nil),
            Row(name: "RESERVE: another holder conflicts", registered: [(a, 0xA), (b, 0xB)],
                reserved: (a, .writeExclusive), action: .reserve, type: .writeExclusive, parameters: p(0xB), from: b,
                result: .conflict, keysAfter: [0xA, 0xB, nil, nil], reservedAfter: (a, .writeExclusive)),
            Row(name: "RESERVE: the holder again with the same type is GOOD", registered: [(a, 0xA)],
                reserved: (a, .exclusiveAccess), action: .reserve, type: .exclusiveAccess, parameters: p(0xA), from: a,
                result: .good, keysAfter: [0xA, nil, nil, nil], reservedAfter: (a, .exclusiveAccess)),
            Row(name: "RESERVE: scope other than LU is an invalid field", registered: [(a, 0xA)], reserved: nil,
                action: .reserve, type: .writeExclusive, scope: 1, parameters: p(0xA), from: a,
                result: .sense(.invalidFieldInCDB), keysAfter: [0xA, nil, nil, nil], reservedAfter: nil),
            // RELEASE
            Row(name: "RELEASE: the WERO holder releases, registrants told", registered: [(a, 0xA), (b, 0xB)],
                reserved: (a, .writeExclusiveRegistrantsOnly), action: .release, type: .writeExclusiveRegistrantsOnly,
                parameters: p(0xA), from: a, result: .good, keysAfter: [0xA, 0xB, nil, nil], reservedAfter: nil,
                attentions: [(b, .reservationsReleased)]),
            Row(name: "RELEASE: wrong type is an invalid release", registered: [(a, 0xA)],
                reserved: (a, .writeExclusive), action: .release, type: .exclusiveAccess, parameters: p(0xA), from: a,
                result: .sense(.invalidReleaseOfPersistentReservation), keysAfter: [0xA, nil, nil, nil],
                reservedAfter: (a, .writeExclusive)),
            Row(name: "RELEASE: a non-holder's release does nothing", registered: [(a, 0xA), (b, 0xB)],
                reserved: (a, .writeExclusive), action: .release, type: .writeExclusive, parameters: p(0xB), from: b,
                result: .good, keysAfter: [0xA, 0xB, nil, nil], reservedAfter: (a, .writeExclusive)),
            // CLEAR
            Row(name: "CLEAR: everything goes, others told", registered: [(a, 0xA), (b, 0xB), (c, 0xC)],
                reserved: (b, .exclusiveAccess), action: .clear, parameters: p(0xA), from: a, result: .good,
                keysAfter: [nil, nil, nil, nil], reservedAfter: nil,
                attentions: [(b, .reservationsPreempted), (c, .reservationsPreempted)]),
            Row(name: "CLEAR: wrong key conflicts", registered: [(a, 0xA)], reserved: nil, action: .clear,
                parameters: p(0xB), from: a, result: .conflict, keysAfter: [0xA, nil, nil, nil], reservedAfter: nil),
            // PREEMPT
            Row(name: "PREEMPT: no reservation removes the key", registered: [(a, 0xA), (b, 0xB)], reserved: nil,
                action: .preempt, type: .writeExclusive, parameters: p(0xA, 0xB), from: a, result: .good,
                keysAfter: [0xA, nil, nil, nil], reservedAfter: nil, attentions: [(b, .registrationsPreempted)]),
            Row(name: "PREEMPT: unknown key conflicts", registered: [(a, 0xA)], reserved: nil, action: .preempt,
                type: .writeExclusive, parameters: p(0xA, 0x77), from: a, result: .conflict,
                keysAfter: [0xA, nil, nil, nil], reservedAfter: nil),
            Row(name: "PREEMPT: all-registrants with key 0 takes over", registered: [(a, 0xA), (b, 0xB), (c, 0xC)],
                reserved: (a, .writeExclusiveAllRegistrants), action: .preempt, type: .exclusiveAccess,
                parameters: p(0xB, 0), from: b, result: .good, keysAfter: [nil, 0xB, nil, nil],
                reservedAfter: (b, .exclusiveAccess),
                attentions: [(a, .registrationsPreempted), (c, .registrationsPreempted)]),
            // PREEMPT AND ABORT
            Row(name: "PREEMPT AND ABORT: the holder's tasks are aborted", registered: [(a, 0xA), (b, 0xB)],
                reserved: (a, .exclusiveAccess), action: .preemptAndAbort, type: .exclusiveAccess,
                parameters: p(0xB, 0xA), from: b, result: .good, keysAfter: [nil, 0xB, nil, nil],
                reservedAfter: (b, .exclusiveAccess), attentions: [(a, .registrationsPreempted)], aborted: [a]),
            // REGISTER AND MOVE
            Row(name: "REGISTER AND MOVE: the holder hands the reservation over", registered: [(a, 0xA)],
                reserved: (a, .writeExclusive), action: .registerAndMove, type: .writeExclusive,
                parameters: p(0xA, 0xB, ids: [bPort], port: 2), from: a, result: .good,
                keysAfter: [0xA, 0xB, nil, nil], reservedAfter: (b, .writeExclusive)),
            Row(name: "REGISTER AND MOVE: UNREG drops the sender", registered: [(a, 0xA)],
                reserved: (a, .exclusiveAccess), action: .registerAndMove, type: .exclusiveAccess,
                parameters: p(0xA, 0xB, ids: [bPort], unregister: true, port: 2), from: a, result: .good,
                keysAfter: [nil, 0xB, nil, nil], reservedAfter: (b, .exclusiveAccess)),
            Row(name: "REGISTER AND MOVE: a non-holder conflicts", registered: [(a, 0xA), (c, 0xC)],
                reserved: (a, .writeExclusive), action: .registerAndMove, type: .writeExclusive,
                parameters: p(0xC, 0xB, ids: [bPort], port: 2), from: c, result: .conflict,
                keysAfter: [0xA, nil, 0xC, nil], reservedAfter: (a, .writeExclusive)),
            Row(name: "REGISTER AND MOVE: all-registrants type conflicts", registered: [(a, 0xA)],
                reserved: (a, .writeExclusiveAllRegistrants), action: .registerAndMove,
                type: .writeExclusiveAllRegistrants, parameters: p(0xA, 0xB, ids: [bPort], port: 2), from: a,
                result: .conflict, keysAfter: [0xA, nil, nil, nil], reservedAfter: (a, .writeExclusiveAllRegistrants)),
            Row(name: "REGISTER AND MOVE: key 0 is an invalid parameter", registered: [(a, 0xA)],
                reserved: (a, .writeExclusive), action: .registerAndMove, type: .writeExclusive,
                parameters: p(0xA, 0, ids: [bPort], port: 2), from: a, result: .sense(.invalidFieldInParameterList),
                keysAfter: [0xA, nil, nil, nil], reservedAfter: (a, .writeExclusive)),
        ]
        // RESERVE and PREEMPT of the holder with every type.
        for type in PersistentReservationType.allCases {
            rows.append(
                Row(name: "RESERVE \(type)", registered: [(a, 0xA), (b, 0xB)], reserved: nil, action: .reserve,
                    type: type, parameters: p(0xA), from: a, result: .good, keysAfter: [0xA, 0xB, nil, nil],
                    reservedAfter: (a, type)))
            if !type.allRegistrants {
                rows.append(
                    Row(name: "PREEMPT holder of \(type)", registered: [(a, 0xA), (b, 0xB)], reserved: (a, type),
                        action: .preempt, type: type, parameters: p(0xB, 0xA), from: b, result: .good,
                        keysAfter: [nil, 0xB, nil, nil], reservedAfter: (b, type),
                        attentions: [(a, .registrationsPreempted)]))
            }
        }
        return rows
    }()

    static func state(_ row: Row) -> PersistentReservations {
        var s = PersistentReservations()
        for (n, k) in row.registered { s.registrations.append(.init(port: RegistrantPort(n), key: k)) }
        if let (n, t) = row.reserved { s.reservation = .init(holder: RegistrantPort(n), type: t) }
        return s
    }

    @Test(arguments: rows)
    func rule(_ row: Row) {
        var s = Self.state(row)
        let before = s
        let out = PersistentReserveOut(
            serviceAction: row.action, scope: row.scope, type: row.type?.rawValue ?? 0, parameterListLength: 24)
        let outcome = s.apply(out, row.parameters, from: row.from)
        switch (row.result, outcome.status) {
        case (.good, .good), (.conflict, .reservationConflict): break
        case (.sense(let reason), .checkCondition(let sense)): #expect(sense.reason == reason)
        default: Issue.record("\(row.name): got \(outcome.status)")
        }
        if row.result != .good { #expect(s == before, "a refused command changes nothing") }
        for (n, want) in zip([Self.a, Self.b, Self.c, Self.a2], row.keysAfter) {
            #expect(s.key(of: n) == want, "key of \(n.initiatorPortName) port \(n.relativeTargetPortIdentifier)")
        }
        if let (holder, type) = row.reservedAfter {
            #expect(s.reservation?.type == type)
            #expect(s.isHolder(holder))
        } else {
            #expect(s.reservation == nil)
        }
        let got = outcome.unitAttentions.map { ($0.port, $0.reason) }
        #expect(got.count == row.attentions.count)
        for (n, reason) in row.attentions {
            #expect(got.contains { $0.0.matches(n) && $0.1 == reason }, "unit attention \(reason) for \(n)")
            #expect(!row.from.description.isEmpty)
        }
        #expect(!got.contains { $0.0.matches(row.from) }, "never to the nexus that caused it")
        #expect(outcome.aborted.count == row.aborted.count)
        for n in row.aborted { #expect(outcome.aborted.contains { $0.matches(n) }) }
        if row.result == .good && [.register, .registerAndIgnoreExistingKey, .clear, .preempt, .preemptAndAbort,
            .registerAndMove].contains(row.action) && s.registrations != before.registrations
        {
            #expect(s.generation == before.generation &+ 1, "PRGENERATION bumps on a registration change")
        }
    }

    /// SPC-4 §5.13.1 table 63: which command classes conflict, for each type
    /// and each relation of the sender to the reservation.
    @Test(arguments: PersistentReservationType.allCases)
    func conflicts(_ type: PersistentReservationType) {
        var s = PersistentReservations()
        s.registrations = [.init(port: RegistrantPort(Self.a), key: 0xA), .init(port: RegistrantPort(Self.b), key: 0xB)]
        s.reservation = .init(holder: RegistrantPort(Self.a), type: type)
        for klass in [ReservationConflictClass.allowed, .spc2Only] {
            #expect(!s.conflicts(Self.c, klass))
        }
        // Holder: never.
        #expect(!s.conflicts(Self.a, .readAccess) && !s.conflicts(Self.a, .writeAccess))
        // Registrant that is not the holder: only for the non-registrants types.
        let registrantBlocked = !type.registrantsHaveAccess
        #expect(s.conflicts(Self.b, .writeAccess) == registrantBlocked)
        #expect(s.conflicts(Self.b, .readAccess) == (registrantBlocked && type.exclusiveAccess))
        // Not registered: writes always, reads under the exclusive-access types.
        #expect(s.conflicts(Self.c, .writeAccess))
        #expect(s.conflicts(Self.c, .readAccess) == type.exclusiveAccess)
    }

    @Test func aptplIsReportedAndRemembered() {
        var s = PersistentReservations()
        let out = PersistentReserveOut(serviceAction: .register, scope: 0, type: 0, parameterListLength: 24)
        _ = s.apply(out, Self.p(0, 0xA, aptpl: true), from: Self.a)
        #expect(s.aptpl)
        #expect(s.reportIn(.reportCapabilities)[3] & 0x01 == 0x01)  // PTPL_A
        #expect(s.reportIn(.reportCapabilities)[2] & 0x0D == 0x0D)  // SIP_C, ATP_C, PTPL_C
        _ = s.apply(out, Self.p(0xA, 0xB, aptpl: false), from: Self.a)
        #expect(!s.aptpl)
    }
}
