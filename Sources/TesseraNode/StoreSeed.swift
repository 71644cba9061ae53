import AIOBlockStorage
import ClusterModel
import Foundation
import MetadataStore

/// What the TOML contributes to the store: targets, LUNs, ACLs and CHAP as
/// store records, applied once per cluster. Each item — a target (its alias
/// and portal group), a target's access rules (ACL and CHAP together), a
/// LUN — is recorded in the store when it is written (`seeded_items`: the
/// item, a digest of what the TOML said, the node, the time), and a later
/// start of any node skips an item already recorded, so what an
/// administrator changed or deleted through the cluster stays as it is.
/// A target or access item whose TOML text changed since it was recorded
/// (the file was edited) is applied again: a target is upserted, and its ACL
/// and CHAP become exactly the TOML's (revoking an initiator or dropping
/// CHAP in the file must take effect, never linger in the store). A LUN is
/// created once, when the store lacks it and it was never seeded, and never
/// changed by a TOML afterwards: a file that disagrees on its geometry or
/// replication is reported, field by field, with the store's value
/// (resizing is an administrator's action); one deleted through the cluster
/// is not created again. Targets and LUNs the TOML does not name are left
/// alone (the store, not this node's file, is the source of truth).
struct StoreSeed: Hashable, Sendable {
    /// One ACL entry.
    struct ACLEntry: Hashable, Sendable {
        /// Target name.
        var targetIQN: String
        /// Initiator allowed to log in.
        var initiatorIQN: String
    }

    /// Targets to upsert.
    var targets: [TargetRecord] = []
    /// LUNs to upsert (identity, geometry, backing options).
    var luns: [LUNRecord] = []
    /// ACL entries to add.
    var acls: [ACLEntry] = []
    /// CHAP credentials to upsert.
    var chap: [CHAPRecord] = []

    /// The seed of a parsed configuration. Pure. A LUN that names no
    /// `replicas` gets two when the cluster is meant to have several members,
    /// one on a lone node.
    init(_ configuration: NodeConfiguration) {
        let defaultReplicas = configuration.cluster.expectedMembers > 1 ? 2 : 1
        for target in configuration.targets {
            targets.append(TargetRecord(iqn: target.name, alias: target.alias, portalGroupTag: target.portalGroups.first ?? 1))
            for lun in target.luns {
                let identity = NodeRuntime.identity(targetName: target.name, lunID: lun.id)
                luns.append(
                    LUNRecord(
                        key: LUNKey(targetIQN: target.name, lun: UInt64(lun.id)), sizeBytes: lun.size, blockSize: lun.blockSize,
                        naaID: (0..<8).map { UInt8(truncatingIfNeeded: identity >> (56 - 8 * $0)) },
                        serial: lun.serial ?? NodeRuntime.defaultSerial(targetName: target.name, lunID: lun.id),
                        backing: StoredLUNOptions(lun, replicas: lun.replicas ?? defaultReplicas).encoded()))
            }
            acls += target.allowedInitiators.map { ACLEntry(targetIQN: target.name, initiatorIQN: $0) }
            if let credentials = target.chap {
                chap.append(CHAPRecord(targetIQN: target.name, direction: .initiator, username: credentials.user, secret: credentials.secret))
                if let user = credentials.mutualUser, let secret = credentials.mutualSecret {
                    chap.append(CHAPRecord(targetIQN: target.name, direction: .target, username: user, secret: secret))
                }
            }
        }
    }

    // MARK: Items

    /// One TOML item as the seed record names it, with the digest of what the TOML says of it.
    struct Item: Hashable, Sendable {
        var name: String
        var digest: String
    }

    /// The target item: its alias and portal group tag.
    static func item(_ target: TargetRecord) -> Item {
        Item(
            name: "target \(target.iqn.lowercased())",
            digest: digest(["alias", target.alias ?? "", "portal_group_tag", "\(target.portalGroupTag)"]))
    }

    /// The access item of a target: its ACL and CHAP, as a whole.
    func accessItem(_ target: TargetRecord) -> Item {
        let initiators = acls.filter { $0.targetIQN == target.iqn }.map { $0.initiatorIQN.lowercased() }.sorted()
        let credentials = chap.filter { $0.targetIQN == target.iqn }.map {
            "\($0.initiatorIQN)|\($0.direction.rawValue)|\($0.username)|\($0.secret)"
        }.sorted()
        return Item(name: "access \(target.iqn.lowercased())", digest: Self.digest(["acl"] + initiators + ["chap"] + credentials))
    }

