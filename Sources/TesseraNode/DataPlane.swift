import AIOBlockStorage
import BlockStorage
import ClusterModel
import ClusterWire
import DistributedLUN
import Logging
import MetadataStore
import SCSITarget
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The node's part of the distributed LUNs: its replicas (windows on one
/// sparse file per LUN laid out like the LUN, one window per sub-unit), the ``ReplicaNode`` that serves them to the other
/// nodes on the wire port, and one ``DistributedBlockDevice`` per LUN for the
/// commands arriving on this node's portals.
final class DataPlane: Sendable {
    /// The LUNs with their distributed devices, ready for the SCSI layer, by target and LUN.
    var units: [OpenedLogicalUnit] {
        served.withLock { $0 }.sorted { ($0.key.targetIQN, $0.key.lun) < ($1.key.targetIQN, $1.key.lun) }.map(\.value.unit)
    }
    private let node: ReplicaNode
    /// What this node serves of each LUN: the unit, its replica file and its cluster-wide id.
    private let served = Mutex<[LUNKey: ServedLUN]>([:])
    private let server: PeerServer
    private let client: PeerClient
    private let addresses: PeerAddressBook
    private let configuration: NodeConfiguration
    private let nodeID: NodeID
    private let logger: Logger
    /// The shared contexts made for the units, by LUN.
    private let contexts = Mutex<[LUNKey: any LogicalUnitContext]>([:])
    /// Members held dead or fenced: their leases have lapsed, so a context
    /// change does not wait for them (ARCHITECTURE.md rule 1).
    let absentMembers = Mutex<Set<NodeID>>([])
    /// The replica moves and drains planned in the store, as last read (DataPlane+Moves.swift).
    let nodeChanges = Mutex(NodeChanges())

    /// One LUN as this node serves it.
    private struct ServedLUN: Sendable {
        var unit: OpenedLogicalUnit
        /// The replica file (one per LUN, laid out like the LUN).
        var file: any BlockDevice
        var id: LUNID
    }

    private init(
        node: ReplicaNode, mapSource: StoreMapSource, server: PeerServer, client: PeerClient,
        addresses: PeerAddressBook, configuration: NodeConfiguration, nodeID: NodeID, logger: Logger
    ) {
        self.node = node
        self.mapSource = mapSource
        self.server = server
        self.client = client
        self.addresses = addresses
        self.configuration = configuration
        self.nodeID = nodeID
        self.logger = logger
    }

    /// Opens this node's replica file of every LUN in `served`, starts the
    /// wire port, and builds the LUNs' devices.
    static func start(
        configuration: NodeConfiguration, served: ClusterNode.Served, cluster: ClusterNode, logger: Logger
    ) async throws -> DataPlane {
        let addresses = PeerAddressBook(members: served.members, client: cluster.client)
        let handshake = ClusterNode.connectTimeout(lease: cluster.lease.duration)
        let client = PeerClient(
            nodeID: cluster.id, address: { addresses.address(of: $0) },
            handshakeTimeout: .milliseconds(handshake.wholeMilliseconds),
            secret: cluster.secret, logger: logger)
        let source = StoreMapSource(client: cluster.client)
        let node = ReplicaNode(
            id: cluster.id, transport: client, mapSource: source,
            failoverWait: ClusterNode.failoverWait(lease: cluster.lease.duration), resyncRate: configuration.cluster.resyncRate)
        guard let wire = NodeAddress(parsing: configuration.cluster.wireAddress) else {
            await client.close()
            throw NodeStartupError(message: "cluster.wire \(configuration.cluster.wireAddress) is not host:port")
        }
        var wireLogger = logger
        wireLogger[metadataKey: "wire"] = "\(wire)"
        let server = PeerServer(
            host: wire.host, port: wire.port, nodeID: cluster.id, handler: node, secret: cluster.secret, logger: wireLogger)
        let plane = DataPlane(
            node: node, mapSource: source, server: server, client: client, addresses: addresses,
            configuration: configuration, nodeID: cluster.id, logger: logger)
        for target in served.targets {
            for lun in target.luns {
                let key = LUNKey(targetIQN: target.name, lun: UInt64(lun.id))
                guard let map = served.maps[key] else {
                    logger.error("LUN has no sub-unit map; not served", metadata: ["lun": "\(key)"])
                    continue
                }
                do {
                    _ = try await plane.attach(target: target.name, lun: lun, map: map)
                } catch {
                    await plane.stop(serverStarted: false)
                    throw error
                }
            }
        }
        do {
            try await server.start()
        } catch {
            await plane.stop(serverStarted: false)
            throw NodeStartupError(message: "cannot listen on cluster.wire \(wire): \(error)")
        }
        await plane.recoverActivityLogs(logger: logger)
        return plane
    }

