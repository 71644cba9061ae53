extension StoreRepository {
    /// Lets `initiator` see LUN `lun` of `target` (a LUN with any such row is
    /// hidden from every initiator it does not name).
    public func maskLUN(_ lun: UInt64, of target: String, to initiator: String) async throws {
        try await db.exec(
            "INSERT INTO lun_masks (target_iqn, lun, initiator_iqn) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [.text(target), .int(lun), .text(initiator)])
    }

    /// Takes `initiator` out of LUN `lun`'s mask; true when it was in it.
    @discardableResult
    public func unmaskLUN(_ lun: UInt64, of target: String, from initiator: String) async throws -> Bool {
        try await db.exec(
            "DELETE FROM lun_masks WHERE target_iqn = ? AND lun = ? AND initiator_iqn = ?",
            [.text(target), .int(lun), .text(initiator)]
        ).rowsAffected > 0
    }

    /// `target`'s masks: by LUN, the initiators that see it (sorted).
    public func lunMasks(target: String) async throws -> [UInt64: [String]] {
        var masks: [UInt64: [String]] = [:]
        for row in try await db.query(
            "SELECT lun, initiator_iqn FROM lun_masks WHERE target_iqn = ? ORDER BY lun, initiator_iqn", [.text(target)])
        {
            masks[try row.uint64("lun"), default: []].append(try row.string("initiator_iqn"))
        }
        return masks
    }
}
