import BlockStorage
import ClusterModel
import DistributedLUN
import SCSITarget
import SCSIWire
import Synchronization

/// A ``SharedContextStore`` in front of a shared ``InMemoryContextStore``
/// that yields before every commit (so commits from different nodes
/// interleave and conflict, as they do on the replicated store), counts the
/// conflicts, and can refuse everything (the store unreachable).
public final class InterleavingContextStore: SharedContextStore {
    public let backing: InMemoryContextStore
    private let state = Mutex((conflicts: 0, unreachable: false))
    private let yields: Int

    public init(backing: InMemoryContextStore, yields: Int = 3) {
        self.backing = backing
        self.yields = yields
    }

    public var conflicts: Int { state.withLock { $0.conflicts } }

    /// While set, every call throws.
    public func setUnreachable(_ value: Bool) { state.withLock { $0.unreachable = value } }

    struct Unreachable: Error {}

    private func check() throws {
        if state.withLock({ $0.unreachable }) { throw Unreachable() }
    }

    public func load() async throws -> VersionedLUNState {
        try check()
        return try await backing.load()
    }

    public func commit(_ change: ContextChange, expected: UInt64, requestID: String) async throws -> ContextCommit {
        for _ in 0..<yields { await Task.yield() }
        try check()
        let outcome = try await backing.commit(change, expected: expected, requestID: requestID)
        if outcome == .conflict { state.withLock { $0.conflicts += 1 } }
        return outcome
    }

    public func changes(after version: UInt64) async throws -> (current: VersionedLUNState, effects: [RecordedEffects]) {
        try check()
        return try await backing.changes(after: version)
    }
}

/// What the test has broken: nodes without a lease, pushes that went unanswered.
final class Faults: Sendable {
    let leaseless = Mutex<Set<NodeID>>([])
    let missed = Mutex<[NodeID]>([])
}

/// The port groups as one node reports them: one group per node, each
/// active/optimized, except this node's own while it has no lease
/// (unavailable, ARCHITECTURE.md "ALUA and the host's view").
struct NodePortGroups: TargetPortGroupSource {
    let node: NodeID
    let nodes: [NodeID]
    let faults: Faults

    func portGroups() -> [TargetPortGroupStatus] {
        let leaseless = faults.leaseless.withLock { $0 }
        return nodes.map { id in
            TargetPortGroupStatus(
                group: UInt16(id.rawValue), state: id == node && leaseless.contains(id) ? .unavailable : .activeOptimized,
                relativeTargetPorts: [UInt16(id.rawValue)])
        }
    }
}

/// N nodes in one process, each a ``SCSITargetDevice`` whose LUN 0 has a
/// ``SharedLogicalUnitContext`` over one shared in-memory store, pushing its
/// changes to the others through an ``InProcessNetwork`` (lossy and
/// partitionable, on a manual clock). Node i is target port group i (its
/// nexuses have relative target port i), as in a real cluster. A node can be
/// made lease-less: it then commits nothing and its port group is unavailable.
public final class InProcessContextCluster: Sendable {
    public static let targetName = "iqn.2026-12.dev.tessera:ctx"
    public static let lun = LUNID(0xC0_7E47)
    public let network: InProcessNetwork
    public let store: InMemoryContextStore
    /// Each node's view of the store (its commits interleave with the others').
    public let stores: [NodeID: InterleavingContextStore]
    public let targets: [NodeID: SCSITargetDevice]
    public let contexts: [NodeID: SharedLogicalUnitContext]
    /// The lease bound the propagation waits for an unanswering node (on the manual clock).
    public let lease: Duration
    private let faults = Faults()
    /// Keeps the peer request handlers alive.
    private let endpoints: [ReplicaNode]

    /// `devices`: each node's block device for LUN 0 (default: one shared RAM disk).
    public init(
        nodeCount: Int = 3, clock: ManualClock = ManualClock(), lease: Duration = .seconds(2),
        devices: [NodeID: any BlockDevice] = [:]
    ) {
        let network = InProcessNetwork(clock: clock)
        let store = InMemoryContextStore()
        let shared = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 2048))
        let faults = self.faults
        let ids = (1...UInt64(nodeCount)).map { NodeID($0) }
        var stores: [NodeID: InterleavingContextStore] = [:]
        var targets: [NodeID: SCSITargetDevice] = [:]
        var contexts: [NodeID: SharedLogicalUnitContext] = [:]
        var endpoints: [ReplicaNode] = []
        for id in ids {
            let view = InterleavingContextStore(backing: store)
            let peers = PeerContextPropagation(
                lun: Self.lun, transport: network.transport(from: id), members: { ids.filter { $0 != id } },
                lease: lease, missed: { nodes in faults.missed.withLock { $0 += nodes } },
                now: { clock.now }, sleep: { await clock.sleep(for: $0) })
            let context = SharedLogicalUnitContext(
                store: view, peers: peers, mayChange: { !faults.leaseless.withLock { $0.contains(id) } })
            let unit = LogicalUnit(
                configuration: LogicalUnitConfiguration(serial: "CTX0001", identifier: 0xC07E47),
                device: devices[id] ?? shared, context: context)
            let target = SCSITargetDevice(
                logicalUnits: [0: unit], portGroups: NodePortGroups(node: id, nodes: ids, faults: faults))
            let endpoint = ReplicaNode(id: id, transport: network.transport(from: id), mapSource: InMemoryMapStore())
            endpoint.onContextChange(Self.lun) { payload in
                guard let change = ContextChangeCoding.decode(payload) else { return false }
                await target.receiveContextChange(change, lun: 0)
                return true
            }
            network.register(id, endpoint)
            endpoints.append(endpoint)
            stores[id] = view
            targets[id] = target
            contexts[id] = context
        }
        self.network = network
        self.store = store
        self.stores = stores
        self.targets = targets
        self.contexts = contexts
        self.lease = lease
        self.endpoints = endpoints
    }

    /// Takes away (or gives back) a node's lease.
    public func setLeaseless(_ node: NodeID, _ value: Bool) {
        faults.leaseless.withLock { if value { $0.insert(node) } else { $0.remove(node) } }
    }

    /// Nodes that did not acknowledge a push in time, in order.
    public var missed: [NodeID] { faults.missed.withLock { $0 } }

    /// The I_T nexus of `initiator` (ISID `isid`) through node `node`'s port.
    public static func nexus(_ initiator: String, isid: UInt64 = 1, through node: NodeID) -> ITNexus {
        ITNexus(initiatorName: initiator, isid: isid, targetName: targetName, portalGroupTag: UInt16(node.rawValue))
    }

    /// Runs `cdb` from `nexus` on LUN 0 of `node`.
    public func run(_ node: NodeID, _ cdb: [UInt8], from nexus: ITNexus, data: [UInt8]? = nil, tag: UInt32? = nil)
        async -> SCSIResponse
    {
        await targets[node]!.execute(
            SCSICommand(
                lun: LUNAddress.encode(0), cdb: cdb, nexus: nexus, taskTag: tag ?? .random(in: 0...UInt32.max),
                expectedDataTransferLength: UInt32(data?.count ?? 0), dataOut: data.map { IOBuffer(bytes: $0) },
                dataOutLength: data?.count ?? 0))
    }
}
