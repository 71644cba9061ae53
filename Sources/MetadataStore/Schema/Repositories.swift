import ClusterModel

/// Typed access to the store's tables over any `SQLExecutor`: the client
/// (each call on its own) or a `SQLTransaction` (calls commit together).
/// Writes are upserts, so re-applying the same state is harmless.
public struct StoreRepository: Sendable {
    /// Where the SQL runs.
    public let db: any SQLExecutor

    public init(_ db: any SQLExecutor) { self.db = db }

    // MARK: members

    public func upsertMember(_ m: MemberRecord) async throws {
        try await db.exec(
            """
            INSERT INTO members (node_id, store_address, peer_address, iscsi_portal, failure_domain, portals) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (node_id) DO UPDATE SET store_address = excluded.store_address, peer_address = excluded.peer_address,
            iscsi_portal = excluded.iscsi_portal, failure_domain = excluded.failure_domain, portals = excluded.portals
            """,
            [
                .int(m.nodeID.rawValue), .text(m.storeAddress), .optionalText(m.peerAddress), .optionalText(m.iscsiPortal), .int(m.failureDomain),
                .text(Self.portalsColumn(m.portals)),
            ])
    }

    public func members() async throws -> [MemberRecord] {
        try await db.query("SELECT * FROM members ORDER BY node_id").map { row in
            MemberRecord(
                nodeID: NodeID(try row.uint64("node_id")), storeAddress: try row.string("store_address"),
                peerAddress: try row.optionalString("peer_address"), iscsiPortal: try row.optionalString("iscsi_portal"),
                failureDomain: try row.uint64("failure_domain"), portals: Self.portals(try row.string("portals")))
        }
    }

    /// `members.portals`: the values space-separated. A value that is empty or
    /// holds whitespace would not read back as itself: a caller bug.
    static func portalsColumn(_ portals: [String]) -> String {
        for portal in portals {
            precondition(!portal.isEmpty && !portal.contains(where: \.isWhitespace), "portal \"\(portal)\" is not a TargetAddress value")
        }
        return portals.joined(separator: " ")
    }

    /// The values of a `members.portals` column.
    static func portals(_ column: String) -> [String] {
        column.split(separator: " ").map(String.init)
    }

    public func deleteMember(_ id: NodeID) async throws {
        try await db.exec("DELETE FROM members WHERE node_id = ?", [.int(id.rawValue)])
    }

    // MARK: targets

    public func upsertTarget(_ t: TargetRecord) async throws {
        try await db.exec(
            """
            INSERT INTO targets (iqn, alias, portal_group_tag) VALUES (?, ?, ?)
            ON CONFLICT (iqn) DO UPDATE SET alias = excluded.alias, portal_group_tag = excluded.portal_group_tag
            """,
            [.text(t.iqn), .optionalText(t.alias), .int(t.portalGroupTag)])
    }

    public func targets() async throws -> [TargetRecord] {
        try await db.query("SELECT * FROM targets ORDER BY iqn").map { row in
            TargetRecord(iqn: try row.string("iqn"), alias: try row.optionalString("alias"), portalGroupTag: UInt16(truncatingIfNeeded: try row.int64("portal_group_tag")))
        }
    }

    /// Deletes the target and everything hanging off it.
    public func deleteTarget(_ iqn: String) async throws {
        for table in [
            "pr_registrations", "pr_reservation", "pr_generation", "spc2_reservations", "mode_pages", "context_events",
            "lun_masks", "replica_moves", "sub_unit_replicas", "sub_units", "lun_layouts", "luns", "acls", "chap_credentials",
        ] {
            try await db.exec("DELETE FROM \(table) WHERE target_iqn = ?", [.text(iqn)])
        }
        try await db.exec("DELETE FROM targets WHERE iqn = ?", [.text(iqn)])
    }

    // MARK: LUNs

