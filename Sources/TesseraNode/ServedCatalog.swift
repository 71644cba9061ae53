import ClusterModel
import Foundation
import DistributedLUN
import ISCSISession
import ISCSITargetServer
import Logging
import MetadataStore
import SCSITarget
import SCSIWire
import Synchronization

/// The targets and LUNs this node serves, kept equal to the store's while
/// the node runs: a target or LUN created through any node's admin API is
/// served here within about a second, a deleted one stops being served
/// (its sessions closed, its replica file removed), and a LUN that grew
/// (or was shrunk by force) is served at its new size with CAPACITY DATA
/// HAS CHANGED queued for every nexus (SBC-3 §4.6 via SPC-4 §7.5: 06/2A/09). The store is the source of
/// truth; each pass reads it whole and acts on the differences.
final class ServedCatalog: Sendable {
    /// How often the store is read for changes.
    static let interval: Duration = .seconds(1)

    private let cluster: ClusterNode
    private let data: DataPlane
    private let portGroups: PortGroupStates
    private let masks: LUNMasks
    private let accessRules: TargetAccessRules
    private let configuration: NodeConfiguration
    private let servedTargets: ServedTargets
    private let logger: Logger
    private let server = Mutex<ISCSIServer?>(nil)
    /// What is served, by lowercased target name: the target as served
    /// (only the LUNs that opened) and its device.
    private let state: Mutex<[String: (target: TargetConfiguration, device: SCSITargetDevice)]>
    /// The pass running now, and how many passes have started.
    private let passes = Mutex<(running: Task<Void, Never>?, started: UInt64)>((nil, 0))

    init(
        targets: [TargetConfiguration], devices: [String: SCSITargetDevice], cluster: ClusterNode, data: DataPlane,
        portGroups: PortGroupStates, masks: LUNMasks, accessRules: TargetAccessRules,
        configuration: NodeConfiguration, servedTargets: ServedTargets, logger: Logger
    ) {
        var state: [String: (target: TargetConfiguration, device: SCSITargetDevice)] = [:]
        for target in targets {
            guard let device = devices[target.name] else { continue }
            var served = target
            served.luns = target.luns.filter { data.servedLUN(LUNKey(targetIQN: target.name, lun: UInt64($0.id))) != nil }
            state[target.name.lowercased()] = (served, device)
        }
        self.state = Mutex(state)
        self.cluster = cluster
        self.data = data
        self.portGroups = portGroups
        self.masks = masks
        self.accessRules = accessRules
        self.configuration = configuration
        self.servedTargets = servedTargets
        self.logger = logger
    }

    /// The target devices served now, by target name.
    var devices: [String: SCSITargetDevice] {
        Dictionary(state.withLock { $0 }.values.map { ($0.target.name, $0.device) }, uniquingKeysWith: { a, _ in a })
    }

    /// Targets added from now on are given to `server`.
    func attach(server: ISCSIServer) { self.server.withLock { $0 = server } }

    /// Reads the store every ``interval`` and serves what it holds, until cancelled.
    func follow() async {
        while !Task.isCancelled {
            await refresh()
            try? await Task.sleep(for: Self.interval)
        }
    }

    /// Runs one pass that starts after this call (waiting for a pass under
    /// way first): what the store held when it was called is served when it
    /// returns, unless the store could not be read.
    func refresh() async {
        let wanted = passes.withLock { $0.started } + 1
        while true {
            let (task, mine): (Task<Void, Never>?, Bool) = passes.withLock { passes in
                if passes.started >= wanted { return (passes.running, true) }
                if let running = passes.running { return (running, false) }
                passes.started += 1
                let task = Task { [self] in
                    await pass()
                    self.passes.withLock { $0.running = nil }
                }
                passes.running = task
                return (task, true)
            }
            await task?.value
            if mine { return }
        }
    }

    /// Whether the last pass could not read the store (logged once per outage).
    private let failing = Mutex(false)

