import SCSIWire

/// The persistent reservation state of a logical unit (SPC-4 §5.13): a value
/// with pure transitions, so the in-memory context and a replicated store
/// apply exactly the same rules.
public struct PersistentReservations: Sendable, Hashable {
    /// One registered I_T nexus.
    public struct Registration: Sendable, Hashable {
        public var nexus: ITNexus
        public var key: UInt64
    }

    /// The persistent reservation.
    public struct Reservation: Sendable, Hashable {
        /// The holder (for all-registrants types, the nexus that reserved).
        public var holder: ITNexus
        public var type: PersistentReservationType
    }

    /// PRGENERATION: bumped by every registration change (SPC-4 §6.15.2).
    public var generation: UInt32 = 0
    /// Registrations in the order they were made (READ KEYS lists them so).
    public var registrations: [Registration] = []
    public var reservation: Reservation?

    public init() {}

    /// The outcome of a PERSISTENT RESERVE OUT.
    public struct Outcome: Sendable, Hashable {
        /// What the command returns.
        public enum Status: Sendable, Hashable {
            case good
            case reservationConflict
            case checkCondition(SenseData)
        }
        public var status: Status
        /// Unit attentions to establish for other nexuses.
        public var unitAttentions: [ITNexus: SenseReason] = [:]
        /// Nexuses whose registrations were preempted (PREEMPT AND ABORT aborts their tasks).
        public var preempted: [ITNexus] = []

        static let good = Outcome(status: .good)
        static let conflict = Outcome(status: .reservationConflict)
        static func sense(_ s: SenseData) -> Outcome { Outcome(status: .checkCondition(s)) }
    }

    func key(of nexus: ITNexus) -> UInt64? { registrations.first { $0.nexus == nexus }?.key }

    /// Whether `nexus` holds the reservation (every registrant does for all-registrants types).
    public func isHolder(_ nexus: ITNexus) -> Bool {
        guard let r = reservation else { return false }
        return r.type.allRegistrants ? key(of: nexus) != nil : r.holder == nexus
    }

    /// SPC-4 §5.13.1, table 63: does a command of `conflictClass` from `nexus` conflict?
    public func conflicts(_ nexus: ITNexus, _ conflictClass: ReservationConflictClass) -> Bool {
        guard let r = reservation else { return false }
        switch conflictClass {
        case .allowed, .spc2Only: return false
        case .readAccess, .writeAccess:
            if isHolder(nexus) { return false }
            if r.type.registrantsHaveAccess && key(of: nexus) != nil { return false }
            return conflictClass == .writeAccess || r.type.exclusiveAccess
        }
    }

    /// Applies a PERSISTENT RESERVE OUT from `nexus` (SPC-4 §5.13.5-5.13.11, §6.16).
    public mutating func apply(_ out: PersistentReserveOut, _ p: PersistentReserveOutParameters, from nexus: ITNexus)
        -> Outcome
    {
        // SPC-4 §6.16.3: SPEC_I_PT and ALL_TG_PT are not offered (REPORT CAPABILITIES SIP_C/ATP_C = 0),
        // nor is APTPL (PTPL_C = 0).
        if p.specIPT { return .sense(.invalidParameter(byte: 20, bit: 3)) }
        if p.allTgPt { return .sense(.invalidParameter(byte: 20, bit: 2)) }
        if p.aptpl { return .sense(.invalidParameter(byte: 20, bit: 0)) }
        let current = key(of: nexus)
        switch out.serviceAction {
        case .register, .registerAndIgnoreExistingKey:
            if out.serviceAction == .register {
                // SPC-4 §5.13.7: an unregistered nexus must send key 0; a registered one its key.
                if (current ?? 0) != p.reservationKey { return .conflict }
            }
            if p.serviceActionReservationKey == 0 {
                guard current != nil else { return .good }
                return unregister(nexus)
            }
            if let i = registrations.firstIndex(where: { $0.nexus == nexus }) {
                registrations[i].key = p.serviceActionReservationKey
            } else {
                registrations.append(Registration(nexus: nexus, key: p.serviceActionReservationKey))
            }
            generation &+= 1
            return .good

        case .reserve:
            guard let current, current == p.reservationKey else { return .conflict }
            guard out.scope == 0 else { return .sense(.invalidField(byte: 2, bit: 7)) }
            guard let type = PersistentReservationType(rawValue: out.type) else {
                return .sense(.invalidField(byte: 2, bit: 3))
            }
            if let r = reservation {
                // SPC-4 §5.13.9: the holder re-reserving with the same type is a no-op; anything else conflicts.
                return isHolder(nexus) && r.type == type ? .good : .conflict
            }
            reservation = Reservation(holder: nexus, type: type)
            return .good

        case .release:
            guard let current, current == p.reservationKey else { return .conflict }
            guard let r = reservation, isHolder(nexus) else { return .good }
            guard out.scope == 0, r.type.rawValue == out.type else {
                return .sense(SenseData(.invalidReleaseOfPersistentReservation))
            }
            reservation = nil
            var outcome = Outcome.good
            // SPC-4 §5.13.11.2.2: releasing a registrants-only/all-registrants reservation tells the other registrants.
            if r.type.registrantsHaveAccess {
                for reg in registrations where reg.nexus != nexus {
                    outcome.unitAttentions[reg.nexus] = .reservationsReleased
                }
            }
            return outcome

        case .clear:
            guard let current, current == p.reservationKey else { return .conflict }
            var outcome = Outcome.good
            for reg in registrations where reg.nexus != nexus {
                outcome.unitAttentions[reg.nexus] = .reservationsPreempted
            }
            registrations.removeAll()
            reservation = nil
            generation &+= 1
            return outcome

        case .preempt, .preemptAndAbort:
            guard let current, current == p.reservationKey else { return .conflict }
            return preempt(out, p, from: nexus)
        }
    }

