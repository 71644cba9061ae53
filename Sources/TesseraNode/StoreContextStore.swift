import ClusterModel
import Foundation
import MetadataStore
import SCSITarget
import SCSIWire

/// One LUN's shared SCSI context in the replicated store: PR state in the
/// `pr_registrations`, `pr_reservation` and `pr_generation` rows, the SPC-2
/// holder in `spc2_reservations`, MODE SELECT values in `mode_pages`, the
/// version in `luns.context_version`, and each change's effects in
/// `context_events`. A commit is one transaction that checks the version
/// (compare-and-set) and records its request id, so two nodes deciding at
/// once cannot lose an update and a retry after an unknown outcome is harmless.
struct StoreContextStore: SharedContextStore {
    let client: MetadataStoreClient
    let key: LUNKey
    /// Versions whose effects are kept for nodes that missed a push.
    static let keptVersions: UInt64 = 256

    struct Missing: Error, CustomStringConvertible {
        var key: LUNKey
        var description: String { "no LUN \(key) in the store" }
    }

    func load() async throws -> VersionedLUNState {
        let key = self.key
        return try await client.transaction { tx in try await Self.read(StoreRepository(tx), key) }
    }

    func commit(_ change: ContextChange, expected: UInt64, requestID: String) async throws -> ContextCommit {
        let key = self.key
        let effects = try JSONEncoder().encode(change.effects)
        let outcome = try await client.mutate(requestID: RequestID(requestID)) { tx in
            let repository = StoreRepository(tx)
            let before = try await Self.read(repository, key)
            guard before.version == expected else { return false }
            try await Self.write(change.state, over: before.state, repository, key)
            let version = try await repository.bumpContextVersion(key)
            try await repository.recordContextEvent(
                ContextEventRecord(version: version, requestID: requestID, effects: [UInt8](effects)), lun: key)
            if version > Self.keptVersions {
                try await repository.trimContextEvents(lun: key, before: version - Self.keptVersions)
            }
            return true
        }
        switch outcome {
        case .applied(true), .alreadyApplied: return .committed(version: expected + 1)
        case .applied(false): return .conflict
        }
    }

    func changes(after version: UInt64) async throws -> (current: VersionedLUNState, effects: [RecordedEffects]) {
        let key = self.key
        let (current, records) = try await client.transaction { tx in
            let repository = StoreRepository(tx)
            return (try await Self.read(repository, key), try await repository.contextEvents(lun: key, after: version))
        }
        let decoder = JSONDecoder()
        let effects = try records.map {
            RecordedEffects(version: $0.version, effects: try decoder.decode([ContextEffect].self, from: Data($0.effects)))
        }
        return (current, effects)
    }

    static func read(_ repository: StoreRepository, _ key: LUNKey) async throws -> VersionedLUNState {
        guard let version = try await repository.contextVersion(key) else { throw Missing(key: key) }
        var state = SharedLUNState()
        state.persistent = try PRStateMapping.reservations(try await repository.prState(key))
        state.spc2Holder = try await repository.spc2Reservation(key).map {
            NexusName(initiatorPort: $0.holderInitiatorPort, targetPort: $0.holderTargetPort)
        }
        // Only pages this target knows, at their own length: a row written by another version is ignored.
        for record in try await repository.modePages(key) where record.subpageCode == 0 {
            if let known = state.modePages.pages[record.pageCode], known.count == record.data.count {
                state.modePages.pages[record.pageCode] = record.data
            }
        }
        return VersionedLUNState(version: version, state: state)
    }

    /// Writes the parts of `state` that differ from `before`.
    static func write(_ state: SharedLUNState, over before: SharedLUNState, _ repository: StoreRepository, _ key: LUNKey)
        async throws
    {
        if state.persistent != before.persistent {
            try await repository.writePRState(PRStateMapping.record(state.persistent), lun: key)
        }
        if state.spc2Holder != before.spc2Holder {
            try await repository.setSPC2Reservation(
                state.spc2Holder.map {
                    SPC2ReservationRecord(holderInitiatorPort: $0.initiatorPort, holderTargetPort: $0.targetPort)
                }, lun: key)
        }
        for (code, page) in state.modePages.pages.sorted(by: { $0.key < $1.key }) where before.modePages.pages[code] != page {
            try await repository.upsertModePage(ModePageRecord(pageCode: code, data: page), lun: key)
        }
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
