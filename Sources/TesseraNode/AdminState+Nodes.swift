import AdminAPI
import ClusterModel
import MetadataStore

/// Members drained, filled and removed through the admin API. A drain or an
/// add plans replica moves (``MovePlan``) in one store transaction; each
/// sub-unit's primary carries them out through the resync machinery
/// (``FailoverController``). A removal takes a node that holds nothing out
/// of the store's tables and of the store's Raft configuration, and leaves
/// a tombstone so the id cannot join again.
extension NodeAdminState {
    /// What the node changes read from the store, in one go.
    struct Membership: Sendable {
        var members: [MemberRecord]
        var beats: [NodeID: MemberLiveness.Beat]
        var drains: [NodeID: StoreRepository.DrainRecord]
        var moves: [StoreRepository.StoredMove]
        var maps: [(key: LUNKey, map: SubUnitMap)]
        var removed: [NodeID: UInt64]

        static func read(_ repository: StoreRepository) async throws -> Membership {
            var maps: [(key: LUNKey, map: SubUnitMap)] = []
            for (key, _) in try await repository.distributedLUNs() {
                if let map = try await repository.subUnitMap(key) { maps.append((key, map)) }
            }
            return Membership(
                members: try await repository.members(), beats: try await repository.leaseBeats(),
                drains: try await repository.drains(), moves: try await repository.replicaMoves(), maps: maps,
                removed: try await repository.removedMembers())
        }

        /// Replicas `node` holds over every LUN.
        func replicas(of node: NodeID) -> Int {
            maps.reduce(0) { $0 + $1.map.subUnits(heldBy: node).count }
        }
    }

    func nodes() async throws -> [NodeStatus] {
        let membership = try await read("the members") { try await Membership.read(StoreRepository(cluster.client)) }
        return membership.members.map { status(of: $0.nodeID, in: membership) }
    }

    /// One member as `membership` shows it.
    func status(of node: NodeID, in membership: Membership) -> NodeStatus {
        var replicas = 0
        var primaries = 0
        var notInSync = 0
        for (_, map) in membership.maps {
            for set in map.subUnits {
                guard let replica = set.replicas.first(where: { $0.node == node }) else { continue }
                replicas += 1
                if set.primary == node { primaries += 1 }
                if replica.state != .inSync { notInSync += 1 }
            }
        }
        let movesOff = membership.moves.filter { $0.move.from == node }.count
        let drain = membership.drains[node].map {
            NodeStatus.Drain(requestedAt: $0.requestedAt, planned: $0.planned, remaining: replicas)
        }
        let state = drain == nil ? "active" : (replicas == 0 && movesOff == 0 ? "drained" : "draining")
        let member = membership.members.first { $0.nodeID == node }
        return NodeStatus(
            id: node.rawValue, state: state, liveness: liveness(of: node),
            fenced: membership.beats[node]?.fenced ?? false, iscsiPortals: member?.portals ?? [], replicas: replicas,
            primaries: primaries, replicasNotInSync: notInSync, movesOff: movesOff,
            movesOn: membership.moves.filter { $0.move.to == node }.count, drain: drain)
    }

    /// "alive", "suspected", "dead" or "unknown" for `node`, as this node judges it.
    private func liveness(of node: NodeID) -> String {
        if node == cluster.id { return cluster.lease.mayChangeContext() ? "alive" : "suspected" }
        return memberVerdict(node) ?? "unknown"
    }

    func apply(_ change: NodeChange, requestID: String?) async throws -> NodeChangeOutcome {
        let id = RequestID("admin-" + (requestID ?? RequestID.random().rawValue))
        let node = NodeID(change.node)
        // The verdicts are this node's; the transaction re-reads everything else.
        let before = try await read("the members") { try await Membership.read(StoreRepository(cluster.client)) }
        let live = Set(before.members.map(\.nodeID).filter { liveness(of: $0) == "alive" })
        if case .remove = change, before.removed[node] != nil {
            return NodeChangeOutcome(
                node: change.node, action: "remove", movesPlanned: 0, status: nil,
                message: "node \(node.rawValue) was removed from the cluster already")
        }
        guard before.members.contains(where: { $0.nodeID == node }) else {
            throw AdminFailure(
                status: 404, error: "no member \(node.rawValue)",
                hint: {
                    if case .add = change {
                        return "start tesserad on the new node with cluster.node_id = \(node.rawValue) and cluster.join naming a "
                            + "member; once it is listed by tessera node list, run tessera node add \(node.rawValue) again"
                    }
                    return "tessera node list lists the members"
                }())
        }
        if case .remove(_, let force) = change {
            return try await remove(node, force: force, live: live, requestID: id)
        }
        let planned: Int
        do {
            let outcome = try await cluster.client.mutate(requestID: id) { [me = cluster.id] tx in
                let repository = StoreRepository(tx)
                let now = try await Membership.read(repository)
                return try await Self.plan(change, node: node, in: now, live: live, me: me, repository: repository)
            }
            switch outcome {
            case .applied(let count):
                planned = count
                logger.notice(
                    "admin: node \(Self.verb(change))", metadata: ["node": "\(node.rawValue)", "moves": "\(count)", "request-id": "\(id.rawValue)"])
            case .alreadyApplied:
                planned = 0
            }
        } catch let failure as AdminFailure {
            throw failure
        } catch {
            throw AdminStateError("\(Self.verb(change)) of node \(node.rawValue) failed: \(error)")
        }
        let after = try await read("the members") { try await Membership.read(StoreRepository(cluster.client)) }
        let status = status(of: node, in: after)
        let message: String
        switch change {
        case .drain:
            message = status.state == "drained"
                ? "node \(node.rawValue) holds no replicas; remove it with tessera node remove \(node.rawValue) --yes"
                : "\(status.replicas) replicas are moving off node \(node.rawValue); tessera node drain \(node.rawValue) --wait shows the progress"
        case .undrain:
            message = "node \(node.rawValue) takes replicas again"
                + (status.movesOff > 0 ? "; \(status.movesOff) moves already under way finish" : "")
        case .add:
            message = planned == 0
                ? "node \(node.rawValue) holds its share already; nothing to move"
                : "\(planned) replicas are moving to node \(node.rawValue); tessera node list shows the progress"
        case .remove: message = ""
        }
        return NodeChangeOutcome(
            node: change.node, action: Self.verb(change), movesPlanned: planned, status: status, message: message)
    }