    private func pass() async {
        let snapshot: StoreSnapshot
        do {
            snapshot = try await cluster.client.transaction { tx in try await StoreSnapshot.load(from: StoreRepository(tx)) }
        } catch {
            if !failing.withLock({ $0 }) { logger.warning("catalog: cannot read the store, serving what was served: \(error)") }
            failing.withLock { $0 = true }
            return
        }
        failing.withLock { $0 = false }
        let (desired, _) = snapshot.targetConfigurations(portals: configuration.portals, local: configuration.targets)
        let wanted = Dictionary(desired.map { ($0.name.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
        let current = state.withLock { $0 }
        var changed = false
        for (name, served) in current where wanted[name] == nil {
            await remove(served.target, device: served.device)
            changed = true
        }
        for (name, target) in wanted.sorted(by: { $0.key < $1.key }) {
            if let served = current[name] {
                changed = await update(served.target, device: served.device, to: target) || changed
            } else {
                changed = await add(target) || changed
            }
        }
        if changed {
            let now = state.withLock { $0 }
            portGroups.notify(now.values.map(\.device))
            servedTargets.set(now.values.map(\.target).sorted { $0.name < $1.name })
        }
        await publishSizes()
    }

    // MARK: Served sizes

    /// The sizes last published in the store (nil until the first succeeds).
    private let published = Mutex<[String: UInt64]?>(nil)

    /// The key of a LUN in the published sizes.
    static func sizeKey(target: String, lun: UInt64) -> String { "\(target.lowercased())/\(lun)" }

    /// What this node serves now: each LUN's capacity by ``sizeKey(target:lun:)``.
    var servedSizes: [String: UInt64] {
        var sizes: [String: UInt64] = [:]
        for served in state.withLock({ $0 }).values {
            for lun in served.target.luns { sizes[Self.sizeKey(target: served.target.name, lun: UInt64(lun.id))] = lun.size }
        }
        return sizes
    }

    /// Publishes ``servedSizes`` when they differ from what was published,
    /// so any node's admin API can tell whether a resize or a new LUN is
    /// served everywhere (`tessera lun resize --wait`). A failure is tried
    /// again after the next pass.
    private func publishSizes() async {
        let sizes = servedSizes
        guard published.withLock({ $0 }) != sizes else { return }
        do {
            let json = String(decoding: try JSONEncoder().encode(sizes), as: UTF8.self)
            try await StoreRepository(cluster.client).publishServedLUNs(cluster.id, json: json)
            published.withLock { $0 = sizes }
        } catch {
            logger.debug("catalog: publishing the served sizes failed; tried again", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Targets

    /// Serves a target the store holds and this node does not.
    private func add(_ target: TargetConfiguration) async -> Bool {
        guard let server = server.withLock({ $0 }) else { return false }
        var served = target
        served.luns = []
        var units: [OpenedLogicalUnit] = []
        for lun in target.luns {
            guard let unit = await open(target.name, lun) else { continue }
            units.append(unit)
            served.luns.append(lun)
        }
        var single = configuration
        single.targets = [served]
        let devices = NodeRuntime.targetDevices(
            configuration: single, units: units, portGroups: portGroups, masks: masks
        ) { [data, cluster, logger] name, lun in data.sharedContext(target: name, lun: lun, cluster: cluster, logger: logger) }
        guard let device = devices[served.name] else { return false }
        data.acceptContextChanges(devices)
        state.withLock { $0[served.name.lowercased()] = (served, device) }
        let login = NodeRuntime.loginConfiguration(single, accessRules: accessRules)
        guard let description = login.targets.first else { return false }
        server.addTarget(description, executor: device)
        logger.notice(
            "catalog: target created through the cluster is served",
            metadata: ["target": "\(served.name)", "luns": "\(served.luns.map(\.id))"])
        return true
    }

    /// Stops serving a target the store no longer holds: its sessions are
    /// closed first, then its LUNs are let go and their files removed.
    private func remove(_ target: TargetConfiguration, device: SCSITargetDevice) async {
        let closed = server.withLock { $0 }?.removeTarget(named: target.name) ?? 0
        _ = state.withLock { $0.removeValue(forKey: target.name.lowercased()) }
        for lun in target.luns {
            await device.removeLogicalUnit(lun.id)
            await data.detach(LUNKey(targetIQN: target.name, lun: UInt64(lun.id)), deleteFiles: true)
        }
        logger.notice(
            "catalog: target deleted through the cluster is no longer served",
            metadata: ["target": "\(target.name)", "sessions-closed": "\(closed)"])
    }

    // MARK: LUNs

    /// Brings a served target's LUNs to the store's: new ones opened and
    /// added, deleted ones removed, resized ones resized. Returns whether anything changed.
    private func update(_ served: TargetConfiguration, device: SCSITargetDevice, to target: TargetConfiguration) async
        -> Bool
    {
        var now = served
        var changed = false
        let wanted = Dictionary(target.luns.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for lun in served.luns where wanted[lun.id] == nil {
            await device.removeLogicalUnit(lun.id)
            await data.detach(LUNKey(targetIQN: served.name, lun: UInt64(lun.id)), deleteFiles: true)
            now.luns.removeAll { $0.id == lun.id }
            logger.notice("catalog: LUN deleted through the cluster is no longer served", metadata: ["lun": "\(served.name)/\(lun.id)"])
            changed = true
        }
        for lun in target.luns {
            if let have = served.luns.first(where: { $0.id == lun.id }) {
                if lun.size != have.size, let size = await resize(served.name, lun, from: have.size, device: device) {
                    var resized = lun
                    resized.size = size
                    now.luns = now.luns.map { $0.id == lun.id ? resized : $0 }
                    changed = true
                }
                continue
            }
            guard let unit = await open(served.name, lun) else { continue }
            let logical = LogicalUnit(
                configuration: NodeRuntime.logicalUnitConfiguration(targetName: served.name, lun: lun), device: unit.device,
                context: data.sharedContext(target: served.name, lun: lun.id, cluster: cluster, logger: logger))
            data.acceptContextChanges(device, target: served.name, lun: lun.id)
            await device.addLogicalUnit(logical, number: lun.id)
            now.luns.append(lun)
            logger.notice(
                "catalog: LUN created through the cluster is served",
                metadata: ["lun": "\(served.name)/\(lun.id)", "bytes": "\(lun.size)"])
            changed = true
        }
        if served.alias != target.alias || served.portalGroups != target.portalGroups {
            now.alias = target.alias
            now.portalGroups = target.portalGroups
            relabel(now, device: device, was: served)
            changed = true
        }
        if changed { state.withLock { $0[served.name.lowercased()] = (now, device) } }
        return changed
    }

    /// Gives the server the target's new alias or portal groups: logins from
    /// now on answer with the new TargetAlias (RFC 7143 §13.6), and the
    /// target's portal group tag is the new one where SendTargets gives an
    /// address without its own tag; sessions logged in keep what they got.
    private func relabel(_ target: TargetConfiguration, device: SCSITargetDevice, was old: TargetConfiguration) {
        guard let server = server.withLock({ $0 }) else { return }
        var single = configuration
        single.targets = [target]
        guard let description = NodeRuntime.loginConfiguration(single, accessRules: accessRules).targets.first else { return }
        server.addTarget(description, executor: device)
        logger.notice(
            "catalog: target changed through the cluster is served with its new alias and portal groups",
            metadata: [
                "target": "\(target.name)", "alias": "\(target.alias ?? "-")", "was": "\(old.alias ?? "-")",
                "portal-groups": "\(target.portalGroups)",
            ])
    }

    /// Opens a LUN's replica file and attaches it; nil (logged) when it has
    /// no map yet or cannot be opened (the next pass tries again).
    private func open(_ target: String, _ lun: LUNConfiguration) async -> OpenedLogicalUnit? {
        let key = LUNKey(targetIQN: target, lun: UInt64(lun.id))
        do {
            guard let map = try await StoreRepository(cluster.client).subUnitMap(key) else { return nil }
            return try await data.attach(target: target, lun: lun, map: map)
        } catch {
            logger.error("catalog: cannot serve LUN yet: \(error)", metadata: ["lun": "\(key)"])
            return nil
        }
    }

    /// Serves a grown or shrunk LUN at the size of its map as the store
    /// holds it now and tells every nexus of this node. Returns the size
    /// served, nil when nothing changed (the next pass tries again).
    private func resize(_ target: String, _ lun: LUNConfiguration, from size: UInt64, device: SCSITargetDevice) async
        -> UInt64?
    {
        let key = LUNKey(targetIQN: target, lun: UInt64(lun.id))
        let growing = lun.size > size
        let map: SubUnitMap
        do {
            guard let found = try await StoreRepository(cluster.client).subUnitMap(key) else { return nil }
            map = found
            guard growing ? try await data.grow(key, to: map) : try await data.shrink(key, to: map) else { return nil }
        } catch {
            logger.error("catalog: cannot \(growing ? "grow" : "shrink") LUN yet: \(error)", metadata: ["lun": "\(key)"])
            return nil
        }
        let served = map.layout.blockCount * UInt64(map.layout.blockSize)
        await device.logicalUnit(lun.id)?.context.establishUnitAttention(.capacityDataHasChanged, scope: .allNexuses)
        logger.notice(
            "catalog: LUN \(growing ? "grown" : "shrunk") through the cluster is served at its new size; every nexus is told",
            metadata: ["lun": "\(key)", "bytes": "\(served)", "was": "\(size)"])
        return served
    }
}
