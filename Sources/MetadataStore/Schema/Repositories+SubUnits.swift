import ClusterModel

/// The distributed LUN's sub-unit map: `lun_layouts`, `sub_units` and
/// `sub_unit_replicas` (migration 0002_distributed_lun).
extension StoreRepository {
    /// The LUN's layout row, or nil when the LUN is not distributed.
    public func layout(_ key: LUNKey) async throws -> LUNLayoutRecord? {
        let rows = try await db.query(
            "SELECT lun_id, replicas, sub_unit_bytes FROM lun_layouts WHERE target_iqn = ? AND lun = ?", key.parameters)
        guard let row = rows.first else { return nil }
        return LUNLayoutRecord(
            lunID: LUNID(try row.uint64("lun_id")), replicationFactor: try row.int("replicas"),
            subUnitBytes: try row.uint64("sub_unit_bytes"))
    }

    /// Every distributed LUN: the keys of the `lun_layouts` rows, with each LUN's id.
    public func distributedLUNs() async throws -> [(key: LUNKey, lun: LUNID)] {
        try await db.query("SELECT target_iqn, lun, lun_id FROM lun_layouts ORDER BY target_iqn, lun", []).map { row in
            (LUNKey(targetIQN: try row.string("target_iqn"), lun: try row.uint64("lun")), LUNID(try row.uint64("lun_id")))
        }
    }

    /// The LUN's sub-units and replica sets, read with one statement (one
    /// snapshot, even on the client). Nil when the LUN has no layout. Throws
    /// `.decoding` when the rows do not make a whole map: the LUN row is
    /// missing, the sub-unit size does not fit the block size, an index or a
    /// rank is missing, a sub-unit has no replica, a state is unknown, or the
    /// number of sub-units is not the one the LUN's capacity needs.
    public func subUnitMap(_ key: LUNKey) async throws -> SubUnitMap? {
        let rows = try await db.query(
            """
            SELECT y.lun_id, y.replicas, y.sub_unit_bytes, l.block_size, l.size_bytes, s.idx, s.epoch, r.rank, r.node_id, r.state
            FROM lun_layouts y
            LEFT JOIN luns l ON l.target_iqn = y.target_iqn AND l.lun = y.lun
            LEFT JOIN sub_units s ON s.target_iqn = y.target_iqn AND s.lun = y.lun
            LEFT JOIN sub_unit_replicas r ON r.target_iqn = s.target_iqn AND r.lun = s.lun AND r.idx = s.idx
            WHERE y.target_iqn = ? AND y.lun = ?
            ORDER BY s.idx, r.rank
            """,
            key.parameters)
        guard let first = rows.first else { return nil }
        func inconsistent(_ what: String) -> MetadataStoreError {
            MetadataStoreError(.decoding("sub-unit map of \(key): \(what)"))
        }

        guard let rawBlockSize = try first.optionalInt64("block_size"),
            let sizeBytes = try first.optionalInt64("size_bytes")
        else {
            throw inconsistent("layout without a LUN row")
        }
        guard let blockSize = UInt32(exactly: rawBlockSize), blockSize > 0 else {
            throw inconsistent("block size \(rawBlockSize)")
        }
        let subUnitBytes = try first.uint64("sub_unit_bytes")
        guard subUnitBytes > 0, subUnitBytes % UInt64(blockSize) == 0 else {
            throw inconsistent("sub-unit size \(subUnitBytes) is not a multiple of block size \(blockSize)")
        }
        let replicationFactor = try first.int("replicas")
        guard replicationFactor > 0 else { throw inconsistent("replication factor \(replicationFactor)") }
        let blockCount = UInt64(bitPattern: sizeBytes) / UInt64(blockSize)
        let subUnitBlocks = subUnitBytes / UInt64(blockSize)
        let wantedCount = blockCount / subUnitBlocks + (blockCount % subUnitBlocks == 0 ? 0 : 1)
        guard wantedCount <= UInt64(UInt32.max) else { throw inconsistent("\(wantedCount) sub-units") }
        let layout = SubUnitLayout(blockSize: blockSize, blockCount: blockCount, subUnitBlocks: subUnitBlocks)

        // Rows come ordered by (idx, rank); the LEFT JOINs give one row with
        // a NULL idx when there are no sub-units, and a NULL rank for a
        // sub-unit without replicas.
        var subUnits: [ReplicaSet] = []
        var index: Int64 = -1
        var epoch = Epoch(rawValue: 0)
        var replicas: [Replica] = []
        func finishSubUnit() throws(MetadataStoreError) {
            guard index >= 0 else { return }
            guard !replicas.isEmpty else { throw inconsistent("sub-unit \(index) has no replica") }
            subUnits.append(ReplicaSet(epoch: epoch, replicas: replicas))
        }
        for row in rows {
            guard let idx = try row.optionalInt64("idx") else { continue }
            if idx != index {
                try finishSubUnit()
                guard idx == Int64(subUnits.count) else {
                    throw inconsistent("sub-unit \(subUnits.count) is missing (next is \(idx))")
                }
                index = idx
                epoch = Epoch(rawValue: try row.uint64("epoch"))
                replicas = []
            }
            guard let rank = try row.optionalInt64("rank") else { continue }
            guard rank == Int64(replicas.count) else {
                throw inconsistent("sub-unit \(idx) lacks replica rank \(replicas.count)")
            }
            let stateText = try row.string("state")
            guard let state = ReplicaState(rawValue: stateText) else {
                throw inconsistent("sub-unit \(idx) replica state \"\(stateText)\"")
            }
            replicas.append(Replica(node: NodeID(try row.uint64("node_id")), state: state))
        }
        try finishSubUnit()
        guard UInt64(subUnits.count) == wantedCount else {
            throw inconsistent("\(subUnits.count) sub-units stored, the capacity needs \(wantedCount)")
        }
        return SubUnitMap(
            lun: LUNID(try first.uint64("lun_id")), layout: layout, replicationFactor: replicationFactor,
            subUnits: subUnits)
    }

