import ISCSISession
import Logging
import MetadataStore
import SCSITarget

/// Keeps a node's login rules (every target's ACL and CHAP) and its LUN
/// masks equal to the store's without a restart: the store has no watch, so
/// the follower re-reads the `acls`, `chap_credentials` and `lun_masks` of
/// every target once a second in one read transaction and replaces the rules
/// the logins consult (``TargetAccessRules``) and the masks the SCSI targets
/// consult (``LUNMasks``) when they differ; a mask change gives every nexus
/// of that target REPORTED LUNS DATA HAS CHANGED. A change made through any node
/// is in force on that node when its admin request returns (the admin API
/// reads the rules again after committing, ``AccessRulesRefresher``) and on
/// every other node within about a second (plus one store round trip).
/// While the store cannot be read, the last rules read stay in force: a node
/// without its quorum keeps admitting the initiators it admitted, and it
/// serves no I/O without its lease anyway. Sessions already
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

    /// What the follower reads: the login rules and the LUN masks, by target.
    struct Snapshot: Sendable {
        var access: [String: TargetAccess]
        var masks: LUNMasks.Table
    }

    /// Reads every target's rules and masks in one transaction.
    static func load(_ client: MetadataStoreClient) async throws -> Snapshot {
        try await client.transaction { tx in
            let repository = StoreRepository(tx)
            let targets = try await repository.targets().map(\.iqn)
            var acls: [String: [String]] = [:]
            var chap: [String: [CHAPRecord]] = [:]
            var masks: LUNMasks.Table = [:]
            for target in targets {
                acls[target] = try await repository.allowedInitiators(target: target)
                chap[target] = try await repository.chap(target: target)
                for (lun, initiators) in try await repository.lunMasks(target: target) {
                    guard let number = UInt16(exactly: lun) else { continue }
                    masks[target, default: [:]][number] = Set(initiators)
                }
            }
            return Snapshot(access: rules(targets: targets, acls: acls, chap: chap), masks: masks)
        }
    }

    /// Refreshes the rules and masks (``AccessRulesRefresher``) every
    /// ``interval`` until cancelled. Logs when the store cannot be read (once
    /// per outage) and when it is readable again.
    static func follow(_ refresher: AccessRulesRefresher, logger: Logger) async {
        var failing = false
        while !Task.isCancelled {
            do {
                try await refresher.refresh()
                if failing { logger.info("access rules: store readable again") }
                failing = false
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
