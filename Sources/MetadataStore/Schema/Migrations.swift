/// A named schema change. Migrations are append-only: once released, a
/// migration's name and statements never change; new changes are new entries.
public struct Migration: Hashable, Sendable {
    /// Unique, ordered name ("0001_initial").
    public var name: String
    /// Statements run in one transaction.
    public var statements: [String]

    public init(_ name: String, _ statements: [String]) {
        self.name = name
        self.statements = statements
    }
}

/// Why migrating stopped.
public struct MigrationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Names the store has applied that this binary does not know: the store
    /// was migrated by a newer tesserad. Refuse to run rather than guess.
    public var unknownAppliedMigrations: [String]
    public var description: String { "store has migrations this binary does not know: \(unknownAppliedMigrations)" }
}

/// Applies `Schema.migrations` in order, each in its own transaction that
/// checks and records its name in `schema_migrations`, so running it again,
/// or on several nodes at once, is harmless.
public enum Migrator {
    /// Applies the migrations the store lacks; returns the names applied now.
    @discardableResult
    public static func migrate(
        _ client: MetadataStoreClient, migrations: [Migration] = Schema.migrations
    ) async throws -> [String] {
        try await client.exec(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
        let known = Set(migrations.map(\.name))
        let applied = try await client.query("SELECT name FROM schema_migrations ORDER BY name").map { try $0.string("name") }
        let unknown = applied.filter { !known.contains($0) }
        guard unknown.isEmpty else { throw MigrationError(unknownAppliedMigrations: unknown) }
        var appliedNow: [String] = []
        for migration in migrations where !applied.contains(migration.name) {
            let ran = try await client.transaction { tx in
                let seen = try await tx.query("SELECT 1 FROM schema_migrations WHERE name = ?", [.text(migration.name)])
                guard seen.isEmpty else { return false }
                for statement in migration.statements { try await tx.exec(statement) }
                try await tx.exec(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (?, strftime('%s','now'))", [.text(migration.name)])
                return true
            }
            if ran { appliedNow.append(migration.name) }
        }
        return appliedNow
    }

    /// Names recorded in `schema_migrations`, in order.
    public static func appliedMigrations(_ client: MetadataStoreClient) async throws -> [String] {
        try await client.query("SELECT name FROM schema_migrations ORDER BY name").map { try $0.string("name") }
    }
}

/// The store's schema, as its list of migrations.
public enum Schema {
    /// Every migration, oldest first. Append only.
    public static let migrations: [Migration] = [
        Migration("0001_initial", [
            // Idempotency table for MetadataStoreClient.mutate(requestID:).
            """
            CREATE TABLE applied_requests (
                id TEXT PRIMARY KEY,
                applied_at INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE members (
                node_id INTEGER PRIMARY KEY,
                store_address TEXT NOT NULL,
                peer_address TEXT,
                iscsi_portal TEXT,
                failure_domain INTEGER NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE targets (
                iqn TEXT PRIMARY KEY,
                alias TEXT,
                portal_group_tag INTEGER NOT NULL DEFAULT 1
            )
            """,
            """
            CREATE TABLE luns (
                target_iqn TEXT NOT NULL REFERENCES targets(iqn) ON DELETE CASCADE,
                lun INTEGER NOT NULL,
                size_bytes INTEGER NOT NULL,
                block_size INTEGER NOT NULL,
                naa_id BLOB NOT NULL,
                serial TEXT NOT NULL,
                backing TEXT NOT NULL DEFAULT '',
                context_version INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (target_iqn, lun)
            )
            """,
            """
            CREATE TABLE acls (
                target_iqn TEXT NOT NULL REFERENCES targets(iqn) ON DELETE CASCADE,
                initiator_iqn TEXT NOT NULL,
                PRIMARY KEY (target_iqn, initiator_iqn)
            )
            """,
            """
            CREATE TABLE chap_credentials (
                target_iqn TEXT NOT NULL REFERENCES targets(iqn) ON DELETE CASCADE,
                initiator_iqn TEXT NOT NULL DEFAULT '',
                direction TEXT NOT NULL CHECK (direction IN ('initiator', 'target')),
                username TEXT NOT NULL,
                secret TEXT NOT NULL,
                PRIMARY KEY (target_iqn, initiator_iqn, direction)
            )
            """,
            """
            CREATE TABLE pr_registrations (
                target_iqn TEXT NOT NULL,
                lun INTEGER NOT NULL,
                initiator_port TEXT NOT NULL,
                target_port TEXT NOT NULL,
                reservation_key INTEGER NOT NULL,
                aptpl INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (target_iqn, lun, initiator_port, target_port),
                FOREIGN KEY (target_iqn, lun) REFERENCES luns(target_iqn, lun) ON DELETE CASCADE
            )
            """,
            """
            CREATE TABLE pr_reservation (
                target_iqn TEXT NOT NULL,
                lun INTEGER NOT NULL,
                holder_initiator_port TEXT,
                holder_target_port TEXT,
                reservation_key INTEGER NOT NULL,
                type INTEGER NOT NULL,
                scope INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (target_iqn, lun),
                FOREIGN KEY (target_iqn, lun) REFERENCES luns(target_iqn, lun) ON DELETE CASCADE
            )
            """,
            """
            CREATE TABLE pr_generation (
                target_iqn TEXT NOT NULL,
                lun INTEGER NOT NULL,
                generation INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (target_iqn, lun),
                FOREIGN KEY (target_iqn, lun) REFERENCES luns(target_iqn, lun) ON DELETE CASCADE
            )
            """,
            """
            CREATE TABLE spc2_reservations (
                target_iqn TEXT NOT NULL,
                lun INTEGER NOT NULL,
                holder_initiator_port TEXT NOT NULL,
                holder_target_port TEXT NOT NULL,
                PRIMARY KEY (target_iqn, lun),
                FOREIGN KEY (target_iqn, lun) REFERENCES luns(target_iqn, lun) ON DELETE CASCADE
            )
            """,
            """
            CREATE TABLE mode_pages (
                target_iqn TEXT NOT NULL,
                lun INTEGER NOT NULL,
                page_code INTEGER NOT NULL,
                subpage_code INTEGER NOT NULL DEFAULT 0,
                data BLOB NOT NULL,
                PRIMARY KEY (target_iqn, lun, page_code, subpage_code),
                FOREIGN KEY (target_iqn, lun) REFERENCES luns(target_iqn, lun) ON DELETE CASCADE
            )
            """,
            """
            CREATE TABLE alua_states (
                target_port_group INTEGER PRIMARY KEY,
                node_id INTEGER NOT NULL,
                state INTEGER NOT NULL,
                preferred INTEGER NOT NULL DEFAULT 0
            )
            """,
        ]),
        Migration("0002_distributed_lun", [
            // The node's iSCSI portals as SendTargets TargetAddress values
            // "host:port,tag" (RFC 7143 §13.8), space-separated; '' for none.
            "ALTER TABLE members ADD COLUMN portals TEXT NOT NULL DEFAULT ''",
            // How a LUN is cut into sub-units (ARCHITECTURE.md "Words"). lun_id
            // is the UInt64 LUNID bit-cast to INTEGER (it may be negative here).
            """
            CREATE TABLE lun_layouts (
                target_iqn TEXT NOT NULL,
                lun INTEGER NOT NULL,
                lun_id INTEGER NOT NULL,
                replicas INTEGER NOT NULL,
                sub_unit_bytes INTEGER NOT NULL,
                PRIMARY KEY (target_iqn, lun),
                FOREIGN KEY (target_iqn, lun) REFERENCES luns(target_iqn, lun) ON DELETE CASCADE
            )
            """,
            // One row per sub-unit index; epoch is the replica set's fencing epoch.
            """
            CREATE TABLE sub_units (
                target_iqn TEXT NOT NULL,
                lun INTEGER NOT NULL,
                idx INTEGER NOT NULL,
                epoch INTEGER NOT NULL,
                PRIMARY KEY (target_iqn, lun, idx),
                FOREIGN KEY (target_iqn, lun) REFERENCES luns(target_iqn, lun) ON DELETE CASCADE
            )
            """,
            // A sub-unit's replica set in order: rank 0 is the primary.
            """
            CREATE TABLE sub_unit_replicas (
                target_iqn TEXT NOT NULL,
                lun INTEGER NOT NULL,
                idx INTEGER NOT NULL,
                rank INTEGER NOT NULL,
                node_id INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('in-sync', 'stale', 'resyncing')),
                PRIMARY KEY (target_iqn, lun, idx, rank),
                FOREIGN KEY (target_iqn, lun, idx) REFERENCES sub_units(target_iqn, lun, idx) ON DELETE CASCADE
            )
            """,
        ]),
        Migration("0003_shared_context", [
            // The effects of each context change (unit attentions, task aborts),
            // as the SCSI layer encodes them, by the version the change made: a node
            // that missed the push reads the versions after its own. request_id
            // settles an in-doubt commit. Only the last few hundred are kept.
            """
            CREATE TABLE context_events (
                target_iqn TEXT NOT NULL,
                lun INTEGER NOT NULL,
                version INTEGER NOT NULL,
                request_id TEXT NOT NULL,
                effects BLOB NOT NULL,
                PRIMARY KEY (target_iqn, lun, version),
                FOREIGN KEY (target_iqn, lun) REFERENCES luns(target_iqn, lun) ON DELETE CASCADE
            )
            """,
            // The lease heartbeat writes here: a write is committed only through the
            // quorum (a read the leader may answer alone proves nothing).
            """
            CREATE TABLE node_leases (
                node_id INTEGER PRIMARY KEY,
                beats INTEGER NOT NULL
            )
            """,
        ]),
        // A node declared dead is fenced: its renewals fail until it rejoins
        // (reloads every map, then clears the flag), so a lease cannot be
        // renewed by a heartbeat that commits after the others failed it over.
        Migration("0004_fencing", [
            "ALTER TABLE node_leases ADD COLUMN fenced INTEGER NOT NULL DEFAULT 0"
        ]),
        // Each node's live iSCSI sessions, as it last published them (one row
        // a node, rewritten when its set changes), so any node can list the
        // cluster's; and the closes asked of a node through another one, which
        // the owning node carries out and deletes.
        Migration("0005_sessions", [
            """
            CREATE TABLE node_sessions (
                node_id INTEGER PRIMARY KEY,
                sessions TEXT NOT NULL,
                published_at INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE session_close_requests (
                node_id INTEGER NOT NULL,
                tsih INTEGER NOT NULL,
                requested_at INTEGER NOT NULL,
                PRIMARY KEY (node_id, tsih)
            )
            """,
        ]),
        // LUN masking: a LUN with rows here is seen only by the initiators
        // they name; a LUN without rows by every initiator the ACL admits.
        Migration("0006_lun_masks", [
            """
            CREATE TABLE lun_masks (
                target_iqn TEXT NOT NULL REFERENCES targets(iqn) ON DELETE CASCADE,
                lun INTEGER NOT NULL,
                initiator_iqn TEXT NOT NULL,
                PRIMARY KEY (target_iqn, lun, initiator_iqn)
            )
            """
        ]),
        // Node drain and add: the members being drained (no new replica goes
        // to them; their replicas move away), the replica moves each
        // sub-unit's primary carries out, the members removed for good
        // (a removed node may not join again under the same id), and each
        // node's published resync progress.
        Migration("0007_node_changes", [
            """
            CREATE TABLE member_drains (
                node_id INTEGER PRIMARY KEY,
                requested_at INTEGER NOT NULL,
                planned INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE replica_moves (
                target_iqn TEXT NOT NULL,
                lun INTEGER NOT NULL,
                idx INTEGER NOT NULL,
                from_node INTEGER NOT NULL,
                to_node INTEGER NOT NULL,
                planned_at INTEGER NOT NULL,
                PRIMARY KEY (target_iqn, lun, idx, from_node)
            )
            """,
            """
            CREATE TABLE removed_members (
                node_id INTEGER PRIMARY KEY,
                removed_at INTEGER NOT NULL
            )
            """,
            // Each node's running resyncs (it runs those it is primary of), so
            // any node can show every resync's progress.
            """
            CREATE TABLE node_resyncs (
                node_id INTEGER PRIMARY KEY,
                resyncs TEXT NOT NULL,
                published_at INTEGER NOT NULL
            )
            """,
        ]),
        // What each node's TOML wrote into the store, one row per item (a
        // target, a target's ACL and CHAP, a LUN), with a digest of what the
        // TOML said, the node and the time: a later start skips an item
        // already seeded, so what an administrator changed or deleted
        // through the cluster is not brought back.
        Migration("0008_seeded_items", [
            """
            CREATE TABLE seeded_items (
                item TEXT PRIMARY KEY,
                digest TEXT NOT NULL,
                node_id INTEGER NOT NULL,
                seeded_at INTEGER NOT NULL
            )
            """
        ]),
        // The size at which each node serves each LUN, as it published it
        // after acting on a change (JSON: "<target>/<lun>" to bytes), so a
        // resize or a new LUN can be followed until every node serves it.
        Migration("0009_served_sizes", [
            """
            CREATE TABLE node_served_luns (
                node_id INTEGER PRIMARY KEY,
                luns TEXT NOT NULL,
                published_at INTEGER NOT NULL
            )
            """
        ]),
    ]
}