    private static func verb(_ change: NodeChange) -> String {
        switch change {
        case .drain: "drain"
        case .undrain: "undrain"
        case .add: "add"
        case .remove: "remove"
        }
    }

    /// Plans a drain, an undrain or an add in the open transaction; returns the moves planned.
    private static func plan(
        _ change: NodeChange, node: NodeID, in membership: Membership, live: Set<NodeID>, me: NodeID,
        repository: StoreRepository
    ) async throws -> Int {
        let draining = Set(membership.drains.keys)
        switch change {
        case .drain:
            let candidates = live.subtracting(draining).subtracting([node])
            guard !candidates.isEmpty else {
                throw AdminFailure(
                    status: 409, error: "no other live member can take node \(node.rawValue)'s replicas",
                    hint: "add a node first (tessera node add), or wait until the others are alive (tessera node list)")
            }
            var load = MovePlan.load(membership.maps.map(\.map), moves: membership.moves.map(\.move))
            var moves: [StoreRepository.StoredMove] = []
            var unplaced: [String] = []
            for (key, map) in membership.maps {
                let planned = Set(membership.moves.filter { $0.key == key && $0.move.from == node }.map(\.move.index))
                let (found, none) = MovePlan.drain(node, map: map, candidates: candidates, load: &load, planned: planned)
                moves += found.map { StoredMove(key: key, move: $0) }
                unplaced += none.map { "\(key) sub-unit \($0)" }
            }
            guard unplaced.isEmpty else {
                throw AdminFailure(
                    status: 409,
                    error: "node \(node.rawValue) holds replicas no other live member can take (each of those already holds one): "
                        + unplaced.prefix(5).joined(separator: ", ") + (unplaced.count > 5 ? ", …" : ""),
                    hint: "add a node first (tessera node add) so every sub-unit keeps its replicas")
            }
            try await repository.startDrain(node, planned: membership.drains[node] == nil ? membership.replicas(of: node) : 0)
            try await repository.planMoves(moves)
            return moves.count
        case .undrain:
            try await Self.endDrain(node, in: membership, repository: repository)
            return 0
        case .add:
            guard live.contains(node) else {
                throw AdminFailure(
                    status: 409, error: "node \(node.rawValue) is not renewing its lease",
                    hint: "start it (or wait until tessera node list shows it alive), then run tessera node add \(node.rawValue) again")
            }
            if membership.drains[node] != nil { try await Self.endDrain(node, in: membership, repository: repository) }
            let candidates = live.subtracting(draining).union([node])
            let moves = membership.moves.filter { $0.move.from != node }
            var load = MovePlan.load(membership.maps.map(\.map), moves: moves.map(\.move))
            var planned: [StoreRepository.StoredMove] = []
            for (key, map) in membership.maps {
                let busy = Set(moves.filter { $0.key == key }.map(\.move.index))
                planned += MovePlan.fill(node, map: map, candidates: candidates, load: &load, planned: busy)
                    .map { StoredMove(key: key, move: $0) }
            }
            try await repository.planMoves(planned)
            return planned.count
        case .remove:
            return 0
        }
    }

