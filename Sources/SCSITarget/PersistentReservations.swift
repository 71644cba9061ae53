import SCSIWire

/// Which I_T nexuses a registration (or a reservation holder) stands for
/// (SPC-4 §5.13.7): one initiator port, or every port of an initiator device
/// (SPEC_I_PT with a format 00b TransportID), through one target port or
/// through all of them (ALL_TG_PT).
public struct RegistrantPort: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The initiator port name (`iqn…,i,0x<ISID>`), or the initiator name when `deviceName`.
    public var initiator: String
    /// `initiator` names an initiator device: every port of it matches.
    public var deviceName: Bool
    /// The relative target port identifier, nil for every target port.
    public var relativeTargetPortIdentifier: UInt16?

    public init(initiator: String, deviceName: Bool = false, relativeTargetPortIdentifier: UInt16?) {
        self.initiator = initiator
        self.deviceName = deviceName
        self.relativeTargetPortIdentifier = relativeTargetPortIdentifier
    }

    /// The port `nexus` came from, through its target port or (ALL_TG_PT) all of them.
    public init(_ nexus: ITNexus, allTargetPorts: Bool = false) {
        self.init(
            initiator: nexus.initiatorPortName,
            relativeTargetPortIdentifier: allTargetPorts ? nil : nexus.relativeTargetPortIdentifier)
    }

    /// Whether `nexus` is one of the I_T nexuses this stands for.
    public func matches(_ nexus: ITNexus) -> Bool {
        let initiatorMatches =
            deviceName
            ? nexus.initiatorName.lowercased() == initiator.lowercased()
            : nexus.initiatorPortName.lowercased() == initiator.lowercased()
        return initiatorMatches && (relativeTargetPortIdentifier.map { $0 == nexus.relativeTargetPortIdentifier } ?? true)
    }

    /// Whether the two stand for at least one common I_T nexus.
    func overlaps(_ other: RegistrantPort) -> Bool {
        let ports: Bool
        if let a = relativeTargetPortIdentifier, let b = other.relativeTargetPortIdentifier {
            ports = a == b
        } else {
            ports = true
        }
        guard ports else { return false }
        if deviceName == other.deviceName { return initiator.lowercased() == other.initiator.lowercased() }
        let (device, port) = deviceName ? (initiator, other.initiator) : (other.initiator, initiator)
        return port.lowercased().hasPrefix(device.lowercased() + ",i,")
    }

    public var description: String {
        "\(initiator)\(deviceName ? " (device)" : "") via \(relativeTargetPortIdentifier.map { "port \($0)" } ?? "all ports")"
    }
}

/// The persistent reservation state of a logical unit (SPC-4 §5.13): a value
/// with pure transitions, so the in-memory context and a replicated store
/// apply exactly the same rules, and a ``ReservationStateStore`` can save it.
public struct PersistentReservations: Sendable, Hashable, Codable {
    /// One registration: an I_T nexus (or set of them) and its key.
    public struct Registration: Sendable, Hashable, Codable {
        public var port: RegistrantPort
        public var key: UInt64

        public init(port: RegistrantPort, key: UInt64) {
            self.port = port
            self.key = key
        }
    }

    /// The persistent reservation.
    public struct Reservation: Sendable, Hashable, Codable {
        /// The holder (for all-registrants types, the nexus that reserved).
        public var holder: RegistrantPort
        public var type: PersistentReservationType

        public init(holder: RegistrantPort, type: PersistentReservationType) {
            self.holder = holder
            self.type = type
        }
    }

    /// PRGENERATION: bumped by every registration change (SPC-4 §6.15.2).
    public var generation: UInt32 = 0
    /// Registrations in the order they were made (READ KEYS lists them so).
    public var registrations: [Registration] = []
    public var reservation: Reservation?
    /// APTPL of the last registration command: the state persists through power loss (SPC-4 §5.13.5).
    public var aptpl = false

    public init() {}

    /// A unit attention for every nexus a registrant port stands for.
    public struct PendingUnitAttention: Sendable, Hashable {
        public var port: RegistrantPort
        public var reason: SenseReason
    }

    /// The outcome of a PERSISTENT RESERVE OUT.
    public struct Outcome: Sendable, Hashable {
        /// What the command returns.
        public enum Status: Sendable, Hashable {
            case good
            case reservationConflict
            case checkCondition(SenseData)
        }
        public var status: Status
        /// Unit attentions to establish for other nexuses (never the sender's).
        public var unitAttentions: [PendingUnitAttention] = []
        /// Registrant ports preempted by PREEMPT AND ABORT: their tasks are aborted.
        public var aborted: [RegistrantPort] = []

        static let good = Outcome(status: .good)
        static let conflict = Outcome(status: .reservationConflict)
        static func sense(_ s: SenseData) -> Outcome { Outcome(status: .checkCondition(s)) }