    /// Inserts or updates geometry/identity; never lowers context_version.
    public func upsertLUN(_ l: LUNRecord) async throws {
        try await db.exec(
            """
            INSERT INTO luns (target_iqn, lun, size_bytes, block_size, naa_id, serial, backing, context_version)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (target_iqn, lun) DO UPDATE SET size_bytes = excluded.size_bytes, block_size = excluded.block_size,
            naa_id = excluded.naa_id, serial = excluded.serial, backing = excluded.backing,
            context_version = max(luns.context_version, excluded.context_version)
            """,
            l.key.parameters + [.int(l.sizeBytes), .int(l.blockSize), .blob(l.naaID), .text(l.serial), .text(l.backing), .int(l.contextVersion)])
    }

    public func luns(target: String? = nil) async throws -> [LUNRecord] {
        let rows: [SQLRow]
        if let target {
            rows = try await db.query("SELECT * FROM luns WHERE target_iqn = ? ORDER BY lun", [.text(target)])
        } else {
            rows = try await db.query("SELECT * FROM luns ORDER BY target_iqn, lun")
        }
        return try rows.map(Self.lun)
    }

    public func lun(_ key: LUNKey) async throws -> LUNRecord? {
        try await db.query("SELECT * FROM luns WHERE target_iqn = ? AND lun = ?", key.parameters).first.map(Self.lun)
    }

    private static func lun(_ row: SQLRow) throws -> LUNRecord {
        LUNRecord(
            key: LUNKey(targetIQN: try row.string("target_iqn"), lun: try row.uint64("lun")),
            sizeBytes: try row.uint64("size_bytes"), blockSize: UInt32(truncatingIfNeeded: try row.int64("block_size")),
            naaID: try row.bytes("naa_id"), serial: try row.string("serial"), backing: try row.string("backing"),
            contextVersion: try row.uint64("context_version"))
    }

    /// Sets the LUN's capacity (an online resize; the sub-unit map must be
    /// grown in the same transaction: ``appendSubUnits(_:_:)``).
    public func setLUNSize(_ key: LUNKey, sizeBytes: UInt64) async throws {
        try await db.exec("UPDATE luns SET size_bytes = ? WHERE target_iqn = ? AND lun = ?", [.int(sizeBytes)] + key.parameters)
    }

    public func deleteLUN(_ key: LUNKey) async throws {
        for table in [
            "pr_registrations", "pr_reservation", "pr_generation", "spc2_reservations", "mode_pages", "context_events",
            "lun_masks", "replica_moves", "sub_unit_replicas", "sub_units", "lun_layouts", "luns",
        ] {
            try await db.exec("DELETE FROM \(table) WHERE target_iqn = ? AND lun = ?", key.parameters)
        }
    }

    /// Increments the LU's context_version and returns the new value. Call it
    /// in the same transaction as the context change it announces.
    @discardableResult
    public func bumpContextVersion(_ key: LUNKey) async throws -> UInt64 {
        try await db.exec("UPDATE luns SET context_version = context_version + 1 WHERE target_iqn = ? AND lun = ?", key.parameters)
        guard let row = try await db.query("SELECT context_version FROM luns WHERE target_iqn = ? AND lun = ?", key.parameters).first else {
            throw MetadataStoreError(.decoding("no LUN \(key)"))
        }
        return try row.uint64("context_version")
    }

    public func contextVersion(_ key: LUNKey) async throws -> UInt64? {
        try await db.query("SELECT context_version FROM luns WHERE target_iqn = ? AND lun = ?", key.parameters).first
            .map { try $0.uint64("context_version") }
    }

    // MARK: ACLs and CHAP

    public func allowInitiator(_ initiatorIQN: String, target: String) async throws {
        try await db.exec("INSERT OR IGNORE INTO acls (target_iqn, initiator_iqn) VALUES (?, ?)", [.text(target), .text(initiatorIQN)])
    }

    public func revokeInitiator(_ initiatorIQN: String, target: String) async throws {
        try await db.exec("DELETE FROM acls WHERE target_iqn = ? AND initiator_iqn = ?", [.text(target), .text(initiatorIQN)])
    }

    public func allowedInitiators(target: String) async throws -> [String] {
        try await db.query("SELECT initiator_iqn FROM acls WHERE target_iqn = ? ORDER BY initiator_iqn", [.text(target)])
            .map { try $0.string("initiator_iqn") }
    }

