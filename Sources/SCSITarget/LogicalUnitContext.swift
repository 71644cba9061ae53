import SCSIWire

/// Which I_T nexuses a new unit attention condition is established for (SAM-5 §5.14).
public enum UnitAttentionScope: Sendable, Hashable {
    /// Every nexus the logical unit knows.
    case allNexuses
    /// Every known nexus except this one (the one that caused the change).
    case allExcept(ITNexus)
    /// Only this nexus.
    case only(ITNexus)
}

/// Whether a command may run, decided from the context in one step (one
/// round trip for a replicated store).
public enum CommandAdmission: Sendable, Hashable {
    /// Run it.
    case proceed
    /// Report this unit attention (CHECK CONDITION); it has been consumed.
    case unitAttention(SenseReason)
    /// Another nexus holds a reservation the command conflicts with.
    case reservationConflict
}

/// The SCSI state of a logical unit that must look the same from every path:
/// unit attention queues per I_T nexus and mode page values (later PR and
/// SPC-2 reservations and ALUA state). The in-memory implementation serves a
/// single node; a replicated store implements the same protocol later, which
/// is why every method is `async`.
public protocol LogicalUnitContext: AnyObject, Sendable {
    /// A nexus logged in. A nexus seen for the first time since start gets
    /// POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (SAM-5 §5.14).
    func nexusEstablished(_ nexus: ITNexus) async
    /// A nexus went away; it gets I_T NEXUS LOSS OCCURRED when it comes back.
    func nexusLost(_ nexus: ITNexus) async
    /// The oldest pending unit attention for `nexus`, removed when `consume`.
    /// Registers a nexus seen for the first time (as ``nexusEstablished(_:)``).
    func unitAttention(for nexus: ITNexus, consume: Bool) async -> SenseReason?
    /// Queues `reason` for the nexuses in `scope`.
    func establishUnitAttention(_ reason: SenseReason, scope: UnitAttentionScope) async
    /// Admits a command from `nexus`: reports (and consumes) the oldest unit
    /// attention when `reportUnitAttention` (SAM-5 §5.14), then checks
    /// reservations for `conflictClass` (SPC-2 §5.5.1, SPC-4 §5.13.1).
    func admit(_ nexus: ITNexus, conflictClass: ReservationConflictClass, reportUnitAttention: Bool) async
        -> CommandAdmission
    /// SPC-2 RESERVE: false when another nexus holds the reservation.
    func reserve(_ nexus: ITNexus) async -> Bool
    /// SPC-2 RELEASE: releases only when `nexus` holds the reservation (SPC-2 §7.16: otherwise a no-op);
    /// false (RESERVATION CONFLICT) when persistent reservations exist and `nexus` holds none (SPC-4 §5.13.3).
    func release(_ nexus: ITNexus) async -> Bool
    /// Applies a PERSISTENT RESERVE OUT and establishes the unit attentions it causes.
    func persistentReserveOut(
        _ out: PersistentReserveOut, _ parameters: PersistentReserveOutParameters, from nexus: ITNexus
    ) async
        -> PersistentReservations.Outcome
    /// Commits a PERSISTENT RESERVE OUT that was applied to a copy of
    /// ``persistentReservations()`` (and saved): `state` replaces the state and
    /// the outcome's unit attentions are established for nexuses other than `nexus`.
    func commitPersistentReserveOut(
        _ state: PersistentReservations, _ outcome: PersistentReservations.Outcome, from nexus: ITNexus
    ) async
    /// The persistent reservation state (PERSISTENT RESERVE IN).
    func persistentReservations() async -> PersistentReservations
    /// The nexus holding the SPC-2 reservation, if any.
    func spc2ReservationHolder() async -> ITNexus?
    /// Replaces the persistent reservation state (APTPL state loaded after a restart).
    func restorePersistentReservations(_ state: PersistentReservations) async
    /// Current mode page values.
    func modePages() async -> ModePageValues
    /// Stores new mode page values (MODE SELECT).
    func setModePages(_ values: ModePageValues) async
    /// Logical unit reset (SAM-5 §6.3.3): clears state that a reset clears
    /// (SPC-2 reservations, later). Unit attentions are set by the caller.
    func logicalUnitReset() async
}

