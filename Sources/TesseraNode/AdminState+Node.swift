import ClusterAuth
import AdminAPI
import ClusterModel
import DistributedLUN
import Foundation
import ISCSITargetServer
import Logging
import MetadataStore
import SCSITarget
import SCSIWire
import Synchronization
import TesseraMetrics

#if canImport(Glibc)
    import Glibc
#endif

/// The admin API's view of a running node: every resource is read from the
/// store when it is asked for (so any node answers for the whole cluster);
/// liveness verdicts, port group states and resync progress are this node's
/// own, once its data plane runs (``attach(portGroups:failover:data:)``).
final class NodeAdminState: AdminState {
    let cluster: ClusterNode
    private let served: ServedTargets
    private let runtime = Mutex<Runtime?>(nil)
    private let server = Mutex<ISCSIServer?>(nil)
    private let lunStatisticsSource = Mutex<Handler<@Sendable () -> [NodeIOStatistics.LUN]>?>(nil)
    private let accessRefresher = Mutex<AccessRulesRefresher?>(nil)
    private let servedCatalog = Mutex<ServedCatalog?>(nil)
    let logger: Logger

    /// What exists only once the node serves.
    private struct Runtime: Sendable {
        var portGroups: PortGroupStates
        var failover: FailoverController
        var data: DataPlane
    }

    /// `logger` records each access change (never a secret: ``AccessChange`` redacts them).
    init(cluster: ClusterNode, served: ServedTargets, logger: Logger = Logger(label: "tessera.admin")) {
        self.cluster = cluster
        self.served = served
        self.logger = logger
    }

    /// Hands over the parts that report port groups, verdicts and resyncs.
    func attach(portGroups: PortGroupStates, failover: FailoverController, data: DataPlane) {
        runtime.withLock { $0 = Runtime(portGroups: portGroups, failover: failover, data: data) }
    }

    /// Hands over the iSCSI server, whose sessions the API lists and closes.
    func attach(server: ISCSIServer) { self.server.withLock { $0 = server } }

    /// Hands over what puts the store's access rules in force here, read
    /// again after each access change (``apply(_:requestID:)``).
    func attach(accessRefresher: AccessRulesRefresher) { self.accessRefresher.withLock { $0 = accessRefresher } }

    /// Hands over what this node serves of the store's targets and LUNs, which
    /// a catalog change brings up to date before its answer (``apply(_:requestID:)``
    /// in AdminState+Catalog.swift).
    func attach(catalog: ServedCatalog) { servedCatalog.withLock { $0 = catalog } }

    /// Serves what the store holds now, on this node (a pass that starts after the call).
    func serveCatalogNow() async { await servedCatalog.withLock { $0 }?.refresh() }

    /// Where `/metrics` reads every served LUN's statistics from, each time it is asked.
    func attach(lunStatistics: @escaping @Sendable () -> [NodeIOStatistics.LUN]) {
        lunStatisticsSource.withLock { $0 = Handler(lunStatistics) }
    }

    /// The statistics of every LUN of `devices` (by target name) as they are now.
    static func lunStatistics(_ devices: [String: SCSITargetDevice]) -> [NodeIOStatistics.LUN] {
        devices.flatMap { target, device in
            device.logicalUnits.map { lun, unit in
                NodeIOStatistics.LUN(target: target, lun: lun, statistics: unit.statistics.snapshot())
            }
        }
    }