    /// Ends `node`'s drain: the moves off it that have not begun are dropped;
    /// one whose new replica joined its set already is left to finish, so no
    /// sub-unit is left with a replica more than it wants.
    private static func endDrain(_ node: NodeID, in membership: Membership, repository: StoreRepository) async throws {
        let begun = membership.moves.filter { stored in
            guard stored.move.from == node, let map = membership.maps.first(where: { $0.key == stored.key })?.map,
                Int(stored.move.index) < map.subUnits.count
            else { return false }
            return map.subUnits[Int(stored.move.index)].role(of: stored.move.to) != .none
        }
        try await repository.endDrain(node)
        try await repository.planMoves(begun)
    }

    /// Removes `node`: it must hold no replica, unless `force` and it is
    /// not alive (its replicas are then dropped and made again on the live
    /// members, as for a member gone for good). Not through the node itself.
    private func remove(_ node: NodeID, force: Bool, live: Set<NodeID>, requestID: RequestID) async throws -> NodeChangeOutcome {
        guard node != cluster.id else {
            throw AdminFailure(
                status: 409, error: "node \(node.rawValue) is the node answering; it cannot remove itself",
                hint: "ask another node: tessera --node HOST:PORT node remove \(node.rawValue) --yes")
        }
        if force, live.contains(node) {
            throw AdminFailure(
                status: 409, error: "node \(node.rawValue) is alive; force is only for a node that is down for good",
                hint: "drain it instead: tessera node drain \(node.rawValue) --wait, then tessera node remove \(node.rawValue) --yes")
        }
        let me = cluster.id
        let outcome: MutationOutcome<Int>
        do {
            outcome = try await cluster.client.mutate(requestID: requestID) { tx in
                let repository = StoreRepository(tx)
                var now = try await Membership.read(repository)
                var held = now.replicas(of: node)
                var repaired = 0
                let candidates = live.subtracting(now.drains.keys).subtracting([node]).union([me])
                if held > 0, force {
                    for (key, map) in now.maps {
                        for change in FailoverPlan.repaired(map, gone: [node], candidates: candidates)
                        where try await repository.replaceReplicaSet(
                            key, index: change.index, expecting: change.expecting, with: change.set)
                        {
                            repaired += 1
                        }
                    }
                    now = try await Membership.read(repository)
                    held = now.replicas(of: node)
                }
                guard held == 0 else {
                    throw AdminFailure(
                        status: 409,
                        error: force
                            ? "node \(node.rawValue) is still the primary of \(held) sub-units that have no in-sync replica elsewhere"
                            : "node \(node.rawValue) still holds \(held) replicas",
                        hint: force
                            ? "start node \(node.rawValue) again so its sub-units can fail over or be copied, then drain it"
                            : "drain it first: tessera node drain \(node.rawValue) --wait (or, for a node down for good, --force)")
                }
                // Moves planned onto it go elsewhere (a drain waiting on it would wait forever).
                let maps = Dictionary(now.maps.map { ($0.key, $0.map) }, uniquingKeysWith: { a, _ in a })
                _ = try await repository.retargetMoves(onto: [node], maps: maps, candidates: candidates)
                try await repository.removeMember(node)
                return repaired
            }
        } catch let failure as AdminFailure {
            throw failure
        } catch {
            throw AdminStateError("removing node \(node.rawValue) failed: \(error)")
        }
        // Out of the Raft configuration too; a standby takes the voter's place.
        do {
            if try await cluster.client.members().contains(where: { $0.id == node }) {
                // A leader is not asked to remove itself: Raft hands its leadership on first.
                if try await cluster.client.leader().id == node {
                    try await cluster.client.transferLeadership(to: nil)
                    for _ in 0..<50 where (try? await cluster.client.leader().id) ?? node == node {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                try await cluster.client.remove(id: node)
            }
            try await promoteStandby()
        } catch {
            logger.warning(
                "node removed from the cluster's tables, but the store's configuration still lists it; retry the removal",
                metadata: ["node": "\(node.rawValue)", "error": "\(error)"])
            throw AdminStateError("node \(node.rawValue) is out of the cluster's tables, but the store could not drop it: \(error); retry")
        }
        if case .applied(let repaired) = outcome {
            logger.warning(
                "admin: node removed from the cluster for good",
                metadata: ["node": "\(node.rawValue)", "sub-units-repaired": "\(repaired)", "request-id": "\(requestID.rawValue)"])
        }
        return NodeChangeOutcome(
            node: node.rawValue, action: "remove", movesPlanned: 0, status: nil,
            message: "node \(node.rawValue) is out of the cluster; it stops serving, and its id cannot join again "
                + "(wipe its data_dir and give it a new cluster.node_id to bring the machine back)")
    }

    /// With fewer than three voters left, a standby becomes one.
    private func promoteStandby() async throws {
        let members = try await cluster.client.members()
        guard members.filter({ $0.role == .voter }).count < 3,
            let standby = members.first(where: { $0.role == .standby }) ?? members.first(where: { $0.role == .spare })
        else { return }
        try await cluster.client.assign(id: standby.id, role: .voter)
        logger.notice("store: a standby became a voter after a removal", metadata: ["node": "\(standby.id)"])
    }
}

private typealias StoredMove = StoreRepository.StoredMove
