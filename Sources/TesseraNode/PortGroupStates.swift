import ClusterModel
import MetadataStore
import SCSITarget
import SCSIWire
import Synchronization

/// The target port groups of the cluster as this node reports them
/// (ARCHITECTURE.md "ALUA and the host's view"): one group per portal group
/// tag, owned by the node whose portal carries it, with the tag as its group
/// id and as its one relative target port (as ``ITNexus`` numbers them).
///
/// - This node's groups are its configured portals. Their state follows its
///   store lease: held → active/optimized, acquiring (not joined yet) →
///   standby, lapsed → unavailable. Without a store they are active/optimized.
/// - Every other member's groups come from its `members.portals` row and are
///   active/optimized while it is a member, unavailable once this node holds
///   it dead (failover), unless `alua_states` names another state for the group.
/// - `alua_states` may also set any group's PREF bit.
///
/// Thread-safe; ``portGroups()`` and ``accessState(ofGroup:)`` take one lock.
/// Any change of the reported groups tells every registered device (06/2A/06).
final class PortGroupStates: TargetPortGroupSource {
    /// What the groups are computed from.
    struct Inputs: Sendable, Hashable {
        /// Portal group tags of this node's portals.
        var localGroups: [UInt16]
        /// This node's id in the store; nil without a store.
        var localNode: NodeID?
        /// The store lease ("held", "acquiring", "lapsed"); nil without a store.
        var lease: String?
        /// The store's members.
        var members: [MemberRecord] = []
        /// The store's `alua_states` rows.
        var overrides: [ALUAStateRecord] = []
        /// Members held dead or fenced (their groups are unavailable).
        var absent: Set<NodeID> = []

        /// No other member is in the store.
        var isAlone: Bool { !members.contains { $0.nodeID != localNode } }
    }

    /// How often ``followLease(_:)`` reads the lease.
    static let leaseCheckInterval: Duration = .milliseconds(100)

    private struct State {
        var inputs: Inputs
        var groups: [TargetPortGroupStatus]
        var byGroup: [UInt16: AsymmetricAccessState]

        init(_ inputs: Inputs) {
            self.inputs = inputs
            self.groups = PortGroupStates.groups(inputs)
            self.byGroup = Dictionary(groups.map { ($0.group, $0.state) }, uniquingKeysWith: { first, _ in first })
        }
    }

    private let state: Mutex<State>
    private let devices = Mutex<[SCSITargetDevice]>([])
    /// Serialises ``update(_:)``.
    private let updates = AsyncLock()
    /// Where ``refresh(members:)`` reads `alua_states`; nil without a store.
    private let client: MetadataStoreClient?

    /// This node's portal groups; with `localNode`, a cluster member whose
    /// lease is not known yet (standby until ``update(_:)`` says otherwise).
    init(localGroups: [UInt16], localNode: NodeID? = nil, client: MetadataStoreClient? = nil) {
        self.client = client
        state = Mutex(
            State(Inputs(localGroups: localGroups, localNode: localNode, lease: localNode == nil ? nil : "acquiring")))
    }

    func portGroups() -> [TargetPortGroupStatus] { state.withLock { $0.groups } }

    /// A lapsed lease shows here within ``leaseCheckInterval`` (when the
    /// follower sees it), together with its 06/2A/06 and the RTPG change, so
    /// the three never disagree; failover must wait longer than the lease
    /// plus that interval before it acts on this node's absence.
    func accessState(ofGroup group: UInt16) -> AsymmetricAccessState? { state.withLock { $0.byGroup[group] } }

    /// The devices ``update(_:)`` tells about changes.
    func notify(_ devices: [SCSITargetDevice]) { self.devices.withLock { $0 = devices } }

    /// Changes the inputs; when the reported groups change, every device
    /// queues ASYMMETRIC ACCESS STATE CHANGED before the new groups are shown
    /// (a command that sees them meets the attention first: SPC-4 §5.16.2.5,
    /// ``TargetPortGroupSource``). Returns whether they changed.
    @discardableResult
    func update(_ change: (inout Inputs) -> Void) async -> Bool {
        // One update at a time: the next one starts from the inputs this one shows.
        await updates.lock()
        defer { updates.unlock() }
        let next = state.withLock { s -> State? in
            var inputs = s.inputs
            change(&inputs)
            guard inputs != s.inputs else { return nil }
            let next = State(inputs)
            guard next.groups != s.groups else {
                s = next
                return nil
            }
            return next
        }
        guard let next else { return false }
        for device in devices.withLock({ $0 }) { await device.accessStatesChanged() }
        state.withLock { $0 = next }
        return true
    }

