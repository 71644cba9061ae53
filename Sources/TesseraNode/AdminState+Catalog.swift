import AdminAPI
import ClusterModel
import MetadataStore

#if canImport(Glibc)
    import Glibc
#endif

/// Targets and LUNs created, resized and deleted through the admin API: one
/// store transaction each (with its request id, so a retry is harmless).
/// The node that took the change serves the result before it answers (a
/// target made through it is in its discovery and takes logins when the
/// CLI returns); every other node's ``ServedCatalog`` within about a second.
extension NodeAdminState {
    func apply(_ change: CatalogChange, requestID: String?) async throws -> CatalogOutcome {
        let id = RequestID("admin-" + (requestID ?? RequestID.random().rawValue))
        let live = try await liveMembers()
        let outcome: CatalogOutcome
        do {
            let result = try await cluster.client.mutate(requestID: id) { tx in
                try await Self.apply(change, to: StoreRepository(tx), live: live)
            }
            switch result {
            case .applied(let made):
                outcome = made
                logger.notice("admin: \(change)", metadata: ["request-id": "\(id.rawValue)"])
            case .alreadyApplied:
                logger.info("admin: request already applied, nothing changed", metadata: ["request-id": "\(id.rawValue)"])
                outcome = try await current(change)
            }
        } catch let failure as AdminFailure {
            throw failure
        } catch {
            throw AdminStateError("\(change) failed: \(error)")
        }
        await serveCatalogNow()
        // The answer shows the state as the store holds it now.
        switch outcome {
        case .target(let made):
            return try await targets().first { $0.name == made.name }.map(CatalogOutcome.target) ?? outcome
        case .lun(let made):
            return try await luns().first { $0.target == made.target && $0.lun == made.lun }.map(CatalogOutcome.lun)
                ?? outcome
        case .deleted:
            return outcome
        }
    }

    /// What a request applied before made, read again for its retry.
    private func current(_ change: CatalogChange) async throws -> CatalogOutcome {
        switch change {
        case .createTarget(let spec):
            guard let target = try await targets().first(where: { $0.name.lowercased() == spec.name }) else {
                return .deleted(Deleted(deleted: "target", target: spec.name))
            }
            return .target(target)
        case .deleteTarget(let name):
            return .deleted(Deleted(deleted: "target", target: name))
        case .updateTarget(let update):
            let lowered = update.name.lowercased()
            guard let target = try await targets().first(where: { $0.name.lowercased() == lowered }) else {
                return .deleted(Deleted(deleted: "target", target: update.name))
            }
            return .target(target)
        case .createLUN(let spec):
            let found = try await luns().filter { $0.target.lowercased() == spec.target }
            guard let lun = spec.lun.flatMap({ n in found.first { $0.lun == UInt64(n) } }) ?? found.last else {
                return .deleted(Deleted(deleted: "lun", target: spec.target, lun: spec.lun.map(UInt64.init)))
            }
            return .lun(lun)
        case .resizeLUN(let selector, _, _):
            guard case .success(let lun) = AdminRouter.pick(selector, from: try await luns()) else {
                return .deleted(Deleted(deleted: "lun", target: selector.target ?? "", lun: selector.lun))
            }
            return .lun(lun)
        case .deleteLUN(let selector):
            return .deleted(Deleted(deleted: "lun", target: selector.target ?? "", lun: selector.lun))
        }
    }

    /// The members a new sub-unit may be placed on: every registered member
    /// this node does not hold dead or fenced, and that is not being drained.
    private func liveMembers() async throws -> [NodeID] {
        let (members, draining) = try await read("the members") {
            let repository = StoreRepository(cluster.client)
            return (try await repository.members(), Set(try await repository.drains().keys))
        }
        return members.map(\.nodeID).filter { node in
            (node == cluster.id || memberVerdict(node) != "dead") && !draining.contains(node)
        }
    }