    /// Where the replica node reads maps from; knows each served LUN's key.
    private let mapSource: StoreMapSource

    /// Serves a LUN on this node: opens (creating it when new) its replica
    /// file, laid out like the LUN and sparse, so the sub-units this node
    /// does not hold take no space (one descriptor and one libaio context
    /// per LUN rather than per sub-unit; a lone node's file is the whole
    /// LUN), and attaches it to the replica node. Returns the unit.
    func attach(target: String, lun: LUNConfiguration, map: SubUnitMap) async throws(NodeStartupError) -> OpenedLogicalUnit {
        let key = LUNKey(targetIQN: target, lun: UInt64(lun.id))
        var single = configuration
        single.targets = [TargetConfiguration(name: target, luns: [lun])]
        Self.cutAfterShrink(key, lun, configuration: configuration, logger: logger)
        guard let file = try await TesseraNode.openLogicalUnitDevices(configuration: single, logger: logger).first?.device
        else { throw NodeStartupError(targetName: target, lunID: lun.id, message: "no device opened") }
        mapSource.register(map.lun, key)
        logger.info(
            "serving distributed LUN",
            metadata: [
                "lun": "\(key)", "sub-units": "\(map.subUnits.count)",
                "local-replicas": "\(map.subUnits(heldBy: nodeID).count)",
                "primaries-here": "\(map.subUnits.filter { $0.primary == nodeID }.count)",
            ])
        // The activity log lives next to a file-backed replica (a memory
        // LUN loses its data in a crash anyway).
        let activityLog = (file as? AIOFileBlockDevice).map { ActivityLogFile(path: $0.path + ".al") }
        let unit = OpenedLogicalUnit(
            targetName: target, lun: lun,
            device: node.attach(map: map, extents: Self.windows(file, map), activityLog: activityLog))
        served.withLock { $0[key] = ServedLUN(unit: unit, file: file, id: map.lun) }
        return unit
    }

    /// A window for every sub-unit, held here or not: the file is laid out
    /// like the LUN, so a replica the map gives this node later (a member
    /// replaced, a placement topped up) is ready at once.
    private static func windows(_ file: any BlockDevice, _ map: SubUnitMap) -> [UInt32: any BlockDevice] {
        var windows: [UInt32: any BlockDevice] = [:]
        for index in 0..<UInt32(map.subUnits.count) {
            windows[index] = BlockDeviceWindow(
                base: file, firstBlock: map.layout.firstBlock(of: index), blockCount: map.layout.blocks(in: index))
        }
        return windows
    }

    /// Stops serving a LUN here (the SCSI layer let go of it first): its
    /// context and replicas are forgotten and its file closed; with
    /// `deleteFiles` (the LUN was deleted from the cluster) the replica
    /// file and its activity log are removed.
    func detach(_ key: LUNKey, deleteFiles: Bool) async {
        guard let lun = served.withLock({ $0.removeValue(forKey: key) }) else { return }
        _ = contexts.withLock { $0.removeValue(forKey: key) }
        node.detach(lun.id)
        await lun.file.close()
        guard deleteFiles, let file = lun.file as? AIOFileBlockDevice else { return }
        for path in [file.path, file.path + ".al"] where unlink(path) != 0 && errno != ENOENT {
            logger.warning("cannot remove a deleted LUN's file", metadata: ["path": "\(path)", "errno": "\(errno)"])
        }
        // The dirty-region records kept beside the activity log go with it.
        DirtyRecordFiles(prefix: file.path + ".al").removeAll()
        logger.notice("deleted LUN's replica file removed", metadata: ["lun": "\(key)", "path": "\(file.path)"])
    }

    /// Serves the LUN at the size of its grown `map`: the replica file is
    /// extended (sparse) first, then the replica node takes the new windows.
    /// Returns false when the LUN is not served here or did not grow.
    func grow(_ key: LUNKey, to map: SubUnitMap) async throws(BlockDeviceError) -> Bool {
        guard let lun = served.withLock({ $0[key] }) else { return false }
        guard let file = lun.file as? any GrowableBlockDevice else {
            throw BlockDeviceError(.notSupported, detail: "\(key) is not on a file that can grow")
        }
        try await file.grow(toBlockCount: map.layout.blockCount)
        let grown = node.grow(lun.id, to: map, extents: Self.windows(file, map))
        if grown {
            served.withLock { served in
                served[key]?.unit.lun.size = map.layout.blockCount * UInt64(map.layout.blockSize)
            }
        }
        return grown
    }