    func ioStatistics() -> NodeIOStatistics {
        let server = iscsiServer
        return NodeIOStatistics(
            luns: lunStatisticsSource.withLock { $0 }?.call() ?? [], sessions: server?.sessionCount,
            connections: server?.connectionCount, storeTransactions: cluster.client.transactionLatency.snapshot(),
            peerRoundTrips: Dictionary(
                (runtimeData?.peerRoundTrips.withLock { $0 } ?? [:]).map { ($0.key.rawValue, Self.seconds($0.value)) },
                uniquingKeysWith: { first, _ in first }))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The data plane, once the node serves.
    var runtimeData: DataPlane? { runtime.withLock { $0 }?.data }

    /// The iSCSI server, once it runs.
    var iscsiServer: ISCSIServer? { server.withLock { $0 } }

    /// Another member's liveness as this node's failover controller judges
    /// it (``liveness(_:)``); nil before the data plane runs.
    func memberVerdict(_ node: NodeID) -> String? {
        runtime.withLock { $0 }.map { Self.liveness($0.failover.verdict(of: node)) }
    }

    func health() -> HealthReport {
        let targets = served.targets
        var report = HealthReport(
            nodeID: cluster.id.rawValue, peerAddress: cluster.address.description, lease: cluster.lease.state,
            mayChangeContext: cluster.lease.mayChangeContext(),
            millisecondsSinceQuorumContact: cluster.lease.millisecondsSinceContact,
            leaderID: cluster.lastKnownLeader?.rawValue, targets: targets.map(\.name),
            lunCount: targets.reduce(0) { $0 + $1.luns.count }, version: TesseraNode.version)
        report.serving = served.serving
        report.replication = served.replication
        return report
    }

    func cluster() async throws -> ClusterStatus {
        let repository = StoreRepository(cluster.client)
        let (members, beats) = try await read("the members") {
            (try await repository.members(), try await repository.leaseBeats())
        }
        // The store's own view (roles, leader) is extra: its absence is not an error.
        let storeMembers = (try? await cluster.client.members()) ?? []
        let leader = (try? await cluster.client.leader())?.id ?? cluster.lastKnownLeader
        let roles = Dictionary(storeMembers.map { ($0.id, $0.role) }, uniquingKeysWith: { first, _ in first })
        let runtime = self.runtime.withLock { $0 }
        let me = cluster.id
        let leaseHeld = cluster.lease.mayChangeContext()
        let statuses = members.map { member in
            let beat = beats[member.nodeID] ?? MemberLiveness.Beat(beats: 0)
            let liveness: String
            if member.nodeID == me {
                liveness = leaseHeld ? "alive" : "suspected"
            } else if let runtime {
                liveness = Self.liveness(runtime.failover.verdict(of: member.nodeID))
            } else {
                liveness = "unknown"
            }
            let role = member.nodeID == leader ? "leader" : roles[member.nodeID].map(\.description) ?? "unknown"
            return ClusterStatus.Member(
                id: member.nodeID.rawValue, storeAddress: member.storeAddress, peerAddress: member.peerAddress,
                iscsiPortals: member.portals, role: role,
                lease: ClusterStatus.Lease(beats: beat.beats, fenced: beat.fenced, liveness: liveness))
        }
        var owners: [UInt16: UInt64] = [:]
        for member in members {
            for tag in member.portals.compactMap(PortGroupStates.portalGroupTag) {
                owners[tag] = member.nodeID.rawValue
            }
        }
        let groups = (runtime?.portGroups.portGroups() ?? []).map { group in
            ClusterStatus.PortGroup(
                id: group.group, node: owners[group.group], state: Self.name(group.state), preferred: group.preferred)
        }
        return ClusterStatus(
            answeredBy: me.rawValue, version: TesseraNode.version, storeLeader: leader?.rawValue, members: statuses,
            portGroups: groups)
    }

    func luns() async throws -> [LUNStatus] {
        let repository = StoreRepository(cluster.client)
        let (rows, members, published) = try await read("the LUNs") {
            var rows: [(LUNRecord, LUNLayoutRecord?, SubUnitMap?)] = []
            for lun in try await repository.luns() {
                let layout = try await repository.layout(lun.key)
                rows.append((lun, layout, layout == nil ? nil : try await repository.subUnitMap(lun.key)))
            }
            return (rows, try await repository.members().map(\.nodeID), try await repository.servedLUNs())
        }
        // What each live member serves, by "<target>/<lun>" (lowercased target).
        let live = members.filter { memberVerdict($0) == "alive" || $0 == cluster.id }
            .sorted { $0.rawValue < $1.rawValue }
        let servedBy = Dictionary(
            published.map { entry in
                (entry.node, (try? JSONDecoder().decode([String: UInt64].self, from: Data(entry.json.utf8))) ?? [:])
            }, uniquingKeysWith: { first, _ in first })
        // Every resync's progress: this node's own and the others' published ones.
        let progressByReplica = await resyncProgress(repository)
        return rows.map { lun, layout, map in
            let subUnits = map.map { map in
                map.subUnits.enumerated().map { index, set in
                    LUNStatus.SubUnit(
                        index: UInt32(index), epoch: set.epoch.rawValue, primary: set.primary.rawValue,
                        secondaries: set.secondaries.map(\.node.rawValue),
                        replicas: set.replicas.map { replica in
                            let key = "\(SubUnitID(lun: map.lun, index: UInt32(index)))@\(replica.node.rawValue)"
                            return LUNStatus.Replica(
                                node: replica.node.rawValue, state: Self.name(replica.state),
                                resync: progressByReplica[key])
                        })
                }
            }
            let shape = layout.map { layout in
                LUNStatus.Layout(
                    lunID: "0x" + String(layout.lunID.rawValue, radix: 16), subUnitBytes: layout.subUnitBytes,
                    replicas: layout.replicationFactor, subUnitCount: map?.subUnits.count ?? 0)
            }
            let name = ServedCatalog.sizeKey(target: lun.key.targetIQN, lun: lun.key.lun)
            return LUNStatus(
                target: lun.key.targetIQN, lun: lun.key.lun, sizeBytes: lun.sizeBytes, blockSize: lun.blockSize,
                serial: lun.serial, layout: shape, subUnits: subUnits ?? [],
                served: live.map { LUNStatus.Served(node: $0.rawValue, sizeBytes: servedBy[$0]?[name]) })
        }
    }

    func reservations(target: String, lun: UInt64) async throws -> ReservationStatus? {
        let repository = StoreRepository(cluster.client)
        let key = LUNKey(targetIQN: target, lun: lun)
        let found = try await read("the reservations of \(key)") {
            () async throws -> (PRState, SPC2ReservationRecord?)? in
            guard try await repository.lun(key) != nil else { return nil }
            return (try await repository.prState(key), try await repository.spc2Reservation(key))
        }
        guard let (pr, spc2) = found else { return nil }
        func nexus(_ initiator: String?, _ target: String?) -> ReservationStatus.Nexus? {
            guard let initiator, let target else { return nil }
            return ReservationStatus.Nexus(initiatorPort: initiator, targetPort: target)
        }
        return ReservationStatus(
            target: target, lun: lun, generation: pr.generation, aptpl: pr.registrations.contains(where: \.aptpl),
            registrations: pr.registrations.map { r in
                ReservationStatus.Registration(
                    key: ReservationStatus.keyText(r.reservationKey),
                    nexus: ReservationStatus.Nexus(initiatorPort: r.initiatorPort, targetPort: r.targetPort),
                    aptpl: r.aptpl)
            },
            reservation: pr.reservation.map { r in
                ReservationStatus.Reservation(
                    key: ReservationStatus.keyText(r.reservationKey),
                    holder: nexus(r.holderInitiatorPort, r.holderTargetPort),
                    type: ReservationStatus.Reservation.typeName(r.type), typeCode: r.type, scope: r.scope)
            },
            spc2Reservation: spc2.map { nexus($0.holderInitiatorPort, $0.holderTargetPort) } ?? nil)
    }

    func targets() async throws -> [TargetStatus] {
        let repository = StoreRepository(cluster.client)
        return try await read("the targets") {
            var result: [TargetStatus] = []
            for target in try await repository.targets() {
                let luns = try await repository.luns(target: target.iqn).map(\.key.lun)
                let acl = try await repository.allowedInitiators(target: target.iqn)
                // Only the names and whether they are mutual: the secrets stay in the store.
                let chap = try await repository.chap(target: target.iqn)
                func mutual(_ initiator: String) -> Bool {
                    chap.contains { $0.direction == .target && $0.initiatorIQN == initiator }
                }
                let targetWide = chap.first { $0.direction == .initiator && $0.initiatorIQN.isEmpty }
                let perInitiator = chap.filter { $0.direction == .initiator && !$0.initiatorIQN.isEmpty }.map {
                    TargetStatus.InitiatorCHAP(
                        initiator: $0.initiatorIQN, user: $0.username, mutual: mutual($0.initiatorIQN))
                }
                let masks = try await repository.lunMasks(target: target.iqn).sorted { $0.key < $1.key }.map {
                    TargetStatus.LUNMask(lun: $0.key, initiators: $0.value)
                }
                result.append(
                    TargetStatus(
                        name: target.iqn, alias: target.alias, luns: luns, acl: acl,
                        chap: targetWide.map { TargetStatus.CHAP(user: $0.username, mutual: mutual("")) },
                        initiatorChap: perInitiator, lunMasks: masks, portalGroupTag: target.portalGroupTag))
            }
            return result
        }
    }

    /// Applies `change` in one store transaction through
    /// ``MetadataStoreClient/mutate(requestID:_:)``: the request id (the
    /// caller's, else a fresh one) is recorded with the change, so a retry
    /// of a request whose answer was lost changes nothing again. Answers
    /// with the target as the store holds it afterwards.
    func apply(_ change: AccessChange, requestID: String?) async throws -> TargetStatus? {
        let id = RequestID("admin-" + (requestID ?? RequestID.random().rawValue))
        let stored: String?
        do {
            let outcome = try await cluster.client.mutate(requestID: id) { tx in
                try await Self.apply(change, to: StoreRepository(tx))
            }
            switch outcome {
            case .applied(let name):
                stored = name
                logger.notice("admin: \(change)", metadata: ["request-id": "\(id.rawValue)"])
            case .alreadyApplied:
                stored = nil
                logger.info("admin: request already applied, nothing changed", metadata: ["request-id": "\(id.rawValue)"])
            }
        } catch let failure as AdminFailure {
            throw failure
        } catch {
            throw AdminStateError("changing the access rules of \(change.target) failed: \(error)")
        }
        // The change is in force here before the answer (the other nodes' followers
        // read it within a second). Committed either way: a failed read leaves it
        // to the follower.
        do {
            try await accessRefresher.withLock { $0 }?.refresh()
        } catch {
            logger.warning(
                "admin: the access rules are not read again yet: \(error)", metadata: ["request-id": "\(id.rawValue)"])
        }
        let lowered = change.target.lowercased()
        return try await targets().first { $0.name == stored || $0.name.lowercased() == lowered }
    }

    /// The store statements of one change, on a transaction. Returns the
    /// target's stored name. Throws an ``AdminFailure`` (which rolls the
    /// transaction back) for an unknown target, for removing what is not
    /// there, and for removing the last ACL entry: an empty ACL admits every
    /// initiator, so emptying it would open the target instead of closing it.
    static func apply(_ change: AccessChange, to repository: StoreRepository) async throws -> String {
        let lowered = change.target.lowercased()
        guard let target = try await repository.targets().first(where: { $0.iqn.lowercased() == lowered })?.iqn else {
            throw AdminFailure(
                status: 404, error: "no target \(AdminRouter.printable(change.target))",
                hint: "GET /v1/targets (tessera target list) lists the targets")
        }
        let initiator = change.initiator
        let acl = try await repository.allowedInitiators(target: target)
        let chap = try await repository.chap(target: target).filter { $0.initiatorIQN.lowercased() == initiator }
        switch change {
        case .allow:
            if !acl.contains(where: { $0.lowercased() == initiator }) {
                try await repository.allowInitiator(initiator, target: target)
            }
        case .revoke:
            let matching = acl.filter { $0.lowercased() == initiator }
            guard !matching.isEmpty else {
                throw AdminFailure(
                    status: 404, error: "\(initiator) is not in the ACL of \(target)",
                    hint: "tessera acl list \(target) shows the ACL")
            }
            guard matching.count < acl.count else {
                throw AdminFailure(
                    status: 409,
                    error: "\(initiator) is the last initiator in the ACL of \(target); an empty ACL lets every "
                        + "initiator log in",
                    hint: "add the initiator that should remain first (tessera acl add \(target) IQN), then remove this one")
            }
            for name in matching { try await repository.revokeInitiator(name, target: target) }
        case .setCHAP(_, _, let setting):
            for record in chap where record.initiatorIQN != initiator {
                try await repository.deleteCHAP(target: target, initiatorIQN: record.initiatorIQN, direction: record.direction)
            }
            try await repository.upsertCHAP(
                CHAPRecord(
                    targetIQN: target, initiatorIQN: initiator, direction: .initiator, username: setting.user,
                    secret: setting.secret))
            if let user = setting.mutualUser, let secret = setting.mutualSecret {
                try await repository.upsertCHAP(
                    CHAPRecord(
                        targetIQN: target, initiatorIQN: initiator, direction: .target, username: user, secret: secret))
            } else {
                try await repository.deleteCHAP(target: target, initiatorIQN: initiator, direction: .target)
            }
        case .removeCHAP:
            guard !chap.isEmpty else {
                throw AdminFailure(
                    status: 404, error: "\(initiator) has no CHAP credentials of its own on \(target)",
                    hint: "tessera acl list \(target) shows who has")
            }
            for record in chap {
                try await repository.deleteCHAP(target: target, initiatorIQN: record.initiatorIQN, direction: record.direction)
            }
        case .mask(_, let lun, _), .unmask(_, let lun, _), .clearMask(_, let lun):
            try await applyMask(change, lun: lun, target: target, initiator: initiator, repository: repository)
        }
        return target
    }

    /// A LUN mask change: the LUN must exist; the last initiator of a mask
    /// cannot be removed alone (an empty mask shows the LUN to everyone),
    /// only the whole mask.
    private static func applyMask(
        _ change: AccessChange, lun: UInt16, target: String, initiator: String, repository: StoreRepository
    ) async throws {
        guard try await repository.luns(target: target).contains(where: { $0.key.lun == UInt64(lun) }) else {
            throw AdminFailure(
                status: 404, error: "\(target) has no LUN \(lun)", hint: "tessera target list shows each target's LUNs")
        }
        let mask = try await repository.lunMasks(target: target)[UInt64(lun)] ?? []
        switch change {
        case .mask:
            try await repository.maskLUN(UInt64(lun), of: target, to: initiator)
        case .unmask:
            guard mask.contains(initiator) else {
                throw AdminFailure(
                    status: 404, error: "\(initiator) is not in the mask of LUN \(lun) of \(target)",
                    hint: "tessera target list shows who sees each LUN")
            }
            guard mask.count > 1 else {
                throw AdminFailure(
                    status: 409,
                    error: "\(initiator) is the last initiator that sees LUN \(lun) of \(target); a LUN without a "
                        + "mask is seen by every initiator",
                    hint: "show it to the initiator that should keep it first (tessera lun map \(lun) IQN), or "
                        + "let everyone see it again (tessera lun unmap \(lun) --all)")
            }
            try await repository.unmaskLUN(UInt64(lun), of: target, from: initiator)
        default:
            guard !mask.isEmpty else {
                throw AdminFailure(
                    status: 404, error: "LUN \(lun) of \(target) has no mask; every initiator sees it",
                    hint: "tessera lun map \(lun) IQN shows it to one initiator only")
            }
            for name in mask { try await repository.unmaskLUN(UInt64(lun), of: target, from: name) }
        }
    }

    /// Runs a store read; a failure becomes an ``AdminStateError`` naming what was read.
    func read<T: Sendable>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw AdminStateError("reading \(what) from the store failed: \(error)")
        }
    }

    static func liveness(_ verdict: MemberLiveness.Verdict) -> String {
        switch verdict {
        case .alive: "alive"
        case .suspected: "suspected"
        case .dead, .fenced: "dead"
        }
    }

    static func name(_ state: ReplicaState) -> String {
        switch state {
        case .inSync: "in_sync"
        case .stale: "stale"
        case .resyncing: "resyncing"
        }
    }

    static func name(_ state: AsymmetricAccessState) -> String {
        switch state {
        case .activeOptimized: "active/optimized"
        case .activeNonOptimized: "active/non-optimized"
        case .standby: "standby"
        case .unavailable: "unavailable"
        case .transitioning: "transitioning"
        }
    }
}

/// `admin.token_file`: the token in a file that only its owner may read.
enum AdminTokenFile {
    /// The token in `path`, surrounding whitespace removed. Throws when the
    /// file cannot be read, is empty, or group or others may read or write it.
    static func load(_ path: String) throws -> AdminToken {
        let text: String
        do { text = try OwnerOnlyFile.read(path, what: "admin.token_file") } catch {
            throw NodeStartupError(message: error.description)
        }
        guard let token = AdminToken(text) else {
            throw NodeStartupError(message: "admin.token_file \(path) is empty: write the token into it")
        }
        return token
    }
}