        mutating func notify(_ port: RegistrantPort, _ reason: SenseReason) {
            if !unitAttentions.contains(where: { $0.port == port }) {
                unitAttentions.append(PendingUnitAttention(port: port, reason: reason))
            }
        }
    }

    func registration(of nexus: ITNexus) -> Registration? { registrations.first { $0.port.matches(nexus) } }
    func key(of nexus: ITNexus) -> UInt64? { registration(of: nexus)?.key }

    /// Whether `nexus` holds the reservation (every registrant does for all-registrants types).
    public func isHolder(_ nexus: ITNexus) -> Bool {
        guard let r = reservation else { return false }
        return r.type.allRegistrants ? key(of: nexus) != nil : r.holder.matches(nexus)
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
        let isRegistration = out.serviceAction == .register || out.serviceAction == .registerAndIgnoreExistingKey
        // SPC-4 §6.16.3: SPEC_I_PT only with REGISTER; ALL_TG_PT only with the two register actions.
        if p.specIPT && out.serviceAction != .register { return .sense(.invalidParameter(byte: 20, bit: 3)) }
        if p.allTgPt && !isRegistration { return .sense(.invalidParameter(byte: 20, bit: 2)) }
        let current = key(of: nexus)
        switch out.serviceAction {
        case .register, .registerAndIgnoreExistingKey:
            if out.serviceAction == .register {
                // SPC-4 §5.13.7: an unregistered nexus must send key 0; a registered one its key.
                if (current ?? 0) != p.reservationKey { return .conflict }
            }
            if p.serviceActionReservationKey == 0 {
                // SPC-4 table 183: SPEC_I_PT while unregistering → INVALID FIELD IN PARAMETER LIST.
                if p.specIPT { return .sense(.invalidParameter(byte: 20, bit: 3)) }
                guard current != nil else { return .good }
                aptpl = p.aptpl
                return unregister(nexus)
            }
            if current != nil {
                if p.specIPT { return .sense(.invalidParameter(byte: 20, bit: 3)) }
                for i in registrations.indices where registrations[i].port.matches(nexus) {
                    registrations[i].key = p.serviceActionReservationKey
                }
            } else {
                var ports = [RegistrantPort(nexus, allTargetPorts: p.allTgPt)]
                for id in p.transportIDs {
                    let port = RegistrantPort(
                        initiator: id.portName, deviceName: id.isid == nil,
                        relativeTargetPortIdentifier: p.allTgPt ? nil : nexus.relativeTargetPortIdentifier)
                    // SPC-4 §5.13.7: a specified nexus that is already registered → RESERVATION CONFLICT.
                    if registrations.contains(where: { $0.port.overlaps(port) }) { return .conflict }
                    if !ports.contains(port) { ports.append(port) }
                }
                if registrations.count + ports.count > Self.maximumRegistrations {
                    return .sense(SenseData(.insufficientRegistrationResources))
                }
                for port in ports { registrations.append(Registration(port: port, key: p.serviceActionReservationKey)) }
            }
            aptpl = p.aptpl
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
            reservation = Reservation(holder: registration(of: nexus)?.port ?? RegistrantPort(nexus), type: type)
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
                for reg in registrations where !reg.port.matches(nexus) { outcome.notify(reg.port, .reservationsReleased) }
            }
            return outcome

        case .clear:
            guard let current, current == p.reservationKey else { return .conflict }
            var outcome = Outcome.good
            for reg in registrations where !reg.port.matches(nexus) { outcome.notify(reg.port, .reservationsPreempted) }
            registrations.removeAll()
            reservation = nil
            generation &+= 1
            return outcome

        case .preempt, .preemptAndAbort:
            guard let current, current == p.reservationKey else { return .conflict }
            return preempt(out, p, from: nexus)

        case .registerAndMove:
            return registerAndMove(out, p, from: nexus)
        }
    }

    /// SAM does not bound registrations; a bound keeps one initiator from growing the state forever.
    public static let maximumRegistrations = 256

    private mutating func unregister(_ nexus: ITNexus) -> Outcome {
        var outcome = Outcome.good
        let wasHolder = reservation.map { !$0.type.allRegistrants && $0.holder.matches(nexus) } ?? false
        registrations.removeAll { $0.port.matches(nexus) }
        generation &+= 1
        if let r = reservation {
            if r.type.allRegistrants {
                // SPC-4 §5.13.10: released only when the last registrant leaves.
                if registrations.isEmpty { reservation = nil }
            } else if wasHolder {
                reservation = nil
                if r.type.registrantsHaveAccess {
                    for reg in registrations { outcome.notify(reg.port, .reservationsReleased) }
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
        let abort = out.serviceAction == .preemptAndAbort
        var outcome = Outcome.good
        func remove(_ predicate: (Registration) -> Bool) {
            for reg in registrations where predicate(reg) && !reg.port.matches(nexus) {
                outcome.notify(reg.port, .registrationsPreempted)
                if abort { outcome.aborted.append(reg.port) }
            }
            registrations.removeAll { predicate($0) && !$0.port.matches(nexus) }
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
        let mine = registration(of: nexus)?.port ?? RegistrantPort(nexus)
        if r.type.allRegistrants {
            if target == 0 {
                // Every other registration goes; the preempter holds a new reservation.
                remove { _ in true }
                reservation = Reservation(holder: mine, type: type)
            } else {
                guard registrations.contains(where: { $0.key == target }) else { return .conflict }
                remove { $0.key == target }
            }
            generation &+= 1
            return outcome
        }
        if target == 0 { return .sense(.invalidParameter(byte: 8)) }
        let holderKey = registrations.first { $0.port == r.holder }?.key
        guard registrations.contains(where: { $0.key == target }) else { return .conflict }
        remove { $0.key == target }
        if holderKey == target {
            reservation = Reservation(holder: mine, type: type)
            if r.type != type {
                for reg in registrations where !reg.port.matches(nexus) { outcome.notify(reg.port, .reservationsReleased) }
            }
        }
        generation &+= 1
        return outcome
    }

    /// SPC-4 §5.13.8: the holder registers another I_T nexus and hands it the reservation.
    private mutating func registerAndMove(
        _ out: PersistentReserveOut, _ p: PersistentReserveOutParameters, from nexus: ITNexus
    ) -> Outcome {
        // Unregistered sender, or the key does not match → RESERVATION CONFLICT.
        guard let current = key(of: nexus), current == p.reservationKey else { return .conflict }
        // SARK 0 → INVALID FIELD IN PARAMETER LIST.
        if p.serviceActionReservationKey == 0 { return .sense(.invalidParameter(byte: 8)) }
        // No reservation, the sender is not the holder, or an all-registrants type → RESERVATION CONFLICT.
        guard let r = reservation, !r.type.allRegistrants, r.holder.matches(nexus) else { return .conflict }
        guard let id = p.transportIDs.first else { return .sense(.invalidParameter(byte: 24)) }
        let destination = RegistrantPort(
            initiator: id.portName, deviceName: id.isid == nil,
            relativeTargetPortIdentifier: p.relativeTargetPortIdentifier)
        // The destination is the sender itself → INVALID FIELD IN PARAMETER LIST.
        if destination.overlaps(RegistrantPort(nexus)) { return .sense(.invalidParameter(byte: 24)) }
        if let i = registrations.firstIndex(where: { $0.port.overlaps(destination) }) {
            registrations[i].key = p.serviceActionReservationKey
            reservation = Reservation(holder: registrations[i].port, type: r.type)
        } else {
            if registrations.count >= Self.maximumRegistrations {
                return .sense(SenseData(.insufficientRegistrationResources))
            }
            registrations.append(Registration(port: destination, key: p.serviceActionReservationKey))
            reservation = Reservation(holder: destination, type: r.type)
        }
        if p.unregister { registrations.removeAll { $0.port.matches(nexus) } }
        aptpl = p.aptpl
        generation &+= 1
        return .good
    }

    /// PERSISTENT RESERVE IN parameter data.
    public func reportIn(_ action: PersistentReserveInAction) -> [UInt8] {
        switch action {
        case .readKeys:
            return PersistentReserveInData.readKeys(generation: generation, keys: registrations.map(\.key))
        case .readReservation:
            // SPC-4 §6.15.3.2: all-registrants reservations report key 0.
            let r = reservation.map { r in
                (
                    key: r.type.allRegistrants ? 0 : (registrations.first { $0.port == r.holder }?.key ?? 0),
                    type: r.type.rawValue
                )
            }
            return PersistentReserveInData.readReservation(generation: generation, reservation: r)
        case .reportCapabilities:
            return PersistentReserveInData.reportCapabilities(persistThroughPowerLossActive: aptpl)
        case .readFullStatus:
            return PersistentReserveInData.readFullStatus(
                generation: generation,
                registrations.map { reg in
                    let holder =
                        reservation.map { $0.type.allRegistrants || $0.holder == reg.port } ?? false
                    return PersistentReserveInData.FullStatus(
                        key: reg.key, holder: holder, type: reservation?.type.rawValue ?? 0,
                        relativeTargetPortIdentifier: reg.port.relativeTargetPortIdentifier ?? 0,
                        initiatorPortName: reg.port.initiator, allTargetPorts: reg.port.relativeTargetPortIdentifier == nil,
                        deviceName: reg.port.deviceName)
                })
        }
    }
}