    /// Serves the LUN at the size of its shrunk `map` (an administrator's
    /// forced shrink): the replica node stops serving the blocks past the new
    /// end and lets the writes into them finish, then the replica file is
    /// cut. Returns false when the LUN is not served here or did not shrink.
    func shrink(_ key: LUNKey, to map: SubUnitMap) async throws(BlockDeviceError) -> Bool {
        guard let lun = served.withLock({ $0[key] }) else { return false }
        guard let file = lun.file as? AIOFileBlockDevice else {
            throw BlockDeviceError(.notSupported, detail: "\(key) is not on a file that can shrink")
        }
        let shrunk = await node.shrink(lun.id, to: map, extents: Self.windows(file, map))
        // Not shrunk now but the file still longer: the replicas serve the
        // smaller map already and an earlier cut of the file failed; cut it again.
        guard shrunk || file.geometry.blockCount > map.layout.blockCount else { return false }
        served.withLock { served in
            served[key]?.unit.lun.size = map.layout.blockCount * UInt64(map.layout.blockSize)
        }
        try await file.shrink(toBlockCount: map.layout.blockCount)
        return true
    }

    /// The LUN `key` as served here, nil when it is not.
    func servedLUN(_ key: LUNKey) -> OpenedLogicalUnit? { served.withLock { $0[key]?.unit } }

    /// The cluster-wide id of the LUN `key` as served here, nil when it is not.
    func lunID(_ key: LUNKey) -> LUNID? { served.withLock { $0[key]?.id } }

    /// Acts on what each LUN's activity log recovered from before this start
    /// (``ReplicaNode/recoverActivityLog(_:)``); again on later calls while
    /// the store could not be reached.
    func recoverActivityLogs(logger: Logger) async {
        for map in maps {
            let (marked, done) = await node.recoverActivityLog(map.lun)
            if marked > 0 {
                logger.warning(
                    "activity log from before this start: secondaries marked stale, to copy the logged extents",
                    metadata: ["lun": "\(map.lun)", "sub-units": "\(marked)"])
            }
            if !done { logger.warning("activity log recovery waits for the store", metadata: ["lun": "\(map.lun)"]) }
        }
    }

    /// The shared SCSI context of a LUN this node serves (nil for another):
    /// kept in the store, cached here, pushed to the other members on every
    /// change and gated by the store lease.
    func sharedContext(target: String, lun: UInt16, cluster: ClusterNode, logger: Logger) -> (any LogicalUnitContext)? {
        let key = LUNKey(targetIQN: target, lun: UInt64(lun))
        guard let id = served.withLock({ $0[key]?.id }) else { return nil }
        let me = cluster.id
        let peers = PeerContextPropagation(
            lun: id, transport: client,
            members: { [self] in
                let absent = absentMembers.withLock { $0 }
                return self.addresses.members.map(\.nodeID).filter { $0 != me && !absent.contains($0) }
            },
            lease: cluster.lease.duration,
            missed: { nodes in
                logger.warning(
                    "context change not acknowledged by every member within the lease",
                    metadata: ["lun": "\(key)", "missed": "\(nodes.map(\.rawValue))"])
            })
        let lease = cluster.lease
        let context = SharedLogicalUnitContext(
            store: StoreContextStore(client: cluster.client, key: key), peers: peers,
            mayChange: { lease.mayChangeContext() })
        contexts.withLock { $0[key] = context }
        return context
    }

    /// Applies context changes pushed by other members to `devices`' units.
    func acceptContextChanges(_ devices: [String: SCSITargetDevice]) {
        for (target, device) in devices {
            for (key, lun) in served.withLock({ $0 }) where key.targetIQN == target {
                acceptContextChanges(device, lun: UInt16(truncatingIfNeeded: key.lun), id: lun.id)
            }
        }
    }

    /// Applies context changes pushed by other members to LUN `lun` of `device`.
    func acceptContextChanges(_ device: SCSITargetDevice, target: String, lun: UInt16) {
        guard let id = served.withLock({ $0[LUNKey(targetIQN: target, lun: UInt64(lun))]?.id }) else { return }
        acceptContextChanges(device, lun: lun, id: id)
    }

    private func acceptContextChanges(_ device: SCSITargetDevice, lun number: UInt16, id: LUNID) {
        node.onContextChange(id) { payload in
            guard let change = ContextChangeCoding.decode(payload) else { return false }
            await device.receiveContextChange(change, lun: number)
            return true
        }
    }

