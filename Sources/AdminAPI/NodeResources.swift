/// `GET /v1/nodes` (each element) and `GET /v1/nodes/{id}`: one member, what
/// it holds, and where its drain or fill stands.
public struct NodeStatus: Codable, Hashable, Sendable {
    /// Node id.
    public var id: UInt64
    /// "active" (takes replicas), "draining" (its replicas move away),
    /// "drained" (holds none; it may be removed).
    public var state: String
    /// "alive", "suspected", "dead" or "unknown", as the answering node judges it.
    public var liveness: String
    /// Failed over (fenced) in the store.
    public var fenced: Bool
    /// iSCSI portals as SendTargets lists them.
    public var iscsiPortals: [String]
    /// Replicas it holds over every LUN, primaries among them, and those not in sync.
    public var replicas: Int
    public var primaries: Int
    public var replicasNotInSync: Int
    /// Planned moves of replicas off it and onto it, not carried out yet.
    public var movesOff: Int
    public var movesOn: Int
    /// The drain, while it is draining or drained.
    public var drain: Drain?

    public init(
        id: UInt64, state: String, liveness: String, fenced: Bool, iscsiPortals: [String], replicas: Int, primaries: Int,
        replicasNotInSync: Int, movesOff: Int, movesOn: Int, drain: Drain?
    ) {
        self.id = id
        self.state = state
        self.liveness = liveness
        self.fenced = fenced
        self.iscsiPortals = iscsiPortals
        self.replicas = replicas
        self.primaries = primaries
        self.replicasNotInSync = replicasNotInSync
        self.movesOff = movesOff
        self.movesOn = movesOn
        self.drain = drain
    }

    /// A drain's progress: its replicas planned to move, and how many it still holds.
    public struct Drain: Codable, Hashable, Sendable {
        /// When it was asked (seconds since 1970, the store's clock).
        public var requestedAt: UInt64
        public var planned: Int
        public var remaining: Int
        /// Of the planned replicas, the share that has left (100 when none were planned).
        public var percent: Double

        public init(requestedAt: UInt64, planned: Int, remaining: Int) {
            self.requestedAt = requestedAt
            self.planned = planned
            self.remaining = remaining
            self.percent = planned == 0 ? 100 : (Double(max(0, planned - remaining)) / Double(planned) * 1000).rounded() / 10
        }
    }
}

/// A change of the cluster's members, validated.
public enum NodeChange: Hashable, Sendable {
    /// Moves every replica off the node and takes no new one to it.
    case drain(UInt64)
    /// Ends a drain: the node takes replicas again (moves not yet carried out are dropped).
    case undrain(UInt64)
    /// Gives a joined node its share of the replicas (ends a drain first).
    case add(UInt64)
    /// Removes a node that holds nothing from the store for good; with
    /// `force`, a node that is down for good: its replicas are dropped and
    /// made again on the live members.
    case remove(UInt64, force: Bool)

    /// The node it names.
    public var node: UInt64 {
        switch self {
        case .drain(let node), .undrain(let node), .add(let node), .remove(let node, _): node
        }
    }
}

/// What a node change did.
public struct NodeChangeOutcome: Codable, Hashable, Sendable {
    /// The node.
    public var node: UInt64
    /// "drain", "undrain", "add" or "remove".
    public var action: String
    /// Replica moves planned by this change (0 when there was nothing to move).
    public var movesPlanned: Int
    /// The node as it is now; nil once removed.
    public var status: NodeStatus?
    /// What happens next, for a person.
    public var message: String

    public init(node: UInt64, action: String, movesPlanned: Int, status: NodeStatus?, message: String) {
        self.node = node
        self.action = action
        self.movesPlanned = movesPlanned
        self.status = status
        self.message = message
    }
}

extension AdminState {
    /// A node that manages no members answers 503.
    public func nodes() async throws -> [NodeStatus] { throw AdminStateError("this node does not manage members") }
    public func apply(_ change: NodeChange, requestID: String?) async throws -> NodeChangeOutcome {
        throw AdminStateError("this node does not take changes")
    }
}