    /// Stores a new map for the LUN: its layout row, one `sub_units` row per
    /// index and the replica rows. Throws a constraint violation when the LUN
    /// already has a layout (check with `layout(_:)` first, in the same
    /// transaction), and `.decoding` when the map does not describe the LUN as
    /// stored: no LUN row, another block size or capacity, `subUnitBytes` not
    /// the layout's sub-unit size, or not one replica set per sub-unit. On the
    /// client it runs as one transaction; a retry after an unknown outcome is
    /// safe only through `mutate(requestID:_:)`.
    public func createSubUnitMap(_ key: LUNKey, _ map: SubUnitMap, subUnitBytes: UInt64) async throws {
        let layout = map.layout
        @Sendable func unfit(_ what: String) -> MetadataStoreError {
            MetadataStoreError(.decoding("sub-unit map for \(key): \(what)"))
        }
        let (layoutBytes, overflow) = UInt64(layout.blockSize).multipliedReportingOverflow(by: layout.subUnitBlocks)
        guard !overflow, layoutBytes == subUnitBytes else {
            throw unfit("sub-unit size \(subUnitBytes) is not \(layout.subUnitBlocks) blocks of \(layout.blockSize)")
        }
        guard map.replicationFactor > 0 else { throw unfit("replication factor \(map.replicationFactor)") }
        guard map.subUnits.count == Int(layout.subUnitCount) else {
            throw unfit("\(map.subUnits.count) replica sets for \(layout.subUnitCount) sub-units")
        }
        try await atomically { repo in
            guard let lun = try await repo.lun(key) else { throw unfit("no LUN") }
            guard lun.blockSize == layout.blockSize, lun.sizeBytes / UInt64(lun.blockSize) == layout.blockCount else {
                throw unfit(
                    "the LUN is \(lun.sizeBytes) bytes in blocks of \(lun.blockSize), "
                        + "the map \(layout.blockCount) blocks of \(layout.blockSize)")
            }
            try await repo.db.exec(
                "INSERT INTO lun_layouts (target_iqn, lun, lun_id, replicas, sub_unit_bytes) VALUES (?, ?, ?, ?, ?)",
                key.parameters + [.int(map.lun.rawValue), .int(map.replicationFactor), .int(subUnitBytes)])
            try await repo.insertKeyed(
                "sub_units", ["idx", "epoch"],
                map.subUnits.enumerated().map { [.int($0.offset), .int($0.element.epoch.rawValue)] }, key: key)
            try await repo.insertReplicas(map.subUnits.enumerated().map { (UInt32($0.offset), $0.element) }, key: key)
        }
    }

