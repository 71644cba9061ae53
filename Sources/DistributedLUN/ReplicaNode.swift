import BlockStorage
import ClusterModel
import Synchronization

/// One node's part of every distributed LUN: it answers peer requests for the
/// sub-units it holds (as their primary or as a secondary) and hands out the
/// ``DistributedBlockDevice`` that host commands arriving on this node use.
///
/// The primary orders the writes of its sub-unit (``OrderingGate``), writes
/// locally and to every secondary in parallel, and answers only when all have
/// the data (ARCHITECTURE.md "The data path"). A replica accepts a request
/// only at its current epoch for the sub-unit.
public final class ReplicaNode: PeerRequestHandler {
    /// This node.
    public let id: NodeID
    /// How requests reach other nodes.
    let transport: any PeerTransport
    /// Where maps are reloaded from.
    let source: any SubUnitMapSource
    /// Bound of one replication round trip (primary → secondary).
    public let replicationTimeout: Duration
    /// Bound of one forwarded piece (this node → primary): a replication
    /// round trip plus the primary's own I/O.
    public var forwardTimeout: Duration { replicationTimeout + .seconds(1) }
    /// Extents an activity log keeps (DRBD's al-extents; 64 × 4 MiB = 256 MiB
    /// of a LUN may be hot at once before a write waits for an eviction save).
    public static let activityLogExtents = 64
    /// Bytes per activity log extent (DRBD's are 4 MiB too).
    public static let activityExtentBytes: UInt64 = 4 << 20
    /// How often a piece is re-sent after a stale-map answer.
    static let staleRetries = 3
    /// How long a piece whose primary cannot be reached is held, reloading
    /// the map, while the cluster promotes a new primary (a node's death is
    /// acted on after its lease plus a margin), before it fails as retryable.
    public let failoverWait: Duration
    /// How the node waits (tests pass a clock of their own).
    let sleep: @Sendable (Duration) async -> Void
    private let luns = Mutex<[LUNID: LUNReplicas]>([:])
    private let layoutBehind = Mutex(Handler<@Sendable (LUNID) async -> Void>({ _ in }))
    private let contextHandlers = Mutex<[LUNID: @Sendable ([UInt8]) async -> Bool]>([:])
    private let serving = Mutex(Handler<@Sendable () -> Bool>({ true }))
    /// The resyncs this node runs as primary, and their totals.
    let resyncs = Mutex(ResyncBook())
    /// Bytes per second a resync may copy (nil: unthrottled).
    let resyncRate: UInt64?
    /// How long a resync that stopped waits before it is tried again.
    let resyncRetryPause: Duration
    private let resyncEvents = Mutex(Handler<@Sendable (ResyncEvent) -> Void>({ _ in }))

