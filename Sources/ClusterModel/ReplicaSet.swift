/// The state of one replica of a sub-unit.
public enum ReplicaState: String, Hashable, Sendable, CaseIterable {
    /// Holds every acknowledged write: may serve and be promoted.
    case inSync = "in-sync"
    /// Missed writes: never promoted, never read from.
    case stale
    /// Being brought back: takes live writes while the missing regions stream in.
    case resyncing
}

/// One replica of a sub-unit: the node that holds it and how current it is.
public struct Replica: Hashable, Sendable {
    /// The node holding the extent.
    public var node: NodeID
    /// Whether it holds every acknowledged write.
    public var state: ReplicaState

    public init(node: NodeID, state: ReplicaState = .inSync) {
        self.node = node
        self.state = state
    }
}

/// Who holds a sub-unit: the primary (first replica) orders and serves it,
/// the others are its secondaries, all under one epoch.
public struct ReplicaSet: Hashable, Sendable {
    /// Bumped on every change of this set.
    public var epoch: Epoch
    /// Primary first, then the secondaries in placement order.
    public var replicas: [Replica]

    public init(epoch: Epoch, replicas: [Replica]) {
        precondition(!replicas.isEmpty, "a replica set has a primary")
        self.epoch = epoch
        self.replicas = replicas
    }

    /// The node that orders writes and serves reads.
    public var primary: NodeID { replicas[0].node }
    /// The other replicas.
    public var secondaries: ArraySlice<Replica> { replicas.dropFirst() }
    /// Secondaries a write must reach before it is acknowledged.
    public var inSyncSecondaries: [NodeID] { secondaries.filter { $0.state == .inSync }.map(\.node) }
    /// Secondaries that take live writes (in-sync and resyncing ones).
    public var writeTargets: [NodeID] { secondaries.filter { $0.state != .stale }.map(\.node) }

    /// The role of `node` in this set.
    public func role(of node: NodeID) -> Role {
        if replicas[0].node == node { return .primary }
        return replicas.contains { $0.node == node } ? .secondary : .none
    }

    /// A node's part in a replica set.
    public enum Role: Hashable, Sendable {
        /// Orders writes, serves reads.
        case primary
        /// Receives the primary's replicated writes.
        case secondary
        /// Holds no replica.
        case none
    }
}

/// A LUN's sub-units and their replica sets, as stored in the metadata store.
public struct SubUnitMap: Hashable, Sendable {
    /// The LUN.
    public var lun: LUNID
    /// How the blocks are cut.
    public var layout: SubUnitLayout
    /// Replicas wanted per sub-unit (1...3).
    public var replicationFactor: Int
    /// One replica set per sub-unit, by index.
    public var subUnits: [ReplicaSet]

    public init(lun: LUNID, layout: SubUnitLayout, replicationFactor: Int, subUnits: [ReplicaSet]) {
        self.lun = lun
        self.layout = layout
        self.replicationFactor = replicationFactor
        self.subUnits = subUnits
    }

    /// Sub-units with fewer replicas than wanted (placed while too few nodes were members).
    public var degradedSubUnits: [UInt32] {
        subUnits.indices.filter { subUnits[$0].replicas.count < replicationFactor }.map(UInt32.init)
    }

    /// Whether any sub-unit lacks a replica.
    public var isDegraded: Bool { !degradedSubUnits.isEmpty }

    /// The sub-units `node` holds a replica of.
    public func subUnits(heldBy node: NodeID) -> [UInt32] {
        subUnits.indices.filter { subUnits[$0].role(of: node) != .none }.map(UInt32.init)
    }

    /// Every node that holds any replica of the LUN.
    public var nodes: Set<NodeID> { Set(subUnits.flatMap { $0.replicas.map(\.node) }) }
}