    /// Brings every served LUN's context up to the store's `versions`; false
    /// when one could not be read (the lease must not be renewed then).
    func catchUp(_ versions: [LUNKey: UInt64]) async -> Bool {
        for (key, context) in contexts.withLock({ $0 }) {
            guard let version = versions[key] else { continue }
            if !(await context.catchUp(to: version)) { return false }
        }
        return true
    }

    /// The node's cached map of every served LUN.
    var maps: [SubUnitMap] { units.compactMap { ($0.device as? DistributedBlockDevice)?.map } }

    /// Re-reads every served LUN's map from the store.
    func reloadMaps() async { await node.reloadMaps() }

    /// Runs the resyncs this node owes as primary to replicas on live nodes.
    func resyncReturned(isLive: @escaping @Sendable (NodeID) -> Bool) async {
        for map in maps { await node.resyncReturned(map.lun, isLive: isLive) }
    }

    /// Hands primaries back to the replicas placement ranks first, where those are in sync and live.
    func failBack(isLive: @escaping @Sendable (NodeID) -> Bool) async {
        for map in maps { await node.failBack(map.lun, isLive: isLive) }
    }

    /// The resyncs running here and the totals.
    var resyncStatus: ResyncBook { node.resyncStatus }

    /// The replica node (lease gate, resync events).
    var replicaNode: ReplicaNode { node }

    /// The last peer-port round trip to each other member that answered.
    let peerRoundTrips = Mutex<[NodeID: Duration]>([:])

    /// Pings every other member over the peer port every `interval` (each
    /// with a one-second bound) and keeps the round trips; a member that
    /// does not answer is dropped from them until it does.
    func followPeerRoundTrips(interval: Duration = .seconds(2)) async {
        while !Task.isCancelled {
            for member in members where member.nodeID != nodeID {
                let started = ContinuousClock.now
                let reply = await client.send(.ping, to: member.nodeID, timeout: .seconds(1))
                let took = ContinuousClock.now - started
                peerRoundTrips.withLock { trips in
                    if case .done = reply { trips[member.nodeID] = took } else { trips[member.nodeID] = nil }
                }
            }
            peerRoundTrips.withLock { trips in
                let current = Set(members.map(\.nodeID))
                trips = trips.filter { current.contains($0.key) }
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// The wire addresses of the members, for SendTargets and for the client.
    var members: [MemberRecord] { addresses.members }

    /// Re-reads the members (a node joined or left).
    func refreshMembers() async -> [MemberRecord] { await addresses.refresh() }

    /// Stops the wire port and closes every replica file.
    func stop(serverStarted: Bool = true) async {
        if serverStarted { await server.shutdown() }
        await client.close()
        for lun in served.withLock({ Array($0.values) }) { await lun.file.close() }
    }
}

/// Node id → wire address, from the store's `members`; refreshed when a node
/// joins or leaves.
final class PeerAddressBook: Sendable {
    private let state: Mutex<[MemberRecord]>
    private let client: MetadataStoreClient

    init(members: [MemberRecord], client: MetadataStoreClient) {
        self.state = Mutex(members)
        self.client = client
    }

    var members: [MemberRecord] { state.withLock { $0 } }

    func address(of node: NodeID) -> NodeAddress? {
        state.withLock { members in members.first { $0.nodeID == node }?.peerAddress.flatMap(NodeAddress.init(parsing:)) }
    }

    /// Reads `members` again; keeps the old list when the store cannot answer.
    func refresh() async -> [MemberRecord] {
        guard let members = try? await StoreRepository(client).members() else { return self.members }
        state.withLock { $0 = members }
        return members
    }
}

/// Sub-unit maps read from the store, for the LUNs this node serves.
final class StoreMapSource: SubUnitMapSource {
    private let client: MetadataStoreClient
    private let keys = Mutex<[LUNID: LUNKey]>([:])

    init(client: MetadataStoreClient) { self.client = client }

    func register(_ lun: LUNID, _ key: LUNKey) { keys.withLock { $0[lun] = key } }

    func loadMap(_ lun: LUNID) async -> SubUnitMap? {
        guard let key = keys.withLock({ $0[lun] }) else { return nil }
        return try? await StoreRepository(client).subUnitMap(key)
    }

    func replaceReplicaSet(_ lun: LUNID, index: UInt32, expecting: Epoch, with set: ReplicaSet) async
        -> ReplicaSetUpdate
    {
        guard let key = keys.withLock({ $0[lun] }) else { return .conflict }
        do {
            return try await StoreRepository(client).replaceReplicaSet(key, index: index, expecting: expecting, with: set)
                ? .replaced : .conflict
        } catch {
            return .unavailable
        }
    }
}