/// ``LogicalUnitContext`` held in this process's memory.
public actor InMemoryLogicalUnitContext: LogicalUnitContext {
    /// Pending unit attentions per known nexus, oldest first.
    private var queues: [ITNexus: [SenseReason]] = [:]
    private var pages: ModePageValues = .defaults
    /// Holder of the SPC-2 reservation.
    private var reservationHolder: ITNexus?
    private var persistent = PersistentReservations()
    /// SAM-5 does not bound the queue; a bound keeps a silent nexus from growing it forever.
    static let maximumQueued = 16

    public init() {}

    public func nexusEstablished(_ nexus: ITNexus) {
        if queues[nexus] == nil { queues[nexus] = [.powerOnResetOrBusDeviceResetOccurred] }
    }

    public func nexusLost(_ nexus: ITNexus) {
        // The nexus is forgotten: when it returns it is new and gets POWER ON,
        // RESET, OR BUS DEVICE RESET OCCURRED (29/00), which SAM-5 allows for
        // I_T nexus loss and which libiscsi's helpers retry through.
        queues[nexus] = nil
        // SPC-2 §5.5.1: an I_T nexus loss releases its reservation.
        if reservationHolder == nexus { reservationHolder = nil }
    }

    public func admit(_ nexus: ITNexus, conflictClass: ReservationConflictClass, reportUnitAttention: Bool)
        -> CommandAdmission
    {
        if reportUnitAttention, let ua = unitAttention(for: nexus, consume: true) { return .unitAttention(ua) }
        if let holder = reservationHolder, holder != nexus, conflictClass != .allowed { return .reservationConflict }
        if persistent.conflicts(nexus, conflictClass) { return .reservationConflict }
        return .proceed
    }

    public func reserve(_ nexus: ITNexus) -> Bool {
        let decision = SPC2Reservation.reserve(nexus, holder: reservationHolder, persistent: persistent)
        reservationHolder = decision.holder
        return decision.granted
    }

    public func release(_ nexus: ITNexus) -> Bool {
        let decision = SPC2Reservation.release(nexus, holder: reservationHolder, persistent: persistent)
        reservationHolder = decision.holder
        return decision.granted
    }

    public func spc2ReservationHolder() -> ITNexus? { reservationHolder }

    public func unitAttention(for nexus: ITNexus, consume: Bool) -> SenseReason? {
        guard var queue = queues[nexus] else {
            queues[nexus] = consume ? [] : [.powerOnResetOrBusDeviceResetOccurred]
            return .powerOnResetOrBusDeviceResetOccurred
        }
        guard let first = queue.first else { return nil }
        if consume {
            queue.removeFirst()
            queues[nexus] = queue
        }
        return first
    }

    public func establishUnitAttention(_ reason: SenseReason, scope: UnitAttentionScope) {
        for nexus in Array(queues.keys) {
            switch scope {
            case .allNexuses: break
            case .allExcept(let n): if n == nexus { continue }
            case .only(let n): if n != nexus { continue }
            }
            add(reason, to: nexus)
        }
        if case .only(let n) = scope, queues[n] == nil { queues[n] = [reason] }
    }

    private func add(_ reason: SenseReason, to nexus: ITNexus) {
        var queue = queues[nexus] ?? []
        // A reset supersedes everything queued before it (SAM-5 §5.14: highest precedence).
        if reason.code.asc == 0x29 { queue.removeAll() }
        if !queue.contains(reason) && queue.count < Self.maximumQueued { queue.append(reason) }
        queues[nexus] = queue
    }

    public func persistentReserveOut(
        _ out: PersistentReserveOut, _ parameters: PersistentReserveOutParameters, from nexus: ITNexus
    )
        -> PersistentReservations.Outcome
    {
        var state = persistent
        let outcome = state.apply(out, parameters, from: nexus)
        commitPersistentReserveOut(state, outcome, from: nexus)
        return outcome
    }

    public func commitPersistentReserveOut(
        _ state: PersistentReservations, _ outcome: PersistentReservations.Outcome, from nexus: ITNexus
    ) {
        persistent = state
        // Unit attentions go to every known nexus a port stands for, never to the sender.
        for pending in outcome.unitAttentions {
            for n in Array(queues.keys) where n != nexus && pending.port.matches(n) { add(pending.reason, to: n) }
        }
    }

    public func persistentReservations() -> PersistentReservations { persistent }

    public func restorePersistentReservations(_ state: PersistentReservations) { persistent = state }

    public func modePages() -> ModePageValues { pages }

    public func setModePages(_ values: ModePageValues) { pages = values }

    /// SPC-2 §5.5.1: a logical unit reset releases the SPC-2 reservation.
    public func logicalUnitReset() { reservationHolder = nil }
}

/// The SPC-2 RESERVE/RELEASE rules as pure functions of the current holder and
/// the persistent reservation state, so a change can be decided (and saved)
/// before it is committed.
public enum SPC2Reservation {
    /// SPC-2 RESERVE from `nexus`: whether it is granted and the holder after it.
    public static func reserve(_ nexus: ITNexus, holder: ITNexus?, persistent: PersistentReservations)
        -> (granted: Bool, holder: ITNexus?)
    {
        // SPC-2 §7.21: held by another nexus → RESERVATION CONFLICT.
        if let holder, holder != nexus { return (false, holder) }
        // SPC-4 §5.13.3 with CRH = 1: while persistent registrations exist, RESERVE from the
        // persistent reservation holder completes with GOOD and changes nothing; from anyone else it conflicts.
        if !persistent.registrations.isEmpty || persistent.reservation != nil {
            return (persistent.isHolder(nexus), holder)
        }
        return (true, nexus)
    }

    /// SPC-2 RELEASE from `nexus`: whether it is GOOD and the holder after it.
    public static func release(_ nexus: ITNexus, holder: ITNexus?, persistent: PersistentReservations)
        -> (granted: Bool, holder: ITNexus?)
    {
        // SPC-4 §5.13.3 (CRH = 1): RELEASE under persistent reservations is GOOD only for a holder.
        if !persistent.registrations.isEmpty || persistent.reservation != nil {
            return (persistent.isHolder(nexus), holder)
        }
        // SPC-2 §7.16: releasing a reservation another nexus holds is a no-op.
        return (true, holder == nexus ? nil : holder)
    }
}