    private mutating func unregister(_ nexus: ITNexus) -> Outcome {
        var outcome = Outcome.good
        registrations.removeAll { $0.nexus == nexus }
        generation &+= 1
        if let r = reservation {
            if r.type.allRegistrants {
                // SPC-4 §5.13.10: released only when the last registrant leaves.
                if registrations.isEmpty { reservation = nil }
            } else if r.holder == nexus {
                reservation = nil
                if r.type.registrantsHaveAccess {
                    for reg in registrations { outcome.unitAttentions[reg.nexus] = .reservationsReleased }
                }
            }
        }
        return outcome
    }

    /// SPC-4 §5.13.11.4.
    private mutating func preempt(_ out: PersistentReserveOut, _ p: PersistentReserveOutParameters, from nexus: ITNexus)
        -> Outcome
    {
        let target = p.serviceActionReservationKey
        var outcome = Outcome.good
        func remove(_ predicate: (Registration) -> Bool) {
            for reg in registrations where predicate(reg) && reg.nexus != nexus {
                outcome.unitAttentions[reg.nexus] = .registrationsPreempted
                outcome.preempted.append(reg.nexus)
            }
            registrations.removeAll { predicate($0) && $0.nexus != nexus }
        }
        guard let r = reservation else {
            // No reservation: remove the registrations with that key.
            if target == 0 { return .sense(.invalidParameter(byte: 8)) }
            guard registrations.contains(where: { $0.key == target }) else { return .conflict }
            remove { $0.key == target }
            generation &+= 1
            return outcome
        }
        guard out.scope == 0 else { return .sense(.invalidField(byte: 2, bit: 7)) }
        guard let type = PersistentReservationType(rawValue: out.type) else {
            return .sense(.invalidField(byte: 2, bit: 3))
        }
        if r.type.allRegistrants {
            if target == 0 {
                // Every other registration goes; the preempter holds a new reservation.
                remove { _ in true }
                reservation = Reservation(holder: nexus, type: type)
            } else {
                guard registrations.contains(where: { $0.key == target }) else { return .conflict }
                remove { $0.key == target }
            }
            generation &+= 1
            return outcome
        }
        if target == 0 { return .sense(.invalidParameter(byte: 8)) }
        let holderKey = key(of: r.holder)
        guard registrations.contains(where: { $0.key == target }) else { return .conflict }
        remove { $0.key == target }
        if holderKey == target {
            reservation = Reservation(holder: nexus, type: type)
            if r.type != type {
                for reg in registrations where reg.nexus != nexus && outcome.unitAttentions[reg.nexus] == nil {
                    outcome.unitAttentions[reg.nexus] = .reservationsReleased
                }
            }
        }
        generation &+= 1
        return outcome
    }

    /// PERSISTENT RESERVE IN parameter data.
    public func reportIn(_ action: PersistentReserveInAction) -> [UInt8] {
        switch action {
        case .readKeys:
            return PersistentReserveInData.readKeys(generation: generation, keys: registrations.map(\.key))
        case .readReservation:
            // SPC-4 §6.15.3.2: all-registrants reservations report key 0.
            let r = reservation.map { r in
                (key: r.type.allRegistrants ? 0 : (key(of: r.holder) ?? 0), type: r.type.rawValue)
            }
            return PersistentReserveInData.readReservation(generation: generation, reservation: r)
        case .reportCapabilities:
            return PersistentReserveInData.reportCapabilities()
        case .readFullStatus:
            return PersistentReserveInData.readFullStatus(
                generation: generation,
                registrations.map { reg in
                    PersistentReserveInData.FullStatus(
                        key: reg.key, holder: isHolder(reg.nexus), type: reservation?.type.rawValue ?? 0,
                        relativeTargetPortIdentifier: reg.nexus.relativeTargetPortIdentifier,
                        initiatorPortName: reg.nexus.initiatorPortName)
                })
        }
    }
}
