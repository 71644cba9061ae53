import ClusterModel
import Foundation
import MetadataStore
import SCSITarget

/// ``ReservationStateStore`` on the replicated store (issue 4: "PR with APTPL
/// survive kill -9"): the state lives in the `pr_registrations`,
/// `pr_reservation` and `pr_generation` rows of the LU whose serial number is
/// the key, and every save bumps the LU's `context_version` in the same
/// transaction. A save is an idempotent mutation (one request id per call),
/// and is refused while the node's store lease has lapsed.
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

    public func saveReservations(_ state: PersistentReservations, lun: String) async throws {
        guard gate.mayChangeContext() else { throw Refused(reason: "store lease lapsed (no quorum)") }
        let record = PRStateMapping.record(state)
        let outcome = try await client.mutate(requestID: .random()) { tx in
            let repository = StoreRepository(tx)
            guard let key = try await repository.lunKey(serial: lun) else { return false }
            try await repository.replacePRState(record, lun: key)
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

    /// SCSITarget's types have no public memberwise initialisers, but they are
    /// Codable: build their JSON form and decode it.
    static func reservations(_ record: PRState) throws -> PersistentReservations {
        let mirror = Mirror(
            generation: record.generation,
            registrations: record.registrations.map {
                .init(port: port(initiator: $0.initiatorPort, target: $0.targetPort), key: $0.reservationKey)
            },
            reservation: try record.reservation.map { reservation in
                guard let type = PersistentReservationTypeCode(rawValue: reservation.type) else {
                    throw MetadataStoreError(.decoding("PR type \(reservation.type)"))
                }
                return .init(
                    holder: port(initiator: reservation.holderInitiatorPort ?? "", target: reservation.holderTargetPort ?? "*"),
                    type: type.rawValue)
            },
            aptpl: record.registrations.contains { $0.aptpl })
        return try JSONDecoder().decode(PersistentReservations.self, from: JSONEncoder().encode(mirror))
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

    /// The JSON shape of ``PersistentReservations`` (checked by a round-trip test).
    struct Mirror: Codable {
        struct Registration: Codable {
            var port: RegistrantPort
            var key: UInt64
        }
        struct Reservation: Codable {
            var holder: RegistrantPort
            var type: UInt8
        }
        var generation: UInt32
        var registrations: [Registration]
        var reservation: Reservation?
        var aptpl: Bool
    }

    /// PR TYPE codes (SPC-4 Table 172) the store accepts.
    enum PersistentReservationTypeCode: UInt8 {
        case writeExclusive = 1, exclusiveAccess = 3, writeExclusiveRegistrantsOnly = 5
        case exclusiveAccessRegistrantsOnly = 6, writeExclusiveAllRegistrants = 7, exclusiveAccessAllRegistrants = 8
    }
}