    /// The store statements of one catalog change, on a transaction.
    /// Throws an ``AdminFailure`` (which rolls the transaction back) for
    /// what the cluster refuses.
    static func apply(_ change: CatalogChange, to repository: StoreRepository, live: [NodeID]) async throws
        -> CatalogOutcome
    {
        switch change {
        case .createTarget(let spec):
            if let existing = try await repository.targets().first(where: { $0.iqn.lowercased() == spec.name }) {
                throw AdminFailure(
                    status: 409, error: "target \(existing.iqn) exists",
                    hint: "tessera target list shows it; pick another name or delete it first")
            }
            try await repository.upsertTarget(TargetRecord(iqn: spec.name, alias: spec.alias, portalGroupTag: spec.portalGroupTag))
            return .target(TargetStatus(name: spec.name, alias: spec.alias, luns: [], acl: [], chap: nil))
        case .updateTarget(let update):
            let name = try await storedTarget(update.name, repository)
            guard var record = try await repository.targets().first(where: { $0.iqn == name }) else {
                throw AdminFailure(status: 404, error: "no target \(AdminRouter.printable(update.name))", hint: "tessera target list")
            }
            if let alias = update.alias { record.alias = alias }
            if let tag = update.portalGroupTag { record.portalGroupTag = tag }
            try await repository.upsertTarget(record)
            return .target(TargetStatus(name: record.iqn, alias: record.alias, luns: [], acl: [], chap: nil))
        case .deleteTarget(let name):
            let target = try await storedTarget(name, repository)
            let luns = try await repository.luns(target: target).map(\.key.lun)
            guard luns.isEmpty else {
                throw AdminFailure(
                    status: 409, error: "target \(target) still has LUNs \(luns.map(String.init).joined(separator: ", "))",
                    hint: "delete them first (tessera lun delete N --target \(target) --yes), then the target")
            }
            try await repository.deleteTarget(target)
            return .deleted(Deleted(deleted: "target", target: target))
        case .createLUN(let spec):
            return .lun(try await createLUN(spec, repository, live: live))
        case .resizeLUN(let selector, let size, let force):
            return .lun(try await resizeLUN(selector, to: size, force: force, repository, live: live))
        case .deleteLUN(let selector):
            let lun = try await storedLUN(selector, repository)
            try await repository.deleteLUN(lun.key)
            return .deleted(Deleted(deleted: "lun", target: lun.key.targetIQN, lun: lun.key.lun))
        }
    }

    private static func createLUN(_ spec: CatalogChange.LUNSpec, _ repository: StoreRepository, live: [NodeID])
        async throws -> LUNStatus
    {
        let target = try await storedTarget(spec.target, repository)
        let taken = Set(try await repository.luns(target: target).map(\.key.lun))
        let number: UInt64
        if let wanted = spec.lun {
            guard !taken.contains(UInt64(wanted)) else {
                throw AdminFailure(
                    status: 409, error: "\(target) has a LUN \(wanted)",
                    hint: "leave the number out to take the lowest free one, or delete that LUN first")
            }
            number = UInt64(wanted)
        } else {
            guard let free = (0...AdminRouter.maximumLUN).first(where: { !taken.contains($0) }) else {
                throw AdminFailure(status: 409, error: "\(target) has every LUN number in use", hint: "delete a LUN first")
            }
            number = free
        }
        let replicas = spec.replicas ?? min(2, live.count)
        guard replicas <= live.count else {
            throw AdminFailure(
                status: 409,
                error: "\(replicas) replicas need \(replicas) live members; the cluster has \(live.count)",
                hint: "ask for fewer replicas (--replicas \(live.count)), or wait until the other members are back")
        }
        guard UInt64(spec.sizeBytes / spec.subUnitBytes) < UInt64(UInt32.max) else {
            throw AdminFailure(status: 400, error: "too many sub-units", hint: "use a larger sub_unit_bytes")
        }
        // A fresh identity (NAA, serial): a LUN made again under the same
        // number is another disk, and no host may take it for the old one.
        var random: UInt64 = 0
        while random == 0 { random = UInt64.random(in: 1...UInt64.max) }
        let key = LUNKey(targetIQN: target, lun: number)
        let hex = String(random, radix: 16, uppercase: true)
        let padded = String(repeating: "0", count: 16 - hex.count) + hex
        var configuration = LUNConfiguration(
            id: UInt16(number), size: spec.sizeBytes, blockSize: spec.blockSize,
            backing: spec.backing == "memory" ? .memory : .file(path: "lun-\(padded.lowercased()).img"),
            readOnly: spec.readOnly, thin: spec.thin)
        configuration.subUnitSize = spec.subUnitBytes
        let record = LUNRecord(
            key: key, sizeBytes: spec.sizeBytes, blockSize: spec.blockSize,
            naaID: (0..<8).map { UInt8(truncatingIfNeeded: random >> (56 - 8 * $0)) }, serial: "TSR" + padded,
            backing: StoredLUNOptions(configuration, replicas: replicas).encoded())
        try await repository.upsertLUN(record)
        let layout = SubUnitLayout(
            blockSize: spec.blockSize, blockCount: spec.sizeBytes / UInt64(spec.blockSize),
            subUnitBlocks: spec.subUnitBytes / UInt64(spec.blockSize))
        let map = Placement.place(
            lun: LUNID(random), layout: layout, replicationFactor: replicas, over: live.map { Placement.Candidate(node: $0) })
        try await repository.createSubUnitMap(key, map, subUnitBytes: spec.subUnitBytes)
        return LUNStatus(
            target: target, lun: number, sizeBytes: spec.sizeBytes, blockSize: spec.blockSize, serial: record.serial,
            layout: nil, subUnits: [])
    }

