import ClusterModel
import MetadataStore
import SCSITarget
import SCSIWire

/// ``ReservationStateStore`` (the LU context store) on the replicated store
/// (issue 4: "the daemon keeps ... all SCSI context in the store"): PR state in
/// the `pr_registrations`, `pr_reservation` and `pr_generation` rows, the
/// SPC-2 holder in `spc2_reservations` and MODE SELECT values in `mode_pages`
/// of the LU whose serial number is the key. Every save bumps the LU's
/// `context_version` in the same transaction, is an idempotent mutation (one
/// request id per call), and is refused while the node's store lease has
/// lapsed (issue 4: a node without quorum for longer than the lease does not
/// acknowledge context changes). A node restart is not the LU's power loss
/// (the LU lives on in the cluster), so everything saved is restored.
public struct StoreReservationStateStore: ReservationStateStore {
    /// Why a save was not acknowledged.
    public struct Refused: Error, Hashable, Sendable, CustomStringConvertible {
        /// What went wrong.
        public var reason: String
        public var description: String { "reservation state not saved: \(reason)" }
    }

    let client: MetadataStoreClient
    let gate: any ContextChangeGate

    public init(client: MetadataStoreClient, gate: any ContextChangeGate) {
        self.client = client
        self.gate = gate
    }

    public func loadReservations(lun: String) async throws -> PersistentReservations? {
        let stored: PRState? = try await client.transaction { tx in
            let repository = StoreRepository(tx)
            guard let key = try await repository.lunKey(serial: lun) else { return nil }
            let generation = try await tx.query(
                "SELECT 1 FROM pr_generation WHERE target_iqn = ? AND lun = ?", [.text(key.targetIQN), .int(key.lun)])
            if generation.isEmpty { return nil }
            return try await repository.prState(key)
        }
        return try stored.map(PRStateMapping.reservations)
    }

    public var restoresAcrossNodeRestart: Bool { true }

    public func saveReservations(_ state: PersistentReservations, lun: String) async throws {
        let record = PRStateMapping.record(state)
        try await mutateContext(lun: lun) { repository, key in try await repository.writePRState(record, lun: key) }
    }

    /// The holder is kept as its initiator and target port names (SPC-2
    /// reservations belong to an I_T nexus, SPC-2 §5.5.1).
    public func saveSPC2Reservation(_ holder: ITNexus?, lun: String) async throws {
        let record = holder.map {
            SPC2ReservationRecord(holderInitiatorPort: $0.initiatorPortName, holderTargetPort: $0.targetPortName)
        }
        try await mutateContext(lun: lun) { repository, key in try await repository.setSPC2Reservation(record, lun: key) }
    }

    /// One `mode_pages` row per page (subpage 0), holding the page bytes as MODE SENSE returns them.
    public func saveModePages(_ values: ModePageValues, lun: String) async throws {
        let records = values.pages.sorted { $0.key < $1.key }.map { ModePageRecord(pageCode: $0.key, data: $0.value) }
        try await mutateContext(lun: lun) { repository, key in
            for record in records { try await repository.upsertModePage(record, lun: key) }
        }
    }

    public func loadModePages(lun: String) async throws -> ModePageValues? {
        let records: [ModePageRecord] = try await client.transaction { tx in
            let repository = StoreRepository(tx)
            guard let key = try await repository.lunKey(serial: lun) else { return [] }
            return try await repository.modePages(key)
        }
        if records.isEmpty { return nil }
        var values = ModePageValues.defaults
        // Only pages this target knows, at their own length: a row written by another version is ignored.
        for record in records where record.subpageCode == 0 {
            if let known = values.pages[record.pageCode], known.count == record.data.count {
                values.pages[record.pageCode] = record.data
            }
        }
        return values
    }

    /// Runs `change` and bumpContextVersion in one idempotent
    /// mutation, after checking the lease gate; throws ``Refused`` when the
    /// lease lapsed or the LU is not in the store.
    func mutateContext(
        lun: String, _ change: @escaping @Sendable (StoreRepository, LUNKey) async throws -> Void
    ) async throws {
        guard gate.mayChangeContext() else { throw Refused(reason: "store lease lapsed (no quorum)") }
        let outcome = try await client.mutate(requestID: .random()) { tx in
            let repository = StoreRepository(tx)
            guard let key = try await repository.lunKey(serial: lun) else { return false }
            try await change(repository, key)
            _ = try await repository.bumpContextVersion(key)
            return true
        }
        if outcome.value == false { throw Refused(reason: "no LUN with serial \(lun) in the store") }
    }
}

/// Pure mapping between SCSITarget's ``PersistentReservations`` and the
/// store's ``PRState`` rows. A registrant port becomes two texts: the
/// initiator (prefixed "device " for an initiator device name, SPEC_I_PT;
/// iSCSI names hold no space) and the relative target port identifier or
/// "*" for all target ports (ALL_TG_PT). APTPL is kept on each registration.
enum PRStateMapping {
    static let devicePrefix = "device "

    static func record(_ state: PersistentReservations) -> PRState {
        let registrations = state.registrations.map { registration in
            PRRegistrationRecord(
                initiatorPort: initiatorText(registration.port), targetPort: targetText(registration.port),
                reservationKey: registration.key, aptpl: state.aptpl)
        }
        let reservation = state.reservation.map { reservation in
            PRReservationRecord(
                holderInitiatorPort: initiatorText(reservation.holder), holderTargetPort: targetText(reservation.holder),
                reservationKey: state.registrations.first { $0.port == reservation.holder }?.key ?? 0,
                type: reservation.type.rawValue)
        }
        return PRState(generation: state.generation, registrations: registrations, reservation: reservation)
    }

    static func reservations(_ record: PRState) throws -> PersistentReservations {
        var state = PersistentReservations()
        state.generation = record.generation
        state.registrations = record.registrations.map {
            .init(port: port(initiator: $0.initiatorPort, target: $0.targetPort), key: $0.reservationKey)
        }
        state.reservation = try record.reservation.map { reservation in
            guard let type = PersistentReservationType(rawValue: reservation.type) else {
                throw MetadataStoreError(.decoding("PR type \(reservation.type)"))
            }
            return .init(
                holder: port(initiator: reservation.holderInitiatorPort ?? "", target: reservation.holderTargetPort ?? "*"),
                type: type)
        }
        state.aptpl = record.registrations.contains { $0.aptpl }
        return state
    }

    static func initiatorText(_ port: RegistrantPort) -> String {
        port.deviceName ? devicePrefix + port.initiator : port.initiator
    }

    static func targetText(_ port: RegistrantPort) -> String {
        port.relativeTargetPortIdentifier.map { String($0) } ?? "*"
    }

    static func port(initiator: String, target: String) -> RegistrantPort {
        let device = initiator.hasPrefix(devicePrefix)
        return RegistrantPort(
            initiator: device ? String(initiator.dropFirst(devicePrefix.count)) : initiator, deviceName: device,
            relativeTargetPortIdentifier: UInt16(target))
    }
}