    /// Compare-and-set of one sub-unit's replica set: when the stored epoch
    /// is `epoch`, writes `set.epoch` and replaces the replica rows with
    /// `set.replicas`, all in one transaction (the client's own, or the one
    /// this repository runs on); otherwise changes nothing and returns false
    /// (also when the sub-unit does not exist). This is the conditional update
    /// on the old epoch that fences a stale primary (ARCHITECTURE.md "The
    /// data path"). After an unknown outcome a retry may see its own write
    /// and return false: re-read the map.
    ///
    /// The epoch must grow (`set.epoch > epoch`); a caller bug otherwise.
    public func replaceReplicaSet(_ key: LUNKey, index: UInt32, expecting epoch: Epoch, with set: ReplicaSet)
        async throws -> Bool
    {
        precondition(set.epoch > epoch, "epoch \(set.epoch.rawValue) does not follow \(epoch.rawValue)")
        return try await atomically { repo in
            let updated = try await repo.db.exec(
                "UPDATE sub_units SET epoch = ? WHERE target_iqn = ? AND lun = ? AND idx = ? AND epoch = ?",
                [.int(set.epoch.rawValue)] + key.parameters + [.int(index), .int(epoch.rawValue)])
            guard updated.rowsAffected == 1 else { return false }
            try await repo.db.exec(
                "DELETE FROM sub_unit_replicas WHERE target_iqn = ? AND lun = ? AND idx = ?",
                key.parameters + [.int(index)])
            try await repo.insertReplicas([(index, set)], key: key)
            return true
        }
    }

    /// Adds sub-units `sets` (indices following the stored ones) to the
    /// LUN's map: a LUN grown online. Run it in the transaction that sets
    /// the new capacity (``setLUNSize(_:sizeBytes:)``); a read of the map
    /// checks that the count fits the capacity.
    public func appendSubUnits(_ key: LUNKey, _ sets: [(index: UInt32, set: ReplicaSet)]) async throws {
        guard !sets.isEmpty else { return }
        try await insertKeyed("sub_units", ["idx", "epoch"], sets.map { [.int($0.index), .int($0.set.epoch.rawValue)] }, key: key)
        try await insertReplicas(sets, key: key)
    }

    // MARK: helpers

    /// Runs `body` in one transaction: a new one on the client, the open one
    /// inside a transaction.
    private func atomically<T: Sendable>(_ body: @Sendable (StoreRepository) async throws -> T) async throws -> T {
        if let client = db as? MetadataStoreClient {
            return try await client.transaction { tx in try await body(StoreRepository(tx)) }
        }
        return try await body(self)
    }

    private func insertReplicas(_ sets: [(index: UInt32, set: ReplicaSet)], key: LUNKey) async throws {
        let rows: [[DqliteValue]] = sets.flatMap { index, set in
            set.replicas.enumerated().map { rank, replica in
                [.int(index), .int(rank), .int(replica.node.rawValue), .text(replica.state.rawValue)]
            }
        }
        try await insertKeyed("sub_unit_replicas", ["idx", "rank", "node_id", "state"], rows, key: key)
    }

    /// dqlite's parameter tuple holds its count in 8 bits (tuple.h).
    private static let maximumParameters = Int(UInt8.max)

    /// Inserts rows of the LUN `key` into `table` as multi-row INSERTs with
    /// the key bound once (?1, ?2), in as few statements as the parameter
    /// limit allows: a large LUN's map is a few round trips, not thousands.
    private func insertKeyed(_ table: String, _ columns: [String], _ rows: [[DqliteValue]], key: LUNKey) async throws {
        let keyParameters = key.parameters
        let perStatement = (Self.maximumParameters - keyParameters.count) / columns.count
        let names = (["target_iqn", "lun"] + columns).joined(separator: ", ")
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(rows.count, start + perStatement)]
            var parameters = keyParameters
            var tuples: [String] = []
            for row in chunk {
                precondition(row.count == columns.count, "row width")
                let placeholders = (parameters.count + 1...parameters.count + row.count).map { "?\($0)" }
                tuples.append("(?1, ?2, " + placeholders.joined(separator: ", ") + ")")
                parameters += row
            }
            try await db.exec("INSERT INTO \(table) (\(names)) VALUES " + tuples.joined(separator: ", "), parameters)
            start += chunk.count
        }
    }
}