    /// Resizes a LUN. Growing: the new capacity and the new sub-units
    /// (placed over the live members, in sync: they hold only zeros
    /// everywhere) in one transaction; the last sub-unit, if partial, grows
    /// in place. Shrinking needs `force`: the new capacity, the sub-units
    /// past it dropped (the last one may be cut) and the size it had noted
    /// in its options (a node that was away cuts its file when it opens it),
    /// in one transaction. Only a writable file-backed LUN changes size.
    private static func resizeLUN(
        _ selector: LUNSelector, to size: UInt64, force: Bool, _ repository: StoreRepository, live: [NodeID]
    ) async throws -> LUNStatus {
        let lun = try await storedLUN(selector, repository)
        let status = LUNStatus(
            target: lun.key.targetIQN, lun: lun.key.lun, sizeBytes: size, blockSize: lun.blockSize, serial: lun.serial,
            layout: nil, subUnits: [])
        guard size % UInt64(lun.blockSize) == 0 else {
            throw AdminFailure(
                status: 400, error: "\(size) bytes is not a multiple of the LUN's block size \(lun.blockSize)",
                hint: "round it to \(size / UInt64(lun.blockSize) * UInt64(lun.blockSize))")
        }
        if size == lun.sizeBytes { return status }
        let shrinking = size < lun.sizeBytes
        guard !shrinking || force else {
            throw AdminFailure(
                status: 409, error: "\(lun.key) is \(lun.sizeBytes) bytes; shrinking it would cut off data a host may use",
                hint: "stop the hosts' use of the blocks past \(size) first (shrink the file system or partition), "
                    + "then force it: tessera lun resize \(lun.key.lun) \(size) --target \(lun.key.targetIQN) --force --yes "
                    + "(PATCH ?force=yes)")
        }
        guard var options = StoredLUNOptions.decode(lun.backing), options.backing == "file", !options.readOnly else {
            throw AdminFailure(
                status: 409,
                error: "\(lun.key) cannot \(shrinking ? "shrink" : "grow"): only a writable file-backed LUN changes size online",
                hint: "a memory or read-only LUN keeps its size")
        }
        guard let map = try await repository.subUnitMap(lun.key) else {
            throw AdminFailure(status: 409, error: "\(lun.key) has no sub-unit map yet", hint: "retry in a few seconds")
        }
        let layout = SubUnitLayout(
            blockSize: lun.blockSize, blockCount: size / UInt64(lun.blockSize), subUnitBlocks: map.layout.subUnitBlocks)
        try await repository.setLUNSize(lun.key, sizeBytes: size)
        if shrinking {
            try await repository.dropSubUnits(lun.key, from: layout.subUnitCount)
            options.shrunkFromBytes = max(options.shrunkFromBytes ?? 0, lun.sizeBytes)
            try await repository.setLUNBacking(lun.key, backing: options.encoded())
            return status
        }
        let placed = Placement.place(
            lun: map.lun, layout: layout, replicationFactor: map.replicationFactor,
            over: live.map { Placement.Candidate(node: $0) })
        let added = (map.subUnits.count..<placed.subUnits.count).map { (index: UInt32($0), set: placed.subUnits[$0]) }
        try await repository.appendSubUnits(lun.key, added)
        return status
    }

    private static func storedTarget(_ name: String, _ repository: StoreRepository) async throws -> String {
        let lowered = name.lowercased()
        guard let target = try await repository.targets().first(where: { $0.iqn.lowercased() == lowered })?.iqn else {
            throw AdminFailure(
                status: 404, error: "no target \(AdminRouter.printable(name))",
                hint: "tessera target list lists the targets; tessera target create NAME makes one")
        }
        return target
    }

    private static func storedLUN(_ selector: LUNSelector, _ repository: StoreRepository) async throws -> LUNRecord {
        let lowered = selector.target?.lowercased()
        let matches = try await repository.luns().filter {
            $0.key.lun == selector.lun && (lowered == nil || $0.key.targetIQN.lowercased() == lowered)
        }
        guard matches.count == 1, let lun = matches.first else {
            if matches.isEmpty {
                throw AdminFailure(
                    status: 404,
                    error: "no LUN \(selector.lun)" + (selector.target.map { " in target \(AdminRouter.printable($0))" } ?? ""),
                    hint: "tessera lun list lists the LUNs")
            }
            throw AdminFailure(
                status: 400, error: "LUN \(selector.lun) exists in \(matches.count) targets",
                hint: "name the target: --target IQN (?target=IQN)")
        }
        return lun
    }
}