    /// The LUN item.
    static func item(_ lun: LUNRecord) -> Item {
        Item(
            name: "lun \(lun.key.targetIQN.lowercased())/\(lun.key.lun)",
            digest: digest(["\(lun.sizeBytes)", "\(lun.blockSize)", lun.serial, lun.backing]))
    }

    /// 64-bit FNV-1a over the fields, each ended by a NUL, in hex: enough to
    /// tell an edited TOML item from the one recorded. Pure.
    static func digest(_ fields: [String]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for field in fields {
            for byte in field.utf8 + [0] {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// What a start does with one item, given what the store recorded of it. Pure.
    enum Decision: Hashable, Sendable {
        /// Never seeded: write it.
        case new
        /// Seeded, and the TOML says something else now (the file was edited).
        case changed(SeededItemRecord)
        /// Seeded as the TOML says it: skip it, the store's stands.
        case unchanged(SeededItemRecord)
    }

    static func decide(_ item: Item, recorded: SeededItemRecord?) -> Decision {
        guard let recorded else { return .new }
        return recorded.digest == item.digest ? .unchanged(recorded) : .changed(recorded)
    }

    /// What one start did with the TOML: one line each.
    struct Report: Hashable, Sendable {
        /// Items written to the store.
        var applied: [String] = []
        /// Items skipped, with why.
        var skipped: [String] = []
        /// LUN settings the store kept against this TOML (errors).
        var kept: [String] = []
    }

    /// `who seeded it, when`, for a log line.
    static func seededBy(_ record: SeededItemRecord) -> String {
        let date = Date(timeIntervalSince1970: TimeInterval(record.seededAt))
        return "seeded by node \(record.nodeID.rawValue) at \(date.formatted(.iso8601))"
    }

    /// Applies the items the store has not seen as the TOML has them,
    /// through `repository` (pass one built on a transaction so that the
    /// seed lands whole or not at all), recording each as seeded by `node`
    /// at `now`. Returns what was applied and skipped, and the LUN settings
    /// the store kept against this TOML.
    func apply(to repository: StoreRepository, node: NodeID, at now: Date) async throws -> Report {
        var report = Report()
        let recorded = try await repository.seededItems()
        var present = Set(try await repository.targets().map { $0.iqn.lowercased() })
        func record(_ item: Item) async throws {
            try await repository.recordSeededItem(
                SeededItemRecord(
                    item: item.name, digest: item.digest, nodeID: node, seededAt: Int64(now.timeIntervalSince1970.rounded(.down))))
        }
        for target in targets {
            let item = Self.item(target)
            let exists = present.contains(target.iqn.lowercased())
            switch Self.decide(item, recorded: recorded[item.name]) {
            case .new, .changed:
                try await repository.upsertTarget(target)
                try await record(item)
                present.insert(target.iqn.lowercased())
                report.applied.append("\(item.name): alias and portal group from this node's configuration")
            case .unchanged(let seeded):
                report.skipped.append(
                    exists
                        ? "\(item.name): \(Self.seededBy(seeded)); keeping the store's alias and portal group"
                        : "\(item.name): \(Self.seededBy(seeded)) and deleted through the cluster since; not created again "
                            + "(take it out of this node's configuration, or tessera target create it)")
            }
        }
        for target in targets {
            let item = accessItem(target)
            guard present.contains(target.iqn.lowercased()) else {
                report.skipped.append("\(item.name): the target is not in the store; its ACL and CHAP are not applied")
                continue
            }
            switch Self.decide(item, recorded: recorded[item.name]) {
            case .new, .changed:
                try await applyAccess(of: target, to: repository)
                try await record(item)
                report.applied.append("\(item.name): ACL and CHAP set to this node's configuration")
            case .unchanged(let seeded):
                report.skipped.append(
                    "\(item.name): \(Self.seededBy(seeded)); keeping the store's ACL and CHAP (tessera acl, tessera chap change them)")
            }
        }
        for lun in luns {
            let item = Self.item(lun)
            if let stored = try await repository.lun(lun.key) {
                report.kept += Self.differences(configured: lun, stored: stored)
                if recorded[item.name] == nil { try await record(item) }
            } else if let seeded = recorded[item.name] {
                report.skipped.append(
                    "\(item.name): \(Self.seededBy(seeded)) and deleted through the cluster since; not created again "
                        + "(take it out of this node's configuration, or tessera lun create it)")
            } else if !present.contains(lun.key.targetIQN.lowercased()) {
                report.skipped.append("\(item.name): its target is not in the store; not created")
            } else {
                try await repository.upsertLUN(lun)
                try await record(item)
                report.applied.append("\(item.name): created from this node's configuration")
            }
        }
        return report
    }

    /// Makes a target's ACL and CHAP exactly this TOML's.
    private func applyAccess(of target: TargetRecord, to repository: StoreRepository) async throws {
        let entries = acls.filter { $0.targetIQN == target.iqn }
        let wanted = Set(entries.map(\.initiatorIQN))
        for initiator in try await repository.allowedInitiators(target: target.iqn) where !wanted.contains(initiator) {
            try await repository.revokeInitiator(initiator, target: target.iqn)
        }
        let credentials = chap.filter { $0.targetIQN == target.iqn }
        for stored in try await repository.chap(target: target.iqn)
        where !credentials.contains(where: { $0.initiatorIQN == stored.initiatorIQN && $0.direction == stored.direction }) {
            try await repository.deleteCHAP(target: target.iqn, initiatorIQN: stored.initiatorIQN, direction: stored.direction)
        }
        for entry in entries { try await repository.allowInitiator(entry.initiatorIQN, target: entry.targetIQN) }
        for credential in credentials { try await repository.upsertCHAP(credential) }
    }

    /// What a TOML's LUN says differently from the LUN the store holds, for
    /// the fields that define its blocks and how every node serves them
    /// (the store's LUN is what every node opens, so an edit of these in one
    /// node's TOML would otherwise be ignored without a word). Pure.
    static func differences(configured: LUNRecord, stored: LUNRecord) -> [String] {
        var messages: [String] = []
        func report(_ field: String, _ mine: String, _ theirs: String, _ remedy: String = "resize or recreate the LUN through the cluster") {
            if mine != theirs {
                messages.append("LUN \(stored.key): \(field) = \(mine) in this node's configuration, but the store's LUN has \(theirs); keeping the store's (\(remedy))")
            }
        }
        report("size", "\(configured.sizeBytes)", "\(stored.sizeBytes)")
        report("block_size", "\(configured.blockSize)", "\(stored.blockSize)")
        let mine = StoredLUNOptions.decode(configured.backing)
        let theirs = StoredLUNOptions.decode(stored.backing)
        if let mine, let theirs {
            report("replicas", "\(mine.replicas ?? 1)", "\(theirs.replicas ?? 1)")
            report("sub_unit_size", "\(mine.subUnitBytes ?? LUNConfiguration.defaultSubUnitSize)", "\(theirs.subUnitBytes ?? LUNConfiguration.defaultSubUnitSize)")
            let recreate = "recreate the LUN through the cluster to change it"
            report("direct_io", mine.directIO, theirs.directIO, recreate)
            report("read_only", "\(mine.readOnly)", "\(theirs.readOnly)", recreate)
            report("thin", "\(mine.thin)", "\(theirs.thin)", recreate)
        }
        return messages
    }
}

/// The LUN settings the store's `luns` table has no column for, kept as JSON
/// in its `backing` column so that a node that did not configure the LUN can
/// still open it.
struct StoredLUNOptions: Codable, Hashable, Sendable {
    /// "file" or "memory".
    var backing: String
    /// File path (relative to each node's data_dir, or absolute).
    var path: String?
    var vendor: String
    var product: String
    var revision: String
    var directIO: String
    var readOnly: Bool
    var thin: Bool
    /// `physical_block_size`; absent in rows written before it existed.
    var physicalBlockSize: UInt32?
    /// Replicas per sub-unit asked for when the LUN was created; absent in
    /// rows written before the distributed LUN (one replica).
    var replicas: Int?
    /// Sub-unit size asked for when the LUN was created; absent = the default.
    var subUnitBytes: UInt64?
    /// The largest size the LUN had before a forced shrink; absent when it
    /// never shrank.
    var shrunkFromBytes: UInt64?

    init(_ lun: LUNConfiguration, replicas: Int) {
        switch lun.backing {
        case .memory: backing = "memory"
        case .file(let file):
            backing = "file"
            path = file
        }
        vendor = lun.vendor
        product = lun.product
        revision = lun.revision
        directIO = lun.directIO.rawValue
        readOnly = lun.readOnly
        thin = lun.thin
        physicalBlockSize = lun.physicalBlockSize
        self.replicas = replicas
        subUnitBytes = lun.subUnitSize
    }

    func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func decode(_ text: String) -> StoredLUNOptions? {
        try? JSONDecoder().decode(StoredLUNOptions.self, from: Data(text.utf8))
    }
}

/// Everything the node serves, as read from the store in one transaction.
struct StoreSnapshot: Hashable, Sendable {
    var targets: [TargetRecord] = []
    var luns: [LUNRecord] = []
    var acls: [String: [String]] = [:]
    var chap: [String: [CHAPRecord]] = [:]

    /// Reads targets, LUNs, ACLs and CHAP through `repository`.
    static func load(from repository: StoreRepository) async throws -> StoreSnapshot {
        var snapshot = StoreSnapshot()
        snapshot.targets = try await repository.targets()
        snapshot.luns = try await repository.luns()
        for target in snapshot.targets {
            snapshot.acls[target.iqn] = try await repository.allowedInitiators(target: target.iqn)
            snapshot.chap[target.iqn] = try await repository.chap(target: target.iqn)
        }
        return snapshot
    }

    /// The targets this node runs, built from the store (pure). Portals are
    /// per node: a target this node's TOML names keeps the portal groups given
    /// there; another is exported on the node's portals of its stored portal
    /// group tag, or on all of them when the node has no such group. LUNs
    /// whose stored options cannot be read are left out and reported.
    func targetConfigurations(
        portals: [PortalConfiguration], local: [TargetConfiguration] = []
    ) -> (targets: [TargetConfiguration], problems: [String]) {
        var problems: [String] = []
        let groups = Set(portals.map(\.groupTag))
        let result = targets.map { record in
            let portalGroups =
                local.first { $0.name.lowercased() == record.iqn.lowercased() }?.portalGroups
                ?? (groups.contains(record.portalGroupTag) ? [record.portalGroupTag] : groups.sorted())
            var target = TargetConfiguration(
                name: record.iqn, alias: record.alias, portalGroups: portalGroups,
                allowedInitiators: acls[record.iqn] ?? [])
            let credentials = chap[record.iqn] ?? []
            if let initiator = credentials.first(where: { $0.direction == .initiator && $0.initiatorIQN.isEmpty }) {
                let mutual = credentials.first(where: { $0.direction == .target && $0.initiatorIQN.isEmpty })
                target.chap = CHAPConfiguration(
                    user: initiator.username, secret: initiator.secret, mutualUser: mutual?.username, mutualSecret: mutual?.secret)
            }
            for lun in luns where lun.key.targetIQN == record.iqn {
                guard let id = UInt16(exactly: lun.key.lun), id <= 16383 else {
                    problems.append("\(lun.key): LUN number out of range")
                    continue
                }
                guard let options = StoredLUNOptions.decode(lun.backing),
                    let directIO = AIOFileBlockDevice.DirectIO(rawValue: options.directIO)
                else {
                    problems.append("\(lun.key): unreadable LUN options \(lun.backing)")
                    continue
                }
                let backing: LUNConfiguration.Backing
                switch (options.backing, options.path) {
                case ("memory", _): backing = .memory
                case ("file", let path?) where !path.isEmpty: backing = .file(path: path)
                default:
                    problems.append("\(lun.key): unknown backing \(options.backing)")
                    continue
                }
                guard lun.blockSize == 512 || lun.blockSize == 4096, lun.sizeBytes > 0, lun.sizeBytes % UInt64(lun.blockSize) == 0 else {
                    problems.append("\(lun.key): bad geometry \(lun.sizeBytes) bytes / \(lun.blockSize)")
                    continue
                }
                var configuration = LUNConfiguration(
                    id: id, size: lun.sizeBytes, blockSize: lun.blockSize, backing: backing, vendor: options.vendor,
                    product: options.product, revision: options.revision, serial: lun.serial, directIO: directIO,
                    readOnly: options.readOnly, thin: options.thin)
                configuration.physicalBlockSize = options.physicalBlockSize
                configuration.replicas = options.replicas ?? 1
                configuration.subUnitSize = options.subUnitBytes ?? LUNConfiguration.defaultSubUnitSize
                configuration.identifier = lun.naaID.count >= 8 ? ClusterNode.lunID(lun).rawValue : nil
                configuration.shrunkFromBytes = options.shrunkFromBytes
                target.luns.append(configuration)
            }
            return target
        }
        return (result, problems)
    }
}
