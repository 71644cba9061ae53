import ISCSISession
import Logging
import MetadataStore

/// Keeps a node's login rules (every target's ACL and CHAP) equal to the
/// store's without a restart: the store has no watch, so the follower
/// re-reads the `acls` and `chap_credentials` of every target once a second
/// in one read transaction and replaces the rules the logins consult
/// (``TargetAccessRules``) when they differ. A change made through any node
/// is thus in force on every node within about a second (plus one store
/// round trip). While the store cannot be read, the last rules read stay in
/// force: a node without its quorum keeps admitting the initiators it
/// admitted, and it serves no I/O without its lease anyway. Sessions already
/// logged in are not closed by a removal: only new logins see it.
enum AccessRulesFollower {
    /// How often the store is read.
    static let interval: Duration = .seconds(1)

    /// Every target's access rules from its store rows. Pure: the records of
    /// all targets in, one ``TargetAccess`` per target out. A CHAP record
    /// with no initiator is the target's; one with an initiator is that
    /// initiator's; a `target` direction record is the mutual half of the
    /// `initiator` one beside it (alone it is ignored).
    static func rules(targets: [String], acls: [String: [String]], chap: [String: [CHAPRecord]]) -> [String:
        TargetAccess]
    {
        var result: [String: TargetAccess] = [:]
        for target in targets {
            let records = chap[target] ?? []
            var byInitiator: [String: CHAPCredentials] = [:]
            var targetWide: CHAPCredentials?
            for record in records where record.direction == .initiator {
                let mutual = records.first { $0.direction == .target && $0.initiatorIQN == record.initiatorIQN }
                let credentials = CHAPCredentials(
                    user: record.username, secret: record.secret, mutualUser: mutual?.username,
                    mutualSecret: mutual?.secret)
                if record.initiatorIQN.isEmpty {
                    targetWide = credentials
                } else {
                    byInitiator[record.initiatorIQN.lowercased()] = credentials
                }
            }
            result[target] = TargetAccess(
                allowedInitiators: acls[target] ?? [], chap: targetWide, initiatorCHAP: byInitiator)
        }
        return result
    }

    /// Reads every target's rules in one transaction.
    static func load(_ client: MetadataStoreClient) async throws -> [String: TargetAccess] {
        try await client.transaction { tx in
            let repository = StoreRepository(tx)
            let targets = try await repository.targets().map(\.iqn)
            var acls: [String: [String]] = [:]
            var chap: [String: [CHAPRecord]] = [:]
            for target in targets {
                acls[target] = try await repository.allowedInitiators(target: target)
                chap[target] = try await repository.chap(target: target)
            }
            return rules(targets: targets, acls: acls, chap: chap)
        }
    }

    /// Refreshes `rules` from the store every ``interval`` until cancelled.
    /// Logs when the rules change and when the store cannot be read (once
    /// per outage); never a secret: only target names and counts.
    static func follow(client: MetadataStoreClient, rules: TargetAccessRules, logger: Logger) async {
        var failing = false
        while !Task.isCancelled {
            do {
                let now = try await load(client)
                if failing { logger.info("access rules: store readable again") }
                failing = false
                if rules.replace(with: now) {
                    logger.info(
                        "access rules changed",
                        metadata: [
                            "targets": "\(now.count)",
                            "acl-entries": "\(now.values.reduce(0) { $0 + $1.allowedInitiators.count })",
                            "initiator-chap": "\(now.values.reduce(0) { $0 + $1.initiatorCHAP.count })",
                        ])
                }
            } catch {
                if !failing {
                    logger.warning("access rules: cannot read the store, keeping the last rules: \(error)")
                }
                failing = true
            }
            try? await Task.sleep(for: interval)
        }
    }
}