    /// Takes the members just read and re-reads `alua_states`; keeps the old
    /// overrides when the store cannot answer (the lease decides then).
    func refresh(members: [MemberRecord]) async {
        var overrides: [ALUAStateRecord]?
        if let client { overrides = try? await StoreRepository(client).aluaStates() }
        await update { inputs in
            inputs.members = members
            if let overrides { inputs.overrides = overrides }
        }
    }

    /// Follows this node's lease every ``leaseCheckInterval`` until cancelled.
    func followLease(_ lease: @escaping @Sendable () -> String) async {
        while !Task.isCancelled {
            let now = lease()
            await update { $0.lease = now }
            try? await Task.sleep(for: Self.leaseCheckInterval)
        }
    }

    /// The groups `inputs` describe, by group id.
    static func groups(_ inputs: Inputs) -> [TargetPortGroupStatus] {
        let otherMembers = inputs.members.filter { $0.nodeID != inputs.localNode }
        let others = otherMembers.flatMap(\.portals).compactMap(portalGroupTag)
        let absentTags = Set(
            otherMembers.filter { inputs.absent.contains($0.nodeID) }.flatMap(\.portals).compactMap(portalGroupTag))
        let tags = Set(inputs.localGroups).union(others)
        let overrides = Dictionary(
            inputs.overrides.map { ($0.targetPortGroup, $0) }, uniquingKeysWith: { first, _ in first })
        return tags.sorted().map { tag in
            let local = inputs.localGroups.contains(tag)
            let state: AsymmetricAccessState
            if local {
                // Alone in the store, no other node can act on this one's absence: the
                // lease guards against split brain, so it gates nothing here (a slow
                // fsync under load must not take the only path away).
                state = inputs.isAlone ? .activeOptimized : localState(lease: inputs.lease)
            } else if absentTags.contains(tag) {
                // A member failed over: nothing reaches the LUN through it.
                state = .unavailable
            } else {
                // An unknown code (logical block dependent, offline) is not offered: unavailable.
                state =
                    overrides[tag].map { AsymmetricAccessState(rawValue: $0.state) ?? .unavailable } ?? .activeOptimized
            }
            return TargetPortGroupStatus(
                group: tag, state: state, relativeTargetPorts: [tag], preferred: overrides[tag]?.preferred ?? false,
                // SPC-4 §6.37, table 308: any state but the normal one is the work of implicit ALUA.
                statusCode: state == .activeOptimized ? .none : .alteredImplicitly)
        }
    }

    /// This node's state for its lease.
    static func localState(lease: String?) -> AsymmetricAccessState {
        switch lease {
        case nil, "held": .activeOptimized
        case "acquiring": .standby
        default: .unavailable
        }
    }

    /// The tag of a SendTargets TargetAddress "host:port,tag" (RFC 7143 §13.8).
    static func portalGroupTag(_ portal: String) -> UInt16? {
        guard let comma = portal.lastIndex(of: ",") else { return nil }
        return UInt16(portal[portal.index(after: comma)...])
    }
}

extension PortGroupStates {
    /// The states of a running cluster node: its portals, the members and
    /// `alua_states` as they stand, its lease as it stands; then a task that
    /// follows the lease (``followLease(_:)``). Membership and `alua_states`
    /// are refreshed by ``refresh(members:)`` (TesseraNode.followMembership).
    static func start(
        configuration: NodeConfiguration, cluster: ClusterNode, members: [MemberRecord]
    ) async -> (states: PortGroupStates, leaseFollower: Task<Void, Never>) {
        let states = PortGroupStates(
            localGroups: configuration.portals.map(\.groupTag), localNode: cluster.id, client: cluster.client)
        let lease = cluster.lease
        await states.update { $0.lease = lease.state }
        await states.refresh(members: members)
        return (states, Task { await states.followLease { lease.state } })
    }
}
