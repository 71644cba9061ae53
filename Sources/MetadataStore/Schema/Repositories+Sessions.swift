import ClusterModel

/// A node's published session list: opaque JSON text (the admin API's
/// session resources), with when it was written (seconds since the epoch).
public struct PublishedSessions: Hashable, Sendable {
    public var node: NodeID
    public var json: String
    public var publishedAt: UInt64

    public init(node: NodeID, json: String, publishedAt: UInt64) {
        self.node = node
        self.json = json
        self.publishedAt = publishedAt
    }
}

extension StoreRepository {
    /// Replaces `node`'s published sessions: one statement, so it holds the
    /// store's write lock for no longer than its own commit.
    public func publishSessions(_ node: NodeID, json: String) async throws {
        try await db.exec(
            """
            INSERT INTO node_sessions (node_id, sessions, published_at) VALUES (?, ?, strftime('%s','now'))
            ON CONFLICT (node_id) DO UPDATE SET sessions = excluded.sessions, published_at = excluded.published_at
            """, [.int(node.rawValue), .text(json)])
    }

    /// Every node's published sessions, by node id.
    public func publishedSessions() async throws -> [PublishedSessions] {
        try await db.query("SELECT node_id, sessions, published_at FROM node_sessions ORDER BY node_id", []).map { row in
            PublishedSessions(
                node: NodeID(try row.uint64("node_id")), json: try row.string("sessions"),
                publishedAt: try row.uint64("published_at"))
        }
    }

    /// Asks `node` to close its session `tsih` (a repeated ask is one ask).
    public func requestSessionClose(_ node: NodeID, tsih: UInt16) async throws {
        try await db.exec(
            """
            INSERT INTO session_close_requests (node_id, tsih, requested_at) VALUES (?, ?, strftime('%s','now'))
            ON CONFLICT (node_id, tsih) DO NOTHING
            """, [.int(node.rawValue), .int(UInt64(tsih))])
    }

    /// The TSIHs `node` was asked to close.
    public func sessionCloseRequests(_ node: NodeID) async throws -> [UInt16] {
        try await db.query("SELECT tsih FROM session_close_requests WHERE node_id = ? ORDER BY tsih", [.int(node.rawValue)])
            .compactMap { UInt16(exactly: try $0.uint64("tsih")) }
    }

    /// Forgets `node`'s close requests for `tsihs` (carried out, or for no live session).
    public func removeSessionCloseRequests(_ node: NodeID, tsihs: [UInt16]) async throws {
        guard !tsihs.isEmpty else { return }
        let marks = tsihs.map { _ in "?" }.joined(separator: ", ")
        try await db.exec(
            "DELETE FROM session_close_requests WHERE node_id = ? AND tsih IN (\(marks))",
            [.int(node.rawValue)] + tsihs.map { .int(UInt64($0)) })
    }
}

extension StoreRepository {
    /// Forgets the request ids applied more than `seconds` ago (one
    /// statement); returns how many went. A retry with such an id would be
    /// applied again, so keep `seconds` far above any client's retry window.
    @discardableResult
    public func pruneAppliedRequests(olderThan seconds: UInt64) async throws -> UInt64 {
        try await db.exec(
            "DELETE FROM applied_requests WHERE applied_at < CAST(strftime('%s','now') AS INTEGER) - ?",
            [.int(seconds)]
        ).rowsAffected
    }
}
