import ClusterModel

/// A LUN shrunk online (an administrator's forced resize): the statements
/// that cut the sub-unit map and keep the LUN's options with it.
extension StoreRepository {
    /// Drops the sub-units from `index` on (and their replica rows) from the
    /// LUN's map. Run it in the transaction that sets the smaller capacity
    /// (``setLUNSize(_:sizeBytes:)``); a read of the map checks that the
    /// count fits the capacity.
    public func dropSubUnits(_ key: LUNKey, from index: UInt32) async throws {
        for table in ["sub_unit_replicas", "sub_units"] {
            try await db.exec(
                "DELETE FROM \(table) WHERE target_iqn = ? AND lun = ? AND idx >= ?", key.parameters + [.int(index)])
        }
    }

    /// Replaces the LUN's `backing` options (JSON kept by the node daemon).
    public func setLUNBacking(_ key: LUNKey, backing: String) async throws {
        try await db.exec(
            "UPDATE luns SET backing = ? WHERE target_iqn = ? AND lun = ?", [.text(backing)] + key.parameters)
    }
}