    public init(
        id: NodeID, transport: any PeerTransport, mapSource: any SubUnitMapSource,
        replicationTimeout: Duration = .seconds(2), failoverWait: Duration = .seconds(5), resyncRate: UInt64? = nil,
        resyncRetryPause: Duration = .seconds(5),
        sleep: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) }
    ) {
        self.resyncRetryPause = resyncRetryPause
        self.id = id
        self.transport = transport
        self.source = mapSource
        self.replicationTimeout = replicationTimeout
        self.failoverWait = failoverWait
        self.resyncRate = resyncRate
        self.sleep = sleep
    }

    /// Serve as a primary only while `mayServe` says so: the store lease
    /// (ARCHITECTURE.md rule 2). Without it, requests as primary are refused
    /// as unavailable and the senders look for the new primary.
    public func serveOnlyWhile(_ mayServe: @escaping @Sendable () -> Bool) { serving.withLock { $0 = Handler(mayServe) } }

    /// Whether this node may serve as a primary now.
    var mayServe: Bool { serving.withLock { $0 }.call() }

    /// Where resync progress goes (log lines, in the daemon).
    public func onResyncEvent(_ handler: @escaping @Sendable (ResyncEvent) -> Void) {
        resyncEvents.withLock { $0 = Handler(handler) }
    }

    func report(_ event: ResyncEvent) { resyncEvents.withLock { $0 }.call(event) }

    /// Serves a LUN on this node: `extents` are this node's replicas (one
    /// device of the sub-unit's size per index it holds). Returns the device
    /// the SCSI layer uses for commands arriving here.
    ///
    /// With `activityLog`, this node keeps the LUN's activity log there
    /// (extents of ``activityExtentBytes``, at most ``activityLogExtents``):
    /// its writes as primary wait until their extents are recorded, and a
    /// new primary resyncing this node after a crash copies only those
    /// extents plus what it wrote since. Without one (tests, old data
    /// directories) such a resync copies every region. The store's
    /// ``ActivityLogStore/dirtyRecords`` keep, next to the log, what each
    /// replica this node leads lacks, so a resync after a restart of this
    /// node copies only that (and the logged extents), not everything.
    public func attach(
        map: SubUnitMap, extents: [UInt32: any BlockDevice], activityLog: (any ActivityLogStore)? = nil
    ) -> DistributedBlockDevice {
        let writer = activityLog.map { store in
            ActivityLogWriter(
                store: store, capacity: Self.activityLogExtents,
                extentBlocks: max(1, Self.activityExtentBytes / UInt64(map.layout.blockSize)))
        }
        let records = activityLog?.dirtyRecords.map { DirtyRecordWriter(store: $0) }
        let replicas = LUNReplicas(
            map: map, extents: extents, source: source, localNode: id, activity: writer, records: records)
        luns.withLock { $0[map.lun] = replicas }
        return DistributedBlockDevice(replicas: replicas, node: self)
    }

    /// What catches this node up with a LUN that grew in the store (the
    /// daemon's catalog follower): called when a request names a sub-unit
    /// or a block beyond the LUN as this node serves it.
    public func onLayoutBehind(_ handler: @escaping @Sendable (LUNID) async -> Void) {
        layoutBehind.withLock { $0 = Handler(handler) }
    }

    /// Serves the grown `map` of an attached LUN with `extents` (every index,
    /// over the grown file); false when the LUN is not attached here or the
    /// map is not larger.
    @discardableResult
    public func grow(_ lun: LUNID, to map: SubUnitMap, extents: [UInt32: any BlockDevice]) -> Bool {
        replicas(lun)?.grow(to: map, extents: extents) ?? false
    }

    /// Serves the shrunk `map` of an attached LUN with `extents` (over the
    /// smaller map); returns once writes into the blocks that are gone have
    /// finished. False when the LUN is not attached here or the map is not smaller.
    @discardableResult
    public func shrink(_ lun: LUNID, to map: SubUnitMap, extents: [UInt32: any BlockDevice]) async -> Bool {
        await replicas(lun)?.shrink(to: map, extents: extents) ?? false
    }

    /// Stops serving a LUN (its extents are the caller's to close).
    public func detach(_ lun: LUNID) {
        _ = luns.withLock { $0.removeValue(forKey: lun) }
        _ = contextHandlers.withLock { $0.removeValue(forKey: lun) }
    }

    func replicas(_ lun: LUNID) -> LUNReplicas? { luns.withLock { $0[lun] } }

    /// What this node does with a change of `lun`'s shared SCSI context
    /// committed through another node: `handler` applies the payload and
    /// returns false when it cannot be decoded. The answer goes back once it returns.
    public func onContextChange(_ lun: LUNID, _ handler: @escaping @Sendable ([UInt8]) async -> Bool) {
        contextHandlers.withLock { $0[lun] = handler }
    }

    /// Re-reads every attached LUN's map from the store (newer epochs win).
    public func reloadMaps() async {
        for replicas in luns.withLock({ Array($0.values) }) { await replicas.reload() }
    }

    // MARK: PeerRequestHandler

    public func handle(_ request: PeerRequest, from node: NodeID) async -> PeerReply {
        switch request {
        case .read(let io):
            switch await accept(io, as: .primary) {
            case .failure(let failure):
                return .failure(failure)
            case .success(let target):
                let buffer = IOBuffer(count: Int(io.blockCount) * Int(target.replicas.layout.blockSize))
                if let failure = await primaryRead(target, io, into: buffer, offset: 0) { return .failure(failure) }
                return .data(buffer)
            }
        case .write(let write):
            return await primaryWrite(write)
        case .replicate(let write):
            return await secondaryWrite(write)
        case .unmap(let io):
            return await primaryUnmap(io)
        case .replicateUnmap(let io):
            return await secondaryUnmap(io)
        case .compareAndWrite(let write):
            return await primaryCompareAndWrite(write)
        case .allocation(let io):
            return await primaryAllocation(io)
        case .flush(let lun):
            return await flushLocal(lun)
        case .contextChange(let lun, let payload):
            guard let handler = contextHandlers.withLock({ $0[lun] }) else {
                return .failure(PeerFailure(.unknownSubUnit, detail: "\(lun)"))
            }
            return await handler(payload) ? .done : .failure(PeerFailure(.badRequest, detail: "context change of \(lun)"))
        case .activityLog(let lun):
            guard let replicas = replicas(lun) else { return .failure(PeerFailure(.unknownSubUnit, detail: "\(lun)")) }
            guard let activity = replicas.activity else {
                return .failure(PeerFailure(.unavailable, detail: "\(id) keeps no activity log for \(lun)"))
            }
            return .extents(
                activity.blockRanges.map { BlockExtent(lba: $0.lowerBound, blockCount: UInt64($0.count), mapped: true) })
        case .ping:
            return .done
        }
    }

    // MARK: Acceptance: epoch and role

    /// A request accepted for a sub-unit this node holds.
    struct Accepted {
        var index: UInt32
        var replicas: LUNReplicas
        var set: ReplicaSet
        var extent: any BlockDevice
        var gate: OrderingGate
    }

    /// Checks the request's sub-unit, range, epoch and this node's role. A
    /// newer epoch than the cached one makes the node reload its map first
    /// (its own copy is behind the store).
    func accept(_ io: PeerIO, as role: ReplicaSet.Role) async -> Result<Accepted, PeerFailure> {
        guard let replicas = replicas(io.subUnit.lun) else {
            return .failure(PeerFailure(.unknownSubUnit, detail: "\(io.subUnit)"))
        }
        // A sub-unit or block past what this node knows of the LUN: the LUN
        // may have grown in the store before this node caught up; catch up once.
        if !replicas.covers(io) {
            let catchUp = layoutBehind.withLock { $0 }
            await catchUp.call(io.subUnit.lun)
        }
        guard var set = replicas.replicaSet(io.subUnit.index) else {
            return .failure(PeerFailure(.unknownSubUnit, detail: "\(io.subUnit)"))
        }
        if io.epoch > set.epoch {
            await replicas.reload()
            set = replicas.replicaSet(io.subUnit.index) ?? set
        }
        guard io.epoch == set.epoch else {
            return .failure(PeerFailure(.staleEpoch, epoch: set.epoch, detail: "\(io.subUnit) is at \(set.epoch), not \(io.epoch)"))
        }
        guard set.role(of: id) == role, let (extent, gate) = replicas.local(io.subUnit.index) else {
            return .failure(PeerFailure(.notReplica, epoch: set.epoch, detail: "\(id) is not \(role) of \(io.subUnit)"))
        }
        guard role != .primary || mayServe else {
            return .failure(PeerFailure(.unavailable, epoch: set.epoch, detail: "\(id) has no lease to serve \(io.subUnit)"))
        }
        let (end, overflow) = io.lba.addingReportingOverflow(UInt64(io.blockCount))
        guard !overflow, end <= replicas.layout.blocks(in: io.subUnit.index) else {
            return .failure(PeerFailure(.outOfRange, detail: "\(io.subUnit) blocks \(io.lba)+\(io.blockCount)"))
        }
        return .success(Accepted(index: io.subUnit.index, replicas: replicas, set: set, extent: extent, gate: gate))
    }

    /// Whether `write` carries exactly the bytes its blocks need (`halves` = 2 for COMPARE AND WRITE).
    static func carriesData(_ write: PeerWrite, blockSize: UInt32, halves: Int = 1) -> Bool {
        let needed = Int(write.io.blockCount) * Int(blockSize) * halves
        return write.offset >= 0 && write.length >= needed && write.data.count - write.offset >= write.length
    }
}

extension PeerFailure {
    /// The peer-protocol form of a device failure.
    init(_ error: BlockDeviceError) {
        switch error.code {
        case .ioError: self.init(.ioError, detail: error.detail)
        case .outOfRange: self.init(.outOfRange, detail: error.detail)
        case .noSpace: self.init(.noSpace, detail: error.detail)
        case .readOnly: self.init(.readOnly, detail: error.detail)
        default: self.init(.unavailable, detail: error.description)
        }
    }

    /// The device form of a peer failure the sender cannot retry away.
    var deviceError: BlockDeviceError {
        switch code {
        case .ioError, .badRequest: BlockDeviceError(.ioError, detail: description)
        case .outOfRange: BlockDeviceError(.outOfRange, detail: description)
        case .noSpace: BlockDeviceError(.noSpace, detail: description)
        case .readOnly: BlockDeviceError(.readOnly, detail: description)
        default: BlockDeviceError(.unavailable, detail: description)
        }
    }

    /// A failure that a map reload may cure.
    var isStaleMap: Bool { code == .staleEpoch || code == .notReplica || code == .unknownSubUnit }
}