    public func upsertCHAP(_ c: CHAPRecord) async throws {
        try await db.exec(
            """
            INSERT INTO chap_credentials (target_iqn, initiator_iqn, direction, username, secret) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (target_iqn, initiator_iqn, direction) DO UPDATE SET username = excluded.username, secret = excluded.secret
            """,
            [.text(c.targetIQN), .text(c.initiatorIQN), .text(c.direction.rawValue), .text(c.username), .text(c.secret)])
    }

    public func chap(target: String) async throws -> [CHAPRecord] {
        try await db.query("SELECT * FROM chap_credentials WHERE target_iqn = ? ORDER BY initiator_iqn, direction", [.text(target)]).map { row in
            guard let direction = CHAPRecord.Direction(rawValue: try row.string("direction")) else {
                throw MetadataStoreError(.decoding("chap direction"))
            }
            return CHAPRecord(
                targetIQN: try row.string("target_iqn"), initiatorIQN: try row.string("initiator_iqn"), direction: direction,
                username: try row.string("username"), secret: try row.string("secret"))
        }
    }

    // MARK: persistent reservations

    public func prState(_ key: LUNKey) async throws -> PRState {
        let generation = try await db.query("SELECT generation FROM pr_generation WHERE target_iqn = ? AND lun = ?", key.parameters)
            .first.map { UInt32(truncatingIfNeeded: try $0.int64("generation")) } ?? 0
        let registrations = try await db.query(
            "SELECT * FROM pr_registrations WHERE target_iqn = ? AND lun = ? ORDER BY rowid", key.parameters
        ).map { row in
            PRRegistrationRecord(
                initiatorPort: try row.string("initiator_port"), targetPort: try row.string("target_port"),
                reservationKey: try row.uint64("reservation_key"), aptpl: try row.bool("aptpl"))
        }
        let reservation = try await db.query("SELECT * FROM pr_reservation WHERE target_iqn = ? AND lun = ?", key.parameters).first.map { row in
            PRReservationRecord(
                holderInitiatorPort: try row.optionalString("holder_initiator_port"), holderTargetPort: try row.optionalString("holder_target_port"),
                reservationKey: try row.uint64("reservation_key"), type: UInt8(truncatingIfNeeded: try row.int64("type")),
                scope: UInt8(truncatingIfNeeded: try row.int64("scope")))
        }
        return PRState(generation: generation, registrations: registrations, reservation: reservation)
    }

    public func upsertPRRegistration(_ r: PRRegistrationRecord, lun key: LUNKey) async throws {
        try await db.exec(
            """
            INSERT INTO pr_registrations (target_iqn, lun, initiator_port, target_port, reservation_key, aptpl) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (target_iqn, lun, initiator_port, target_port) DO UPDATE SET reservation_key = excluded.reservation_key, aptpl = excluded.aptpl
            """,
            key.parameters + [.text(r.initiatorPort), .text(r.targetPort), .int(r.reservationKey), .boolean(r.aptpl)])
    }

    public func deletePRRegistration(initiatorPort: String, targetPort: String, lun key: LUNKey) async throws {
        try await db.exec(
            "DELETE FROM pr_registrations WHERE target_iqn = ? AND lun = ? AND initiator_port = ? AND target_port = ?",
            key.parameters + [.text(initiatorPort), .text(targetPort)])
    }

    public func clearPRRegistrations(lun key: LUNKey) async throws {
        try await db.exec("DELETE FROM pr_registrations WHERE target_iqn = ? AND lun = ?", key.parameters)
    }

    /// Sets (or with nil clears) the reservation.
    public func setPRReservation(_ r: PRReservationRecord?, lun key: LUNKey) async throws {
        guard let r else {
            try await db.exec("DELETE FROM pr_reservation WHERE target_iqn = ? AND lun = ?", key.parameters)
            return
        }
        try await db.exec(
            """
            INSERT INTO pr_reservation (target_iqn, lun, holder_initiator_port, holder_target_port, reservation_key, type, scope)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (target_iqn, lun) DO UPDATE SET holder_initiator_port = excluded.holder_initiator_port,
            holder_target_port = excluded.holder_target_port, reservation_key = excluded.reservation_key,
            type = excluded.type, scope = excluded.scope
            """,
            key.parameters + [.optionalText(r.holderInitiatorPort), .optionalText(r.holderTargetPort), .int(r.reservationKey), .int(r.type), .int(r.scope)])
    }

