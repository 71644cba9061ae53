import AdminAPI
import Logging
import MetadataStore
import SCSITarget

extension NodeAdminState {
    /// `DELETE /v1/luns/{id}/reservations`: an administrator's clear of the
    /// LUN's persistent reservations, committed as a context change like a
    /// PR OUT through any node (a compare-and-set on the LUN's context
    /// version, its request id recorded), so every node takes it at its next
    /// heartbeat and queues RESERVATIONS PREEMPTED for the registrants'
    /// nexuses. Logged at notice level with what was cleared.
    func clearReservations(target: String, lun: UInt64, requestID: String?) async throws -> ReservationStatus? {
        guard let before = try await reservations(target: target, lun: lun) else { return nil }
        let key = LUNKey(targetIQN: before.target, lun: lun)
        let store = StoreContextStore(client: cluster.client, key: key)
        let id = "admin-pr-clear-" + (requestID ?? RequestID.random().rawValue)
        // A conflict means a PR OUT through some node committed in between: decide again on the new state.
        for _ in 0..<8 {
            let current: VersionedLUNState
            do { current = try await store.load() } catch {
                throw AdminStateError("reading the reservations of \(key) failed: \(error)")
            }
            guard let (state, effects) = current.state.administrativelyCleared() else {
                logger.info("admin: nothing to clear", metadata: ["lun": "\(key)", "request-id": "\(id)"])
                return try await reservations(target: before.target, lun: lun)
            }
            let change = ContextChange(version: current.version + 1, state: state, effects: effects)
            let outcome: ContextCommit
            do { outcome = try await store.commit(change, expected: current.version, requestID: id) } catch {
                throw AdminStateError("clearing the reservations of \(key) failed: \(error)")
            }
            if case .committed(let version) = outcome {
                logger.notice(
                    "admin: persistent reservations cleared by an administrator",
                    metadata: [
                        "lun": "\(key)", "registrations": "\(current.state.persistent.registrations.count)",
                        "reservation": "\(current.state.persistent.reservation.map { "\($0.type)" } ?? "none")",
                        "context-version": "\(version)", "request-id": "\(id)",
                    ])
                return try await reservations(target: before.target, lun: lun)
            }
        }
        throw AdminStateError("the reservations of \(key) kept changing under the clear; try again")
    }
}
