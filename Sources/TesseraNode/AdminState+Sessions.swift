import AdminAPI
import ClusterModel
import Foundation
import ISCSITargetServer
import Logging
import MetadataStore

/// The session resources: this node's own sessions from its iSCSI server,
/// the others' as they last published them (``SessionPublisher``).
extension NodeAdminState {
    func sessions() async throws -> [SessionStatus] {
        let me = cluster.id
        let published = try await read("the sessions") { try await StoreRepository(cluster.client).publishedSessions() }
        var all = localSessions(source: "live") ?? []
        for entry in published where entry.node != me {
            guard let listed = try? AdminJSON.decoder.decode([SessionStatus].self, from: Data(entry.json.utf8)) else {
                logger.warning("a node's published session list does not decode; left out", metadata: ["node": "\(entry.node)"])
                continue
            }
            let down = memberVerdict(entry.node).map { $0 != "alive" } ?? false
            all += listed.map { session in
                var session = session
                session.node = entry.node.rawValue
                session.source = down ? "node_down" : "published"
                return session
            }
        }
        return all.sorted { ($0.node, $0.tsih) < ($1.node, $1.tsih) }
    }

    func closeSession(node: UInt64, tsih: UInt16) async throws -> SessionClose? {
        guard let session = try await sessions().first(where: { $0.node == node && $0.tsih == tsih }) else { return nil }
        if node == cluster.id.rawValue {
            guard let server = iscsiServer, server.closeSession(tsih: tsih, reason: "admin API") else { return nil }
            logger.notice(
                "session closed through the admin API",
                metadata: ["tsih": "\(tsih)", "initiator": "\(session.initiatorPort)", "portal": "\(session.portal)"])
            return SessionClose(session: session, outcome: "closed")
        }
        try await read("the close request") {
            try await StoreRepository(cluster.client).requestSessionClose(NodeID(node), tsih: tsih)
        }
        logger.notice(
            "asked another node to close a session",
            metadata: ["node": "\(node)", "tsih": "\(tsih)", "initiator": "\(session.initiatorPort)"])
        return SessionClose(session: session, outcome: "requested")
    }

    /// This node's sessions as resources, nil before its iSCSI server runs.
    func localSessions(source: String) -> [SessionStatus]? {
        iscsiServer.map { server in Self.statuses(server.sessions, node: cluster.id, source: source) }
    }

    static func statuses(_ sessions: [ISCSISessionInfo], node: NodeID, source: String) -> [SessionStatus] {
        sessions.map { info in
            SessionStatus(
                node: node.rawValue, tsih: info.tsih, initiator: info.initiatorName,
                isid: SessionStatus.isidText(info.isid), target: info.targetName, portalGroup: info.portalGroupTag,
                portal: info.portal, initiatorAddress: info.initiatorAddress,
                loggedInAt: UInt64(max(0, info.loggedInAt.timeIntervalSince1970)), source: source)
        }
    }
}

/// Publishes this node's live sessions in the store and carries out the
/// closes asked of it through other nodes. Once a second: a write only when
/// the set changed (one statement, so a login storm costs a write a second),
/// and a read of this node's close requests.
enum SessionPublisher {
    static func follow(state: NodeAdminState, server: ISCSIServer, cluster: ClusterNode, logger: Logger) async {
        let repository = StoreRepository(cluster.client)
        var published: [SessionStatus]?
        while !Task.isCancelled {
            let current = state.localSessions(source: "published") ?? []
            if current != published {
                do {
                    try await repository.publishSessions(cluster.id, json: AdminJSON.encode(current))
                    published = current
                } catch {
                    logger.debug("publishing the session list failed; tried again", metadata: ["error": "\(error)"])
                }
            }
            if let requested = try? await repository.sessionCloseRequests(cluster.id), !requested.isEmpty {
                for tsih in requested where server.closeSession(tsih: tsih, reason: "asked through another node") {
                    logger.notice("session closed as asked through another node", metadata: ["tsih": "\(tsih)"])
                }
                try? await repository.removeSessionCloseRequests(cluster.id, tsihs: requested)
                // The closed connections leave the registry as they end: publish
                // the shorter list soon rather than a second later.
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