    /// Sets PRgeneration (SPC-4 §6.15.2: it wraps at 2^32).
    public func setPRGeneration(_ generation: UInt32, lun key: LUNKey) async throws {
        try await db.exec(
            """
            INSERT INTO pr_generation (target_iqn, lun, generation) VALUES (?, ?, ?)
            ON CONFLICT (target_iqn, lun) DO UPDATE SET generation = excluded.generation
            """,
            key.parameters + [.int(generation)])
    }

    // MARK: SPC-2 reservations

    public func spc2Reservation(_ key: LUNKey) async throws -> SPC2ReservationRecord? {
        try await db.query("SELECT * FROM spc2_reservations WHERE target_iqn = ? AND lun = ?", key.parameters).first.map { row in
            SPC2ReservationRecord(holderInitiatorPort: try row.string("holder_initiator_port"), holderTargetPort: try row.string("holder_target_port"))
        }
    }

    /// Sets (or with nil releases) the SPC-2 reservation.
    public func setSPC2Reservation(_ r: SPC2ReservationRecord?, lun key: LUNKey) async throws {
        guard let r else {
            try await db.exec("DELETE FROM spc2_reservations WHERE target_iqn = ? AND lun = ?", key.parameters)
            return
        }
        try await db.exec(
            """
            INSERT INTO spc2_reservations (target_iqn, lun, holder_initiator_port, holder_target_port) VALUES (?, ?, ?, ?)
            ON CONFLICT (target_iqn, lun) DO UPDATE SET holder_initiator_port = excluded.holder_initiator_port,
            holder_target_port = excluded.holder_target_port
            """,
            key.parameters + [.text(r.holderInitiatorPort), .text(r.holderTargetPort)])
    }

    // MARK: mode pages

    public func modePages(_ key: LUNKey) async throws -> [ModePageRecord] {
        try await db.query("SELECT * FROM mode_pages WHERE target_iqn = ? AND lun = ? ORDER BY page_code, subpage_code", key.parameters).map { row in
            ModePageRecord(
                pageCode: UInt8(truncatingIfNeeded: try row.int64("page_code")), subpageCode: UInt8(truncatingIfNeeded: try row.int64("subpage_code")),
                data: try row.bytes("data"))
        }
    }

    public func upsertModePage(_ p: ModePageRecord, lun key: LUNKey) async throws {
        try await db.exec(
            """
            INSERT INTO mode_pages (target_iqn, lun, page_code, subpage_code, data) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (target_iqn, lun, page_code, subpage_code) DO UPDATE SET data = excluded.data
            """,
            key.parameters + [.int(p.pageCode), .int(p.subpageCode), .blob(p.data)])
    }

    // MARK: ALUA

    public func aluaStates() async throws -> [ALUAStateRecord] {
        try await db.query("SELECT * FROM alua_states ORDER BY target_port_group").map { row in
            ALUAStateRecord(
                targetPortGroup: UInt16(truncatingIfNeeded: try row.int64("target_port_group")), nodeID: NodeID(try row.uint64("node_id")),
                state: UInt8(truncatingIfNeeded: try row.int64("state")), preferred: try row.bool("preferred"))
        }
    }

    public func upsertALUAState(_ a: ALUAStateRecord) async throws {
        try await db.exec(
            """
            INSERT INTO alua_states (target_port_group, node_id, state, preferred) VALUES (?, ?, ?, ?)
            ON CONFLICT (target_port_group) DO UPDATE SET node_id = excluded.node_id, state = excluded.state, preferred = excluded.preferred
            """,
            [.int(a.targetPortGroup), .int(a.nodeID.rawValue), .int(a.state), .boolean(a.preferred)])
    }
}
