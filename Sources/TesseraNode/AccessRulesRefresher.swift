import ISCSISession
import Logging
import SCSITarget
import Synchronization

/// Reads the store's access rules and LUN masks and puts them in force on
/// this node: the logins' ``TargetAccessRules``, the targets' ``LUNMasks``
/// (a target whose masks changed tells every nexus REPORTED LUNS DATA HAS
/// CHANGED). Two callers read: the follower, once a second, and the admin
/// API right after it committed an access change, so that the node that took
/// the change enforces it before it answers (a `tessera chap set` that has
/// returned is in force on the node it went through).
///
/// The reads may overlap, and the newest read wins: each read is numbered
/// when it starts, and one that started before the read last applied is
/// dropped. A read that starts later sees every change committed before it
/// started (the store's reads go through its leader), so a slow periodic
/// read can never put back the rules an admin change has just replaced.
final class AccessRulesRefresher: Sendable {
    typealias Load = @Sendable () async throws -> AccessRulesFollower.Snapshot

    private struct Reads {
        var started: UInt64 = 0
        var applied: UInt64 = 0
    }

    private let load: Load
    private let rules: TargetAccessRules
    private let masks: LUNMasks
    private let devices: @Sendable () -> [String: SCSITargetDevice]
    private let logger: Logger
    private let reads = Mutex(Reads())

    /// - Parameter devices: the targets served now, by name (told when their masks change).
    init(
        load: @escaping Load, rules: TargetAccessRules, masks: LUNMasks,
        devices: @escaping @Sendable () -> [String: SCSITargetDevice], logger: Logger
    ) {
        self.load = load
        self.rules = rules
        self.masks = masks
        self.devices = devices
        self.logger = logger
    }

    /// Reads the store once and applies what it read, unless a read that
    /// started later was applied meanwhile (then returns false and changes
    /// nothing). Throws when the store cannot be read; the rules in force stay.
    /// Logs a change of the rules (target names and counts, never a secret).
    @discardableResult
    func refresh() async throws -> Bool {
        let number = reads.withLock { reads in
            reads.started += 1
            return reads.started
        }
        let snapshot = try await load()
        let outcome = reads.withLock { reads -> (rules: Bool, masks: [(target: String, lun: UInt16)])? in
            guard number > reads.applied else { return nil }
            reads.applied = number
            return (rules.replace(with: snapshot.access), masks.replace(with: snapshot.masks))
        }
        guard let outcome else { return false }
        if outcome.rules {
            logger.info(
                "access rules changed",
                metadata: [
                    "targets": "\(snapshot.access.count)",
                    "acl-entries": "\(snapshot.access.values.reduce(0) { $0 + $1.allowedInitiators.count })",
                    "initiator-chap": "\(snapshot.access.values.reduce(0) { $0 + $1.initiatorCHAP.count })",
                ])
        }
        for target in Set(outcome.masks.map(\.target)).sorted() {
            let luns = outcome.masks.filter { $0.target == target }.map { "\($0.lun)" }.joined(separator: ",")
            logger.notice(
                "LUN masks changed; every nexus is told", metadata: ["target": "\(target)", "luns": "\(luns)"])
            let device = devices().first { $0.key.lowercased() == target.lowercased() }?.value
            await device?.reportedLUNsChanged()
        }
        return true
    }
}
