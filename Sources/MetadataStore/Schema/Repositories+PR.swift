import ClusterModel

extension StoreRepository {
    /// Replaces the whole PR state of an LU (registrations, reservation,
    /// PRgeneration) and bumps its context_version; returns the new version.
    /// Run it on a transaction so that the state and the version change
    /// together (ARCHITECTURE.md "Shared context": a context change is one
    /// transaction). Throws `.decoding` when the LU is not in the store.
    @discardableResult
    public func replacePRState(_ state: PRState, lun key: LUNKey) async throws -> UInt64 {
        try await writePRState(state, lun: key)
        return try await bumpContextVersion(key)
    }

    /// ``replacePRState(_:lun:)`` without the context_version bump, for callers
    /// that announce several changes with one bump.
    public func writePRState(_ state: PRState, lun key: LUNKey) async throws {
        guard try await contextVersion(key) != nil else { throw MetadataStoreError(.decoding("no LUN \(key)")) }
        try await clearPRRegistrations(lun: key)
        for registration in state.registrations { try await upsertPRRegistration(registration, lun: key) }
        try await setPRReservation(state.reservation, lun: key)
        try await setPRGeneration(state.generation, lun: key)
    }

    /// The LU whose unit serial number (VPD 0x80) is `serial`, if any.
    public func lunKey(serial: String) async throws -> LUNKey? {
        try await db.query("SELECT target_iqn, lun FROM luns WHERE serial = ? ORDER BY target_iqn, lun LIMIT 1", [.text(serial)])
            .first.map { LUNKey(targetIQN: try $0.string("target_iqn"), lun: try $0.uint64("lun")) }
    }
}

extension StoreRepository {
    /// Deletes one set of CHAP credentials.
    public func deleteCHAP(target: String, initiatorIQN: String = "", direction: CHAPRecord.Direction) async throws {
        try await db.exec(
            "DELETE FROM chap_credentials WHERE target_iqn = ? AND initiator_iqn = ? AND direction = ?",
            [.text(target), .text(initiatorIQN), .text(direction.rawValue)])
    }
}
